"""The uv process: finding and running it, and one line from its failures."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path

from packaging.utils import canonicalize_name

from tooling import distfiles, lockfile, without_secrets
from tooling.lock.headers import compile_options
from tooling.lock.inputs import Inputs, Interrupted, LockError, index_sources, unique
from tooling.lockfile import Pin
from tooling.moves import Yanked
from tooling.project import Project
from tooling.tiers import logical_lines

NETWORK_FAILURE = re.compile(
    r"Failed to fetch|Request failed|error sending request|dns error|failed to lookup address|"
    r"Connection refused|connection (?:closed|reset)|timed out|certificate|tcp connect error|"
    r"Could not connect",
    re.IGNORECASE,
)


# What uv says of a yanked version it picked (PEP 592: only an exact pin picks one).
YANKED = re.compile(
    r"^warning: `?(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^`\s]+)`? is yanked"
    r'(?: \(reason: "(?P<reason>.*)"\))?\.?$',
    re.MULTILINE,
)


Runner = Callable[[Sequence[str], Path], subprocess.CompletedProcess[str]]


Listing = dict[str, distfiles.File]  # "sha256:<hex>" -> the file uv listed with that hash


class YankedPins:
    """The yanked versions uv warned of in this run, (name, version) -> the index's reason."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], str] = {}
        self.guard = threading.Lock()  # solve groups resolve in threads

    def watching(self, run: Runner) -> Runner:
        """`run`, noting the yanked pins in the warnings of every uv that succeeds."""

        def watched(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
            result = run(argv, cwd)
            if result.returncode == 0:
                self.note(result.stderr or "")
            return result

        return watched

    def note(self, stderr: str) -> None:
        for found in YANKED.finditer(stderr):
            reason = " ".join(without_secrets(found["reason"] or "").split())[:200]
            with self.guard:
                self.found[canonicalize_name(found["name"]), found["version"]] = reason

    def in_locks(self, tiers: Mapping[str, Sequence[Pin]]) -> list[Yanked]:
        """The yanked pins the tiers lock, each with the tiers that lock it."""
        where: dict[tuple[str, str], list[str]] = {}
        for tier, pins in tiers.items():
            for pin in pins:
                if (key := (canonicalize_name(pin.name), pin.version)) in self.found:
                    where.setdefault(key, []).append(tier)
        return [
            Yanked(name, version, self.found[name, version], tiers)
            for (name, version), tiers in sorted(where.items())
        ]


class BuildPython:
    """Every `uv pip compile` of one lock told which Python to build with (`--python`): the
    Python running the lock when it is the project's version (nox's own, usually), else
    the one uv finds for that version (`uv python find`, once, from the folder of the
    first compile).

    uv caches what it learns of an interpreter, but never of a pyenv shim: without
    this, each of a lock's uv runs queries the shim again (0.1-0.6 s each, on the
    critical path for the tier closures). When uv finds none, every compile looks
    for itself, as it did before.
    """

    def __init__(self, run: Runner, version: str, running: str | None = None) -> None:
        """`running`: the Python running the lock, when it is the project's version."""
        self.run, self.version = run, version
        self.found: list[str] | None = ["--python", running] if running else None
        self.guard = threading.Lock()  # solve groups resolve in threads

    def around(self) -> Runner:
        """`run`, with `--python PATH` added to every `pip compile`."""

        def told(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
            if list(argv[:2]) != ["pip", "compile"]:
                return self.run(argv, cwd)
            return self.run([*argv, *self.options(cwd)], cwd)

        return told

    def options(self, cwd: Path) -> list[str]:
        with self.guard:
            if self.found is None:
                find = ["python", "find", "--no-project", "--no-python-downloads", self.version]
                result = run_uninterrupted(self.run, find, cwd)
                path = result.stdout.strip() if result.returncode == 0 else ""
                self.found = ["--python", path] if path and "\n" not in path else []
            return self.found


_FIND_UV = threading.Lock()


def find_uv() -> str:
    with _FIND_UV:  # solve groups resolve in threads; uv's own finder is not thread-safe
        return locate_uv()


@cache
def locate_uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    try:
        import uv  # type: ignore[import-not-found,unused-ignore]

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        raise LockError("uv is not installed: run `python -m pip install uv`") from None


def run_uv(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_uv(), *argv], cwd=cwd, capture_output=True, text=True, check=False)


def uv_reason(stderr: str) -> str:
    parts = []
    for line in without_secrets(stderr).splitlines():
        line = line.strip()
        for prefix in ("error:", "cause:", "Caused by:", "hint:"):
            if line.startswith(prefix):
                parts.append(line.removeprefix(prefix).strip().rstrip("."))
    return ": ".join(parts) or " ".join(without_secrets(stderr).split()) or "uv failed silently"


def mentions(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE) is not None


def unreachable(reason: str) -> bool:
    """Whether uv failed to reach an index (not to resolve): no package is to blame then."""
    return NETWORK_FAILURE.search(reason) is not None


def explain_failure(stderr: str, project: Project, inputs: Inputs, names: Sequence[str]) -> str:
    """One line from uv's error, naming where its cause was written.

    An index uv names (one it could not reach, or one it found a package on) is
    blamed on the line or setting that added it; another unreachable index blames
    nothing; otherwise the input lines whose requirement the error mentions.
    """
    reason = uv_reason(stderr)
    indexes = [where for url, where in index_sources(project, inputs, names) if url in reason]
    if indexes:
        return f"cannot lock {', '.join(unique(indexes))}: {reason}"
    if unreachable(reason):
        return f"cannot lock: the package index could not be reached: {reason}"
    named: dict[str, None] = {}
    for name in names:
        tier = inputs.tiers[name]
        for number, requirement in tier.requirements:
            if mentions(requirement.name, reason):
                line = dict(logical_lines(tier.text)).get(number, requirement.name)
                named[f"{inputs.relative(tier.path)} ({line})"] = None
    where = f" {', '.join(named)}" if named else ""
    return f"cannot lock{where}: {reason}"


def compile_from_cache(
    project: Project,
    inputs: Inputs,
    tiers: Sequence[str],
    options: Sequence[str],
    output: Path,
    run: Runner,
) -> subprocess.CompletedProcess[str]:
    """uv compiles these tiers' `.in` files into `output` (in its folder, the snapshot).

    Offline first, from the index pages this run has read; online when the cache lacks them.
    """
    argv = [
        "pip",
        "compile",
        *(inputs.relative(inputs.tiers[name].path) for name in tiers),
        *compile_options(project),
        *options,
        "--no-header",
        "--quiet",
        "--output-file",
        str(output),
    ]
    result = run_uninterrupted(run, [*argv, "--offline"], output.parent)
    if result.returncode != 0:
        result = run_uninterrupted(run, argv, output.parent)
    return result


def run_uninterrupted(
    run: Runner, argv: Sequence[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run uv; a signal or Ctrl-C is Interrupted, which blames no input."""
    try:
        result = run(argv, cwd)
    except KeyboardInterrupt:
        raise Interrupted("uv was interrupted: no lock was changed") from None
    if result.returncode < 0:
        try:
            name = signal.Signals(-result.returncode).name
        except ValueError:
            name = f"signal {-result.returncode}"
        raise Interrupted(f"uv was interrupted ({name}): no lock was changed")
    return result


def resolved_pins(output: Path, *own_constraints: str) -> list[Pin]:
    """The pins uv wrote, without the `# via -c` of the constraints files this run made up."""
    pins = lockfile.parse(output.read_text(encoding="utf-8"), "uv's resolution").pins
    own = {f"-c {name}" for name in own_constraints}
    return [replace(pin, via=tuple(v for v in pin.via if v not in own)) for pin in pins]
