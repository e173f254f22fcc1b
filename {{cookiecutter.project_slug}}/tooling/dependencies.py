"""Where a dependency goes: always a tier's `.in`, whatever tool tried to put it elsewhere.

One model: `requirements/<tier>.in` is the only place a dependency is written,
`nox -s lock` is the only thing that locks, and the wheel reads its
requirements from the root tier's `.in` (pyproject.toml's hatch hook).
`invoke add` and `invoke remove` edit a tier's `.in` and lock, and put the
`.in` back when the lock fails, so nothing is half done.

uv's own project commands write elsewhere: `uv add X` lists X in
[project].dependencies (refused by the build here, since those are read from
the `.in`), `uv add --group G X` in [dependency-groups], and both write a
`uv.lock`. None of that reaches a tier, an image or the audit, so the drift
check names each of them in one line with the command that does it right
(`problems`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tooling import ToolingError
from tooling.atomic import write_all
from tooling.project import Project
from tooling.tiers import Tier, read_tiers


class DependencyError(ToolingError):
    pass


def root_tier(tiers: dict[str, Tier]) -> str:
    """The tier every other one includes (the wheel's requirements), when there is one."""
    roots = [name for name, tier in tiers.items() if not tier.parents]
    if len(roots) != 1:
        raise DependencyError(
            f"the tiers have {len(roots)} roots ({', '.join(roots)}): name one with --tier"
        )
    return roots[0]


def parsed(text: str) -> Requirement:
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        raise DependencyError(
            f"{text!r} is not a requirement: write it like numpy, numpy>=2 or 'uvicorn[standard]'"
        ) from None
    if requirement.url:
        raise DependencyError(f"{text!r} is a URL requirement, which cannot be locked with hashes")
    return requirement


def chosen_tier(tiers: dict[str, Tier], tier: str | None) -> Tier:
    name = tier or root_tier(tiers)
    if name not in tiers:
        raise DependencyError(f"unknown tier {name!r}: choose one of {', '.join(tiers)}")
    return tiers[name]


def naming(tier: Tier, name: str) -> list[tuple[int, Requirement]]:
    """(line number, requirement) of each requirement of the tier's `.in` that names the package."""
    wanted = canonicalize_name(name)
    return [(n, found) for n, found in tier.requirements if canonicalize_name(found.name) == wanted]


def add(
    project: Project, requirements: list[str], tier: str | None, lock: Callable[[], None]
) -> str:
    """Append the requirements to the tier's `.in` and lock; the `.in` is restored if it fails."""
    if not requirements:
        raise DependencyError("name what to add: invoke add NAME [--tier TIER]")
    chosen = chosen_tier(read_tiers(project.requirements_dir), tier)
    name, path = chosen.name, chosen.path
    text = path.read_text(encoding="utf-8")
    added = []
    for raw in requirements:
        requirement = parsed(raw)
        if present := naming(chosen, requirement.name):
            number, line = present[0]
            raise DependencyError(
                f"{requirement.name} is already in requirements/{name}.in (line {number}: "
                f"{line}): edit that line, then run `nox -s lock`"
            )
        added.append(str(requirement))
    separator = "" if not text or text.endswith("\n") else "\n"
    locked_with(path, text + separator + "".join(f"{line}\n" for line in added), text, lock)
    return f"added {', '.join(added)} to requirements/{name}.in and locked"


def remove(project: Project, names: list[str], tier: str | None, lock: Callable[[], None]) -> str:
    """Delete the lines naming the packages from the tier's `.in` and lock (restored on failure)."""
    if not names:
        raise DependencyError("name what to remove: invoke remove NAME [--tier TIER]")
    tiers = read_tiers(project.requirements_dir)
    chosen = chosen_tier(tiers, tier)
    tier_name, path = chosen.name, chosen.path
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    doomed: set[int] = set()
    for name in names:
        present = naming(chosen, name)
        if not present:
            elsewhere = [other for other, found in tiers.items() if naming(found, name)]
            where = f" (it is in {', '.join(f'{t}.in' for t in elsewhere)}: use --tier)"
            raise DependencyError(
                f"requirements/{tier_name}.in does not name {name}" + (where if elsewhere else "")
            )
        for number, _ in present:
            if lines[number - 1].rstrip("\r\n").endswith("\\"):
                raise DependencyError(
                    f"requirements/{tier_name}.in line {number} continues onto the next line: "
                    "remove it by hand, then run `nox -s lock`"
                )
            doomed.add(number)
    kept = "".join(line for number, line in enumerate(lines, start=1) if number not in doomed)
    locked_with(path, kept, text, lock)
    return f"removed {', '.join(names)} from requirements/{tier_name}.in and locked"


def locked_with(path: Path, new: str, old: str, lock: Callable[[], None]) -> None:
    write_all({path: new})
    try:
        lock()
    except ToolingError as error:
        write_all({path: old})  # a failed lock changed no lock: the `.in` goes back too
        raise DependencyError(f"{error} (requirements/{path.name} is as it was)") from None
    except BaseException:
        write_all({path: old})
        raise


def problems(project: Project) -> list[str]:
    """What uv's project commands wrote that no tier will ever see, one line each."""
    found = []
    dependencies = project.pyproject.get("project", {}).get("dependencies")
    for entry in dependencies if isinstance(dependencies, list) else []:
        found.append(
            f"pyproject.toml [project] dependencies lists {entry!r}, but the wheel's "
            f"requirements are the root tier's .in: run `invoke add '{entry}'` and delete "
            "that list (uv add writes there)"
        )
    groups = project.pyproject.get("dependency-groups")
    for group, entries in groups.items() if isinstance(groups, dict) else []:
        for entry in entries if isinstance(entries, list) else []:
            found.append(
                f"pyproject.toml [dependency-groups] {group} lists {entry!r}, which no tier "
                f"locks: run `invoke add '{entry}' --tier TIER` and delete [dependency-groups] "
                "(uv add --group writes there)"
            )
    if (project.root / "uv.lock").exists():
        found.append(
            "uv.lock is not this project's lock (uv add, uv lock or uv sync wrote it): the "
            "locks are requirements/*.txt, written by `nox -s lock`; delete uv.lock"
        )
    return found
