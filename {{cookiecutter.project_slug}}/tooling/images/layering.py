"""Layered tiers: which tier's environment each tier's image starts from.

A child tier's image is its parent tier's environment (the same layers, byte
for byte) plus one layer holding what the child adds, or no layer when it adds
no package. A tier builds on a parent (one of its `-r` lines) only when the
two share everything that makes the parent's layers right for the child: the
same solve group (shared pins are one resolution), the same base image, the
same index lines, and every pin of the parent's lock, hashes included, in the
child's lock. Otherwise the tier starts from the base image, as a root tier.
Of several such parents, the one with the most pins is chosen (then the first
named), so the child's own layer is the smallest.

`invoke build` builds the parents' environment images first
(environment_image) and hands each tier its start as build arguments;
`invoke verify` reads the same plan to know which locks and how many layers
an image holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tooling import lockfile, tiers
from tooling.base_image.choice import tier_base_image
from tooling.project import Project

# The Dockerfile's stages (build argument ENVIRONMENT): a tier's own layer, or none.
# Both build arguments are always passed: buildah resolves a stage named through a
# build argument only from the arguments given, never from the Dockerfile's defaults.
INSTALLED = "installed"
INHERITED = "inherited"
BARE = "bare"  # the stage a root tier's environment starts from (ENVIRONMENT_BASE)


@dataclass(frozen=True)
class Start:
    """Where a tier's environment starts, and whether it installs a layer of its own."""

    tier: str
    parent: str | None  # the tier whose environment it builds on; None: the base image
    installs: bool  # False: the parent's environment is the whole of this tier's

    @property
    def stage(self) -> str:
        return INSTALLED if self.installs else INHERITED


def environment_image(project_name: str, tier: str) -> str:
    """The local image of a tier's environment stage, which its child tiers start from."""
    return f"localhost/{project_name}-environment:{tier}"


def environment_base(
    project_name: str, start: Start, named: Callable[[str], str] = lambda image: image
) -> str:
    """The ENVIRONMENT_BASE build argument: the parent's environment image (as `named` names
    it, e.g. for one platform of several), or the bare stage."""
    return named(environment_image(project_name, start.parent)) if start.parent else BARE


def pin_key(pin: lockfile.Pin) -> tuple[str, str, str, frozenset[str]]:
    return pin.name, pin.version, pin.marker, pin.hash_set


def contains(child: lockfile.LockFile, parent: lockfile.LockFile) -> bool:
    """Whether installing `child` on `parent`'s environment keeps every file the parent made."""
    if child.options != parent.options:
        return False
    return {pin_key(pin) for pin in parent.pins} <= {pin_key(pin) for pin in child.pins}


def read_locks(project: Project, names: list[str]) -> dict[str, lockfile.LockFile]:
    locks = {}
    for name in names:
        path = project.requirements_dir / f"{name}.txt"
        if path.is_file():
            locks[name] = lockfile.read(path, f"requirements/{name}.txt")
    return locks


def group_of(project: Project, graph: Mapping[str, tiers.Tier]) -> dict[str, str]:
    declared = project.settings.get("solve-groups", {})
    groups = tiers.solve_groups(dict(graph), declared)
    return {name: group.name for group in groups for name in group.members}


def parent_of(
    project: Project,
    tier: tiers.Tier,
    locks: Mapping[str, lockfile.LockFile],
    group: Mapping[str, str],
) -> str | None:
    """The parent `tier` builds on: one whose layers are right for it, the largest; or None."""
    name = tier.name
    if name not in locks:
        return None
    fitting = [
        each
        for each in tier.parents
        if each in locks
        and group.get(each) == group.get(name)
        and tier_base_image(project, each) == tier_base_image(project, name)
        and contains(locks[name], locks[each])
    ]
    if not fitting:
        return None
    return max(fitting, key=lambda each: (len(locks[each].pins), -fitting.index(each)))


def plan(project: Project, graph: Mapping[str, tiers.Tier]) -> dict[str, Start]:
    """Every tier's start, parents first (the order of `graph`)."""
    locks = read_locks(project, list(graph))
    group = group_of(project, graph)
    starts: dict[str, Start] = {}
    for name, tier in graph.items():
        parent = parent_of(project, tier, locks, group)
        installs = parent is None or len(locks[name].pins) > len(locks[parent].pins)
        starts[name] = Start(name, parent, installs)
    return starts


def ancestors(starts: Mapping[str, Start], tier: str) -> list[str]:
    """The tiers whose environment images `tier` builds on, root first (not `tier` itself)."""
    chain: list[str] = []
    parent = starts[tier].parent
    while parent is not None:
        chain.insert(0, parent)
        parent = starts[parent].parent
    return chain


def installed(starts: Mapping[str, Start], tier: str) -> list[str]:
    """The tiers whose locks an image of `tier` installed, one layer each, root first."""
    return [each for each in [*ancestors(starts, tier), tier] if starts[each].installs]


def installed_tiers(project: Project, tier: str) -> list[str]:
    """The tiers whose locks this checkout's image of `tier` installs, root first (for verify)."""
    graph = tiers.read_tiers(project.requirements_dir)
    return installed(plan(project, graph), tier)
