"""The drift check: every lock against its inputs, its union and its pylock, without network."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tooling import dependencies, lockfile, pylock
from tooling.atomic import shown
from tooling.lock.groups import shared_pins
from tooling.lock.headers import (
    body_damage,
    line_ending_problem,
    read_lock,
    recorded,
    stale_reasons,
)
from tooling.lock.inputs import DIRECT_PIN, Inputs, project_groups, read_inputs, unique
from tooling.lock.pylocks import pylock_problems
from tooling.lock.render import Union, union_label
from tooling.lock.resolve import Shared
from tooling.lockfile import LockFile, Pin
from tooling.project import (
    Project,
    python_version_problems,
    wheel_requirement_problems,
    written_by_lock,
)
from tooling.tiers import (
    SolveGroup,
    ancestors,
    logical_lines,
)


def pin_problems(source: str, pins: Sequence[Pin]) -> list[str]:
    """The policy guard: every package pinned with == (the parser ensures it) and hashed."""
    return [f"{source}: {pin.name}=={pin.version} has no --hash" for pin in pins if not pin.hashes]


@cache
def may_apply(marker: str, python_minor: str) -> bool:
    """Whether a requirement's marker holds on some platform and Python a universal lock covers."""
    first = int(python_minor.split(".")[1])
    for minor in range(first, max(first, 14) + 1):
        for platform, system, os_name in (
            ("linux", "Linux", "posix"),
            ("darwin", "Darwin", "posix"),
            ("win32", "Windows", "nt"),
        ):
            for machine in ("x86_64", "aarch64", "AMD64", "arm64"):
                environment = {
                    "python_version": f"3.{minor}",
                    "python_full_version": f"3.{minor}.0",
                    "sys_platform": platform,
                    "platform_system": system,
                    "os_name": os_name,
                    "platform_machine": machine,
                    "implementation_name": "cpython",
                    "platform_python_implementation": "CPython",
                    "extra": "",
                }
                if Marker(marker).evaluate(environment):
                    return True
    return False


def constraint_requirements(text: str) -> list[tuple[int, Requirement]]:
    found = []
    for number, line in logical_lines(text):
        if line.startswith("-"):
            continue
        try:
            found.append((number, Requirement(line)))
        except InvalidRequirement:
            continue
    return found


def unmet_requirements(
    project: Project, inputs: Inputs, name: str, pins: Sequence[Pin]
) -> list[str]:
    """Requirement lines of the tier's inputs that none of its pins satisfies.

    A universal lock may pin a package twice under exclusive markers; a line is
    met when some pin of that name satisfies it.
    """
    versions: dict[str, list[str]] = {}
    for pin in pins:
        versions.setdefault(pin.name, []).append(pin.version)
    problems = []
    for member in ancestors(inputs.tiers, name):
        tier = inputs.tiers[member]
        lines: list[tuple[str, int, Requirement, bool]] = [
            (inputs.relative(tier.path), number, requirement, True)
            for number, requirement in tier.requirements
        ]
        for constraint in tier.constraints:
            relative = inputs.relative(constraint)
            lines += [
                (relative, number, requirement, False)
                for number, requirement in constraint_requirements(inputs.texts[relative])
            ]
        for source, number, requirement, required in lines:
            if requirement.marker and not may_apply(str(requirement.marker), project.python_minor):
                continue
            found = versions.get(canonicalize_name(requirement.name), [])
            if not found:
                if required:
                    problems.append(f"{source}:{number}: {requirement} has no pin in {name}.txt")
            elif not any(requirement.specifier.contains(v, prereleases=True) for v in found):
                pinned = "/".join(found)
                problems.append(
                    f"{source}:{number}: {requirement} is not met by {name}.txt "
                    f"({requirement.name} {pinned})"
                )
    return problems


def unpinned_direct_requirements(inputs: Inputs) -> list[str]:
    problems = []
    for tier in inputs.tiers.values():
        for number, line in logical_lines(tier.text):
            if not line.startswith("-") and not DIRECT_PIN.match(line):
                problems.append(f"{tier.path.name}:{number}: {line!r} is not pinned with ==")
    return problems


def generated_orphans(project: Project, inputs: Inputs, groups: Sequence[SolveGroup]) -> list[Path]:
    """Locks we wrote whose tier or group is gone (a hand-written .txt is never touched)."""
    keep = {*inputs.tiers, *(group.union for group in groups)}
    constraints = inputs.constraint_files()
    orphans = []
    for path in sorted(project.requirements_dir.glob("*.txt")):
        if path.stem in keep or path.relative_to(project.root).as_posix() in constraints:
            continue
        if written_by_lock(path):
            orphans.append(path)
    for path in sorted(project.requirements_dir.glob("pylock.*.toml")):
        if pylock.tier_of(path) not in inputs.tiers and written_by_lock(path):
            orphans.append(path)
    return orphans


def orphan_reason(path: Path) -> str:
    if (tier := pylock.tier_of(path)) is not None:
        return f"requirements/{tier}.in is gone"
    if path.stem == "_union":
        return "every tier is in a solve group of its own now"
    if path.stem.startswith("_union-"):
        return f"solve group {path.stem.removeprefix('_union-')} is gone"
    return f"requirements/{path.stem}.in is gone"


