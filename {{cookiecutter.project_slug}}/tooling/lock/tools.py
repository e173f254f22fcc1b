"""The tools' own hashed locks (`nox -s lock -- --tools`), under the tiers' cooldown.

requirements/tools/*.txt (pip-audit, safety...) and .github/cruft-requirements.txt
are not tiers: each is compiled from the `.in` beside it for the Python of
.python-version, as uv writes it. The `cooldown` of [tool.lockstep] applies as
it does to the tiers (exempt packages, --skip-cooldown), and a pin is never
moved back to satisfy it: such a package keeps its pin, the cooldown lifted
for it. A failure puts every tool lock back as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from tooling import lockfile
from tooling.cooldown import Cooldown, newest
from tooling.lock.inputs import LockError
from tooling.lock.uv import Runner, run_uninterrupted, uv_reason
from tooling.lockfile import Pin
from tooling.project import Project


@dataclass
class ToolLocks:
    """What `--tools` did: the locks it changed and the pins the cooldown kept."""

    written: list[Path] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # name -> pin kept instead of moved back


def tool_inputs(project: Project) -> list[Path]:
    """The `.in` of every tool lock: .github/cruft-requirements.in, requirements/tools/*.in."""
    cruft = project.root / ".github" / "cruft-requirements.in"
    tools = sorted((project.requirements_dir / "tools").glob("*.in"))
    return [cruft, *tools] if cruft.is_file() else tools


def compile_argv(
    project: Project,
    source: str,
    cooldown: Cooldown,
    upgrade: Sequence[str],
    lifted: Sequence[str] = (),
) -> list[str]:
    """uv's command for one tool lock (`upgrade`: ["--upgrade"] or --upgrade-package options)."""
    output = source.removesuffix(".in") + ".txt"
    return [
        *("pip", "compile", "--quiet", "--universal", "--generate-hashes"),
        *("--python-version", project.python_minor),
        *cooldown.options(lifted),
        *upgrade,
        *(source, "-o", output),
    ]


def pins_of(path: Path) -> list[Pin]:
    """The pins of a tool lock; none when it is missing or unreadable (then nothing is kept)."""
    try:
        return list(lockfile.read(path).pins)
    except lockfile.LockFileError:
        return []


def moved_lower(before: Sequence[Pin], after: Sequence[Pin]) -> dict[str, str]:
    """Packages pinned lower after than before (a package no longer required is not)."""
    lower = {}
    for name in sorted({pin.name for pin in after}):
        old, new = newest(before, name), newest(after, name)
        if old is not None and new is not None and new < old:
            lower[name] = str(old)
    return lower


def lock_tools(
    project: Project,
    upgrade: bool,
    upgrade_packages: Sequence[str],
    skipped: Sequence[str],
    run: Runner,
) -> ToolLocks:
    """Compile every tool lock again; raises LockError (every lock as it was) when uv fails."""
    cooldown = Cooldown.of(project, skipped)
    names = [*upgrade_packages, *skipped]
    before = {path: read_bytes(path.with_suffix(".txt")) for path in tool_inputs(project)}
    done = ToolLocks()
    try:
        for path, old_data in before.items():
            source = path.relative_to(project.root).as_posix()
            kept = compile_tool(project, source, cooldown, (upgrade, names), run, old_data)
            done.kept.update(kept)
            if read_bytes(path.with_suffix(".txt")) != old_data:
                done.written.append(path.with_suffix(".txt"))
    except BaseException:
        for path, old_data in before.items():
            restore(path.with_suffix(".txt"), old_data)
        raise
    return done


def compile_tool(
    project: Project,
    source: str,
    cooldown: Cooldown,
    upgrading: tuple[bool, Sequence[str]],
    run: Runner,
    old_data: bytes | None,
) -> dict[str, str]:
    """One tool lock (`upgrading`: --upgrade, and the packages to upgrade); a pin the cooldown
    moved back is kept: compiled again from the old lock, the cooldown lifted for it and
    everything but it upgraded as asked (lifted and upgraded, it would take a younger one)."""
    output = project.root / (source.removesuffix(".in") + ".txt")
    before = pins_of(output)
    upgrade, names = upgrading
    options = ["--upgrade"] if upgrade else upgrade_options(names)
    run_compile(project, source, compile_argv(project, source, cooldown, options), cooldown, run)
    lower = moved_lower(before, pins_of(output))
    if lower:
        restore(output, old_data)  # the old pins are uv's preferences again
        asked = [pin.name for pin in before] if upgrade else names
        options = upgrade_options([n for n in asked if canonicalize_name(n) not in lower])
        argv = compile_argv(project, source, cooldown, options, lifted=sorted(lower))
        run_compile(project, source, argv, cooldown, run)
    return lower


def upgrade_options(names: Sequence[str]) -> list[str]:
    return [option for name in dict.fromkeys(names) for option in ("--upgrade-package", name)]


def run_compile(
    project: Project, source: str, argv: Sequence[str], cooldown: Cooldown, run: Runner
) -> None:
    result = run_uninterrupted(run, argv, project.root)
    if result.returncode != 0:
        refusal = cooldown.refusal(result.stderr)
        if refusal:  # (its advice, for a tool lock)
            reason = refusal.removeprefix("cannot lock: ").replace("-- --skip", "-- --tools --skip")
        else:
            reason = uv_reason(result.stderr)
        raise LockError(f"cannot lock {source}: {reason}")


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def restore(path: Path, data: bytes | None) -> None:
    if data is None:
        path.unlink(missing_ok=True)
    elif read_bytes(path) != data:
        path.write_bytes(data)
