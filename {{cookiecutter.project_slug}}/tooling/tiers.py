"""The tier graph, read from requirements/*.in and their `-r` lines.

The `.in` files are the one source of truth: adding a tier means adding a
file that names its parent with `-r parent.in`.
"""

from __future__ import annotations

import graphlib
import re
from dataclasses import dataclass
from pathlib import Path

from tooling import ToolingError

SAFE_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
INCLUDE = re.compile(r"^(?:-r|--requirement)(?:\s+|=)(\S+)$")
CONSTRAINT = re.compile(r"^(?:-c|--constraint)(?:\s+|=)(\S+)$")


class TierError(ToolingError):
    pass


@dataclass(frozen=True)
class Tier:
    name: str
    path: Path
    parents: tuple[str, ...]
    constraints: tuple[Path, ...]


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Return (line number, content) with comments, blanks and continuations removed."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw if raw.lstrip().startswith("#") else re.sub(r"(^|\s)#.*$", "", raw)
        line = line.strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line and not line.startswith("#"):
            lines.append((start, line))
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def read_tier(path: Path) -> Tier:
    name = path.stem
    if not SAFE_NAME.fullmatch(name):
        raise TierError(
            f"{path}: tier name {name!r} is not a safe file name "
            "(use lowercase letters and digits separated by '-' or '_')"
        )
    parents: list[str] = []
    constraints: list[Path] = []
    for number, line in logical_lines(path.read_text(encoding="utf-8")):
        if include := INCLUDE.match(line):
            target = include.group(1)
            parent = Path(target)
            if parent.parent != Path(".") or parent.suffix != ".in":
                raise TierError(
                    f"{path}:{number}: {line!r} must name a tier file beside it, like -r base.in"
                )
            parents.append(parent.stem)
        elif constraint := CONSTRAINT.match(line):
            constraints.append(path.parent / constraint.group(1))
    return Tier(name, path, tuple(parents), tuple(constraints))


def read_tiers(requirements_dir: Path) -> dict[str, Tier]:
    """Read every tier, checked and ordered parents-first."""
    paths = sorted(requirements_dir.glob("*.in"))
    if not paths:
        raise TierError(f"no tiers: {requirements_dir} has no *.in files")
    tiers = {tier.name: tier for tier in map(read_tier, paths)}
    for tier in tiers.values():
        for parent in tier.parents:
            if parent not in tiers:
                raise TierError(
                    f"{tier.path}: -r {parent}.in names a tier that does not exist "
                    f"({requirements_dir / (parent + '.in')} is missing)"
                )
        for constraint in tier.constraints:
            if not constraint.is_file():
                raise TierError(f"{tier.path}: constraint file {constraint} does not exist")
    sorter = graphlib.TopologicalSorter({name: tier.parents for name, tier in tiers.items()})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as error:
        cycle = " -> ".join(f"{name}.in" for name in reversed(error.args[1]))
        raise TierError(f"tier cycle in {requirements_dir}: {cycle}") from None
    return {name: tiers[name] for name in order}


def ancestors(tiers: dict[str, Tier], name: str) -> list[str]:
    """The tier and everything it includes, parents first."""
    seen: dict[str, None] = {}

    def visit(tier: str) -> None:
        for parent in tiers[tier].parents:
            visit(parent)
        seen.setdefault(tier, None)

    visit(name)
    return list(seen)


def describe(tiers: dict[str, Tier]) -> list[str]:
    """One line per tier: 'name <- parent, parent'."""
    return [
        f"{name} <- {', '.join(tier.parents)}" if tier.parents else f"{name} (root)"
        for name, tier in tiers.items()
    ]
