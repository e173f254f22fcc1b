"""The PEP 751 pylocks beside each tier lock: the files each hash names, and their check."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from tooling import distfiles, lockfile, pylock
from tooling.atomic import work_folder
from tooling.lock.headers import line_ending_problem, read_lock
from tooling.lock.inputs import UNION_CONSTRAINTS, Inputs, LockError, environment_indexes, snapshot
from tooling.lock.uv import Listing, Runner, compile_from_cache, uv_reason
from tooling.project import Project
from tooling.tiers import SolveGroup


def tier_pylocks(
    project: Project,
    inputs: Inputs,
    group_of: Mapping[str, SolveGroup],
    locks: Mapping[Path, str],
    tier_texts: Mapping[str, str],
    listing: Listing,
    run: Runner,
    listed_groups: set[str],
) -> dict[Path, str]:
    """requirements/pylock.<tier>.toml for every tier whose pylock is not the one derived
    from its `.txt` (pylock.problems: what the drift check names).

    The files of each hash come from this run's resolutions; a group that did not
    resolve gets them from uv, offline first, with its union lock as constraints
    (unless it is in `listed_groups`, whose files were listed so already).
    """
    pylocks: dict[Path, str] = {}
    for name, text in tier_texts.items():
        path = pylock.path_of(project.requirements_dir, name)
        current = read_lock(path)
        if current and pylock_is_current(current, name, text):
            pylocks[path] = current  # as read, with LF: a CRLF copy is rewritten
            continue
        lock_name = f"requirements/{name}.txt"
        pins = lockfile.parse(text, lock_name).pins
        group = group_of[name]
        if group.name not in listed_groups and any(
            h not in listing for p in pins for h in p.hashes
        ):
            union = locks[project.requirements_dir / f"{group.union}.txt"]
            listing.update(union_files(project, inputs, group, union, run))
            listed_groups.add(group.name)
        try:
            source = pylock.source_of(lock_name, text, environment_indexes())
            pylocks[path] = pylock.derive(source, listing)
        except pylock.UnlistedFiles as unlisted:
            raise LockError(
                f"requirements/pylock.{name}.toml: uv lists no file for any hash of "
                f"{', '.join(unlisted.pins)}; run `nox -s lock -- --upgrade-package NAME`"
            ) from None
        except pylock.ForeignFile as foreign:
            raise LockError(
                f"cannot write requirements/pylock.{name}.toml: uv's listing {foreign}; name the "
                f"index that serves it with --index-url or --extra-index-url in requirements/{name}.in"
            ) from None
        except pylock.Underivable as error:
            raise LockError(f"cannot write requirements/pylock.{name}.toml: {error}") from None
    return pylocks


def pylock_is_current(current: str, tier: str, text: str) -> bool:
    """Whether a tier's pylock is the one derived from its `.txt` text (pylock.problems)."""
    return not derived_problems(current, f"requirements/{tier}.txt", text, *environment_indexes())


@lru_cache(maxsize=32)  # the lock asks before and after it repairs a union (see command)
def derived_problems(current: str, lock_name: str, text: str, *environment: str) -> tuple[str, ...]:
    return tuple(pylock.problems(current, lock_name, text, environment))


def union_files(
    project: Project, inputs: Inputs, group: SolveGroup, union: str, run: Runner
) -> Listing:
    """The files uv lists for a group's union lock (a run that did not resolve the group)."""
    with work_folder() as workdir:
        tree = workdir / f"files-{group.name}"
        snapshot(project, inputs, inputs.files(group.members), tree)
        (tree / UNION_CONSTRAINTS).write_text(union, encoding="utf-8")
        listed = listed_files(project, inputs, group, tree, UNION_CONSTRAINTS, run)
    return pylock.by_hash(listed)


def listed_files(
    project: Project,
    inputs: Inputs,
    group: SolveGroup,
    tree: Path,
    resolution: str,
    run: Runner,
) -> distfiles.Files:
    """The files of every version pinned in `resolution` (a requirements lock; relative to
    `tree`, the group's snapshot), as uv names them in a PEP 751 lock of it: offline first."""
    output = tree / "pylock.toml"
    options = ["--constraint", resolution, "--format", "pylock.toml"]
    result = compile_from_cache(project, inputs, sorted(group.members), options, output, run)
    if result.returncode != 0:
        raise LockError(f"uv could not list the locked files: {uv_reason(result.stderr)}")
    return distfiles.read_pylock(output.read_text(encoding="utf-8"))


def pylock_problems(project: Project, name: str, text: str, stale: bool) -> list[str]:
    """Why a tier's pylock does not say what its `.txt` says (when the `.txt` is `stale`, only
    a missing or edited pylock is named: the lock writes both again anyway)."""
    path = pylock.path_of(project.requirements_dir, name)
    pylock_name = f"requirements/{path.name}"
    current = read_lock(path)
    if current is None:
        return [f"{pylock_name} is missing"]
    reasons = line_ending_problem(path, pylock_name)
    why = pylock.damage(current)
    if why is not None:
        return [*reasons, f"{pylock_name} {why}"]
    if stale:
        return reasons
    lock_name = f"requirements/{name}.txt"
    derived = pylock.problems(current, lock_name, text, environment_indexes())
    return [*reasons, *(f"{pylock_name} {why}" for why in derived)]
