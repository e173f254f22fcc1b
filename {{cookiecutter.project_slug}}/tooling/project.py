"""Project facts shared by every task: its root, Python version and settings.

`.python-version` is the one place the Python version is written. The other
places that state it (requires-python, ruff's target-version and mypy's
python_version in pyproject.toml) are rewritten by `nox -s lock` together
with the locks (`python_version_rewrites`), and checked by the drift check
(`python_version_problems`).
"""

from __future__ import annotations

import copy
import re
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooling import ToolingError, settings

PYTHON_VERSION = re.compile(r"3\.\d+(?:\.\d+)?")
# The CPython release lines a project can name: the tooling needs 3.11 (tomllib), ruff and
# mypy must know the target. Add a line here once it is released and ruff accepts it.
PYTHON_RELEASE_LINES = ("3.11", "3.12", "3.13", "3.14", "3.15")


@dataclass(frozen=True)
class Project:
    root: Path
    python_version: str
    pyproject: dict[str, Any] = field(default_factory=dict)

    @property
    def tool(self) -> dict[str, Any]:
        return dict(self.pyproject.get("tool", {}))

    @property
    def settings(self) -> dict[str, Any]:
        """[tool.lockstep] in pyproject.toml."""
        return dict(self.tool.get("lockstep", {}))

    @property
    def name(self) -> str:
        return str(self.pyproject.get("project", {}).get("name", self.root.name))

    @property
    def python_minor(self) -> str:
        """'3.11' for a .python-version of 3.11 or 3.11.9."""
        return ".".join(self.python_version.split(".")[:2])

    @property
    def requirements_dir(self) -> Path:
        return self.root / "requirements"

    @property
    def dev_tier(self) -> str:
        return str(self.setting("dev-tier"))

    def setting(self, key: str) -> Any:
        """A [tool.lockstep] setting, or its default from the schema (tooling/settings.py)."""
        return self.settings.get(key, settings.SETTINGS[key].default)


def decode_utf8(data: bytes, shown: str) -> str:
    """UTF-8 text (a byte-order mark is kept); other bytes are one line naming the line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ToolingError(
            f"{shown} line {line} is not UTF-8 (byte 0x{data[error.start]:02x}): "
            "save the file as UTF-8"
        ) from None


def read_utf8(path: Path, shown: str) -> str:
    """A UTF-8 text file with or without a byte-order mark, newlines as in the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ToolingError(f"cannot read {shown}: {error.strerror}") from None
    return decode_utf8(data, shown).removeprefix("\ufeff")


def read_python_version(root: Path) -> str:
    try:
        text = read_utf8(root / ".python-version", ".python-version").strip()
    except FileNotFoundError:
        raise ToolingError(
            ".python-version is missing: write the project's Python version in it, e.g. 3.11"
        ) from None
    if not PYTHON_VERSION.fullmatch(text):
        raise ToolingError(f".python-version says {text!r}: write one version like 3.11 or 3.11.9")
    if ".".join(text.split(".")[:2]) not in PYTHON_RELEASE_LINES:
        raise ToolingError(
            f".python-version says {text!r}, which is not a CPython release line this project "
            f"can use: write one of {', '.join(PYTHON_RELEASE_LINES)} (or 3.N.M of one)"
        )
    return text


def read_pyproject(root: Path) -> dict[str, Any]:
    try:
        text = read_utf8(root / "pyproject.toml", "pyproject.toml")
    except FileNotFoundError:
        raise ToolingError(f"pyproject.toml is missing in {root}") from None
    return parse_pyproject(text)