def check(project: Project) -> list[str]:
    """Every reason the locks are not current, one line each, grouped by tier. No network."""
    inputs = read_inputs(project)
    groups = project_groups(project, inputs)
    owner_of = {tier: group.name for group in groups for tier in group.members}
    problems: list[str] = []
    unions: dict[str, LockFile] = {}
    for group in groups:
        label, union_name = union_label(group), f"requirements/{group.union}.txt"
        union_text = read_lock(project.requirements_dir / f"{group.union}.txt")
        if union_text is None:
            problems.append(f"{label}: {union_name} is missing")
            continue
        files = inputs.files(group.members)
        reasons = line_ending_problem(project.requirements_dir / f"{group.union}.txt", union_name)
        reasons += stale_reasons(project, inputs, union_name, union_text, files)
        damage = body_damage(union_text)
        if damage:
            reasons.append(f"{union_name} {damage}")
        problems += [f"{label}: {reason}" for reason in reasons]
        if not reasons:
            try:
                unions[group.name] = lockfile.parse(union_text, union_name)
            except lockfile.LockFileError as error:
                problems.append(f"{label}: {error}")
    pins = {name: list(union.pins) for name, union in unions.items()}
    for group in groups:
        if group.name not in pins:
            continue
        lines = {pin.lines for pin in pins[group.name]}
        differing: dict[str, Shared] = {}
        for item in shared_pins(inputs, group, owner_of, pins):
            if item.pin.lines not in lines:
                differing.setdefault(item.pin.name, item)
        for item in differing.values():
            problems.append(
                f"{union_label(group)}: {item.pin.name} {item.pin.version} of the shared tier "
                f"{item.tier} is not locked as solve group {item.owner} locks it"
            )
    for name in inputs.tiers:
        lock_name = f"requirements/{name}.txt"
        text = read_lock(project.requirements_dir / f"{name}.txt")
        if text is None:
            problems.append(f"{name}: {lock_name} is missing")
            continue
        owner = next(group for group in groups if name in group.members)
        union = None
        if owner.name in unions:
            union = Union(f"requirements/{owner.union}.txt", unions[owner.name].pins)
        reasons = line_ending_problem(project.requirements_dir / f"{name}.txt", lock_name)
        try:
            parsed = lockfile.parse(text, lock_name)
        except lockfile.LockFileError as error:
            reasons += tier_staleness(project, inputs, name, text, union)
            reasons.append(str(error))
        else:
            reasons += tier_staleness(project, inputs, name, text, union, parsed.pins)
            reasons += pin_problems(lock_name, parsed.pins)
            if not reasons and union is not None:
                reasons += pins_unlike_union(lock_name, parsed.pins, union)
            if not reasons:  # a stale lock is not expected to meet its new inputs yet
                reasons += unmet_requirements(project, inputs, name, parsed.pins)
        reasons += pylock_problems(project, name, text, stale=bool(reasons))
        problems += [f"{name}: {reason}" for reason in reasons]
    for orphan in generated_orphans(project, inputs, groups):
        label = pylock.tier_of(orphan) or orphan.stem.removeprefix("_")
        problems.append(
            f"{label}: {shown(orphan)} is left over: {orphan_reason(orphan)}; `nox -s lock` deletes it"
        )
    problems += [f"python: {problem}" for problem in python_version_problems(project)]
    problems += [f"uv: {problem}" for problem in dependencies.problems(project)]
    roots = [name for name, tier in inputs.tiers.items() if not tier.parents]
    for problem in wheel_requirement_problems(project, roots[0]) if len(roots) == 1 else []:
        problems.append(f"wheel: {problem}")
    if project.settings.get("require-exact-pins", False):
        problems += [f"policy: {problem}" for problem in unpinned_direct_requirements(inputs)]
    return problems


def tier_staleness(
    project: Project,
    inputs: Inputs,
    name: str,
    text: str,
    union: Union | None,
    pins: Sequence[Pin] | None = None,
) -> list[str]:
    """Why a tier's lock must be derived again from its (current) union.

    `pins` are the lock's, when the caller has parsed it already.
    """
    lock_name = f"requirements/{name}.txt"
    reasons = stale_reasons(project, inputs, lock_name, text, inputs.files([name]))
    if not reasons and (damage := body_damage(text)):
        reasons.append(f"{lock_name} {damage}")
    if not reasons and union is not None:
        try:
            pins = lockfile.parse(text, lock_name).pins if pins is None else pins
        except lockfile.LockFileError:
            return reasons  # the check names the line; the lock derives it again
        if recorded(text).derived_from != union.digest_of(pin.name for pin in pins):
            reasons.append(f"{lock_name} pins packages that moved in {union.path}")
    return reasons


def pins_unlike_union(lock_name: str, pins: Sequence[Pin], union: Union) -> list[str]:
    """Tier pins that are not exactly the union's (same version, same hashes)."""
    locked = {(pin.name, pin.version, pin.hashes) for pin in union.pins}
    return [
        f"{lock_name}: {pin.name} {pin.version} is not pinned as {union.path} pins it"
        for pin in pins
        if (pin.name, pin.version, pin.hashes) not in locked
    ]


def fixed_by_lock(problem: str) -> bool:
    """Whether `nox -s lock` fixes a problem (once its inputs are right): all but some python ones."""
    return not problem.startswith("python:") or "`nox -s lock` rewrites it" in problem


def advice(problems: Sequence[str]) -> str:
    """The summary under the problems: the fixes they need, and only those."""
    groups = unique(problem.split(":", 1)[0] for problem in problems)
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    steps = []
    if any(fixed_by_lock(problem) for problem in problems):
        steps.append(
            "fix the inputs named above (never edit a lock), run `nox -s lock` and commit "
            "requirements/"
        )
    if not all(fixed_by_lock(problem) for problem in problems):
        steps.append("do what each python line above says")
    return f"lock check failed: {count} in {', '.join(groups)}; {', then '.join(steps)}"
