"""Project facts shared by every task: its root, Python version and settings."""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooling import ToolingError

PYTHON_VERSION = re.compile(r"3\.\d+(?:\.\d+)?")


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
        return str(self.settings.get("dev-tier", "dev"))


def read_python_version(root: Path) -> str:
    path = root / ".python-version"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ToolingError(
            f"{path} is missing: write the project's Python version in it, e.g. 3.11"
        ) from None
    if not PYTHON_VERSION.fullmatch(text):
        raise ToolingError(f"{path} says {text!r}: write one version like 3.11 or 3.11.9")
    return text


def load(root: Path) -> Project:
    pyproject = root / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ToolingError(f"{pyproject} is missing") from None
    except tomllib.TOMLDecodeError as error:
        raise ToolingError(f"{pyproject} is not valid TOML: {error}") from None
    return Project(root=root, python_version=read_python_version(root), pyproject=data)


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


def python_version_problems(project: Project) -> list[str]:
    """Where pyproject.toml or the Dockerfile disagree with .python-version."""
    minor = project.python_minor
    tool = project.tool
    found = {
        "pyproject.toml requires-python": project.pyproject.get("project", {}).get(
            "requires-python"
        ),
        "pyproject.toml [tool.ruff] target-version": tool.get("ruff", {}).get("target-version"),
        "pyproject.toml [tool.mypy] python_version": tool.get("mypy", {}).get("python_version"),
    }
    expected = {
        "pyproject.toml requires-python": f">={minor}",
        "pyproject.toml [tool.ruff] target-version": "py" + minor.replace(".", ""),
        "pyproject.toml [tool.mypy] python_version": minor,
    }
    problems = [
        f"{where} is {found[where]!r} but .python-version says {project.python_version} "
        f"(expected {want!r})"
        for where, want in expected.items()
        if found[where] is not None and found[where] != want
    ]
    dockerfile = project.root / "Dockerfile"
    if dockerfile.is_file():
        pattern = r"^(?:ARG PYTHON_VERSION=|FROM\s+(?:--\S+\s+)*python:)(3\.\d+)"
        for written in re.findall(pattern, dockerfile.read_text(encoding="utf-8"), re.MULTILINE):
            if written != minor:
                problems.append(
                    f"Dockerfile names Python {written} but .python-version says "
                    f"{project.python_version}; pass it as --build-arg PYTHON_VERSION instead"
                )
    problems += base_image_problems(project)
    return problems


def base_image_problems(project: Project) -> list[str]:
    """base-images.lock pins for python:<version> images must name .python-version's version."""
    try:
        from tooling import images  # absent from projects generated without containers
    except ImportError:
        return []
    return images.base_image_problems(project)


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
