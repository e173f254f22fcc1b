"""Writing locks: pins rendered with their hashes and `# via` lines, unions and tier locks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from packaging.utils import canonicalize_name

from tooling.lock.headers import header
from tooling.lock.inputs import Inputs, index_lines, sha256
from tooling.lockfile import Pin
from tooling.project import Project
from tooling.tiers import (
    DEFAULT_GROUP,
    SolveGroup,
    ancestors,
)


def render_pin(pin: Pin, keep: Callable[[str], bool]) -> list[str]:
    via = [origin for origin in pin.via if keep(origin)]
    if len(via) == 1:
        return [*pin.lines, f"    # via {via[0]}"]
    return [*pin.lines, *(["    # via"] if via else []), *(f"    #   {v}" for v in via)]


def tier_packages(pins: Sequence[Pin], origins: set[str]) -> set[str]:
    """Names reachable from the given `-r file` origins through `via` edges."""
    needed_by: dict[str, set[str]] = {}
    for pin in pins:
        for origin in pin.via:
            needed_by.setdefault(canonicalize_name(origin), set()).add(pin.name)
    selected = {pin.name for pin in pins if origins.intersection(pin.via)}
    frontier = list(selected)
    while frontier:
        for dependency in needed_by.get(frontier.pop(), ()):
            if dependency not in selected:
                selected.add(dependency)
                frontier.append(dependency)
    return selected


def tier_origins(inputs: Inputs, name: str) -> set[str]:
    """The `-r file` origins in a union that mean "this tier's closure asked for it"."""
    return {f"-r {inputs.relative(inputs.tiers[m].path)}" for m in ancestors(inputs.tiers, name)}


@dataclass(frozen=True)
class Union:
    """A group's union lock as this run has it: where it is and what it pins."""

    path: str  # "requirements/_union.txt"
    pins: Sequence[Pin]

    def digest_of(self, names: Iterable[str]) -> str:
        """Digest of every union pin (all its marker forks, hashes included) of these packages."""
        wanted = set(names)
        return sha256(
            "\n".join(line for pin in self.pins if pin.name in wanted for line in pin.lines)
        )


def render_tier(
    project: Project, inputs: Inputs, name: str, union: Union, pins: Sequence[Pin]
) -> str:
    """A tier's lock: its closure's pins, with a digest of how the union pins those packages.

    The digest makes the tier stale when any of its packages moves in the union,
    and only then: a tier whose packages the union still pins alike stays byte-identical.
    """
    title = f"requirements/{name}.txt: hashed lock of the {name} tier."
    body = index_lines(project, inputs, [name])
    for pin in pins:
        body += render_pin(pin, lambda origin: True)
    body_text = "\n".join(body) + "\n"
    lines = header(project, inputs, title, inputs.files([name]))
    digest = union.digest_of(pin.name for pin in pins)
    lines.append(f"# union pins sha256:{digest} (its packages as {union.path} pins them)")
    lines.append(f"# body sha256:{sha256(body_text)} (of every line below)")
    return "\n".join(lines) + "\n" + body_text


def union_title(group: SolveGroup) -> str:
    if group.name == DEFAULT_GROUP:
        return f"requirements/{group.union}.txt: every tier resolved at once."
    return (
        f"requirements/{group.union}.txt: solve group {group.name} "
        f"({', '.join(group.members)} and their parents) resolved at once."
    )


def render_union(project: Project, inputs: Inputs, group: SolveGroup, pins: Sequence[Pin]) -> str:
    body = index_lines(project, inputs, group.members)
    for pin in pins:
        body += render_pin(pin, lambda origin: True)
    body_text = "\n".join(body) + "\n"
    lines = header(project, inputs, union_title(group), inputs.files(group.members))
    lines.append(f"# body sha256:{sha256(body_text)} (of every line below)")
    return "\n".join(lines) + "\n" + body_text


def pinned(pin: Pin) -> str:
    """A pin as a constraint line: `name==version ; marker`."""
    return f"{pin.name}=={pin.version}" + (f" ; {pin.marker}" if pin.marker else "")


def union_constraints(pins: Sequence[Pin]) -> str:
    """The union's pins as constraints, with their `# via` lines (uv skips comments)."""
    lines = []
    for pin in pins:
        lines += render_pin(replace(pin, lines=(pinned(pin),)), lambda origin: True)
    return "\n".join(lines) + "\n"


def union_label(group: SolveGroup) -> str:
    return group.union.removeprefix("_")