def parse_pyproject(text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ToolingError(f"pyproject.toml is not valid TOML: {error}") from None
    for table in ("project", "tool"):
        if not isinstance(data.get(table, {}), dict):
            raise ToolingError(f"pyproject.toml: {table} must be a table ([{table}])")
    return data


def load(root: Path) -> Project:
    """The project at root, its .python-version and [tool.lockstep] checked (one-line errors)."""
    data = read_pyproject(root)
    python_version = read_python_version(root)
    tier_uses = settings.check(data.get("tool", {}).get("lockstep", {}))
    tiers = {path.stem for path in (root / "requirements").glob("*.in")}
    if tiers:  # with no tier files at all, reading the tiers says so
        settings.check_tiers(tier_uses, tiers)
    return Project(root=root, python_version=python_version, pyproject=data)


def tier_install_args(project: Project, tier: str) -> tuple[list[str], str | None]:
    """Installer arguments for a tier: its hashed lock, or its input with a note why."""
    lock = project.requirements_dir / f"{tier}.txt"
    source = project.requirements_dir / f"{tier}.in"
    if lock.is_file():
        return ["--require-hashes", "-r", str(lock)], None
    if source.is_file():
        note = f"{lock.name} is missing, installing unlocked {source.name}; run `nox -s lock`"
        return ["-r", str(source)], note
    raise ToolingError(f"tier {tier!r} has no {source.name} in {project.requirements_dir}")


# Where pyproject.toml states the Python version: (table, key) -> how it is shown.
PYTHON_VERSION_KEYS = {
    ("project", "requires-python"): "pyproject.toml requires-python",
    ("tool.ruff", "target-version"): "pyproject.toml [tool.ruff] target-version",
    ("tool.mypy", "python_version"): "pyproject.toml [tool.mypy] python_version",
}
TABLE_HEADER = re.compile(r"\s*\[\s*([A-Za-z0-9_.\s\"'-]+?)\s*\]\s*(?:#.*)?", re.DOTALL)


def stated_python_versions(pyproject: Mapping[str, Any]) -> dict[tuple[str, str], object]:
    """The Python versions pyproject.toml states, by (table, key); absent keys are left out."""
    found: dict[tuple[str, str], object] = {}
    for table, key in PYTHON_VERSION_KEYS:
        section: object = pyproject
        for part in table.split("."):
            section = section.get(part, {}) if isinstance(section, dict) else {}
        if isinstance(section, dict) and key in section:
            found[table, key] = section[key]
    return found


def expected_python_versions(project: Project) -> dict[tuple[str, str], str]:
    minor = project.python_minor
    return {
        ("project", "requires-python"): f">={minor}",
        ("tool.ruff", "target-version"): "py" + minor.replace(".", ""),
        ("tool.mypy", "python_version"): minor,
    }


def python_version_problems(project: Project) -> list[str]:
    """Where pyproject.toml or the Dockerfile disagree with .python-version."""
    expected = expected_python_versions(project)
    problems = [
        f"{PYTHON_VERSION_KEYS[where]} is {found!r} but .python-version says "
        f"{project.python_version} (expected {expected[where]!r}; `nox -s lock` rewrites it)"
        for where, found in stated_python_versions(project.pyproject).items()
        if found != expected[where]
    ]
    dockerfile = project.root / "Dockerfile"
    if dockerfile.is_file():
        pattern = r"^(?:ARG PYTHON_VERSION=|FROM\s+(?:--\S+\s+)*python:)(3\.\d+)"
        text = read_utf8(dockerfile, "Dockerfile")
        for written in re.findall(pattern, text, re.MULTILINE):
            if written != project.python_minor:
                problems.append(
                    f"Dockerfile names Python {written} but .python-version says "
                    f"{project.python_version}; pass it as --build-arg PYTHON_VERSION instead"
                )
    return problems


def python_version_rewrites(project: Project) -> dict[Path, str]:
    """{pyproject.toml: new text} when it states another Python version than .python-version.

    Only the three values change; every other byte (comments, quotes, newlines, a
    byte-order mark) stays as it is. The result is verified by parsing it again.
    """
    path = project.root / "pyproject.toml"
    text = decode_utf8(path.read_bytes(), "pyproject.toml")
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    data = parse_pyproject(text.removeprefix(bom))
    expected = expected_python_versions(project)
    wanted = {
        where: expected[where]
        for where, found in stated_python_versions(data).items()
        if found != expected[where]
    }
    if not wanted:
        return {}
    lines = text.removeprefix(bom).splitlines(keepends=True)
    table: str | None = ""
    rewritten = set()
    for number, line in enumerate(lines):
        if line.lstrip().startswith("[["):
            table = None
        elif header := TABLE_HEADER.fullmatch(line):
            table = ".".join(part.strip().strip("\"'") for part in header.group(1).split("."))
        else:
            for (section, key), value in wanted.items():
                quoted_key = rf"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"
                assignment = rf"(\s*{quoted_key}\s*=\s*)([\"'])[^\"'\\\r\n]*\2(.*)"
                if section == table and (match := re.fullmatch(assignment, line, re.DOTALL)):
                    quote = match.group(2)
                    lines[number] = f"{match.group(1)}{quote}{value}{quote}{match.group(3)}"
                    rewritten.add((section, key))
    try:
        new_data = tomllib.loads("".join(lines))
    except tomllib.TOMLDecodeError:
        new_data = {}
    now = stated_python_versions(new_data)
    for where in wanted:
        if (
            where not in rewritten
            or now.get(where) != wanted[where]
            or without_python_versions(new_data) != without_python_versions(data)
        ):
            raise ToolingError(
                f"cannot rewrite {PYTHON_VERSION_KEYS[where]} to follow .python-version: "
                f"set it to {wanted[where]!r} by hand"
            )
    return {path: bom + "".join(lines)}


def without_python_versions(pyproject: dict[str, Any]) -> dict[str, Any]:
    """pyproject.toml's data without the keys that state the Python version."""
    rest = copy.deepcopy(pyproject)
    for table, key in PYTHON_VERSION_KEYS:
        section: Any = rest
        for part in table.split("."):
            section = section.get(part, {}) if isinstance(section, dict) else {}
        if isinstance(section, dict):
            section.pop(key, None)
    return rest


def read_version(project: Project) -> str:
    """The version hatch reads from the package (`__version__ = "..."`)."""
    relative = project.tool.get("hatch", {}).get("version", {}).get("path")
    if not relative:
        raise ToolingError("pyproject.toml has no [tool.hatch.version] path")
    text = (project.root / relative).read_text(encoding="utf-8")
    match = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", text, re.MULTILINE)
    if not match:
        raise ToolingError(f'{relative} has no __version__ = "..." line')
    return match.group(1)


def tier_lock(project: Project, tier: str, tiers: Sequence[str]) -> Path:
    if tier not in tiers:
        raise ToolingError(f"unknown tier {tier!r}: choose one of {', '.join(tiers)}")
    lock = project.requirements_dir / f"{tier}.txt"
    if not lock.is_file():
        raise ToolingError(f"requirements/{tier}.txt is missing: run `nox -s lock` first")
    return lock


def wheel_path(dist: Path, distribution: str) -> Path:
    prefix = distribution.replace("-", "_") + "-"
    wheels = sorted(p for p in dist.glob("*.whl") if p.name.startswith(prefix))
    if len(wheels) != 1:
        raise ToolingError(
            f"expected one {prefix}*.whl in {dist}, found {len(wheels)}: run `nox -s build`"
        )
    return wheels[0]


def source_date_epoch(root: Path, env: Mapping[str, str]) -> str:
    """SOURCE_DATE_EPOCH for reproducible artifacts: set, else the last commit, else 1980."""
    if env.get("SOURCE_DATE_EPOCH"):
        return env["SOURCE_DATE_EPOCH"]
    try:
        result = subprocess.run(
            ["git", "log", "-1", "--format=%ct"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "315532800"
    return (
        result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else "315532800"
    )
