"""The tier graph, read from requirements/*.in and their `-r` lines.

The `.in` files are the one source of truth: adding a tier means adding a
file that names its parent with `-r parent.in`. Each file is read once; its
text travels with the tier, so everything after (digests, the resolver's
snapshot) sees the same bytes.
"""

from __future__ import annotations

import graphlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from tooling import ToolingError, decode_utf8, lines_of, tier_rules, without_secrets

SAFE_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
COMMENT = re.compile(r"(^|\s+)#.*$")  # pip's: a # at the start or after whitespace
INCLUDE = re.compile(r"^(?:-r|--requirement)(?:\s+|=)(\S+)$")
CONSTRAINT = re.compile(r"^(?:-c|--constraint)(?:\s+|=)(\S+)$")
INDEX = re.compile(r"^(-i|--index-url|--extra-index-url|-f|--find-links)(?:\s+|=)(\S+)$")
DEFAULT_GROUP = "default"
SUPPORTED = (
    "a tier lists packages from an index by name, exact (name==1.2) or ranged (name>=1.2), "
    "plus -r parent.in, -c constraints-file, --index-url, --extra-index-url and --find-links URL"
)


class TierError(ToolingError):
    pass


@dataclass(frozen=True)
class Tier:
    name: str
    path: Path
    parents: tuple[str, ...]
    constraints: tuple[Path, ...]
    text: str = ""  # the file as read, byte-order mark removed
    index_lines: tuple[str, ...] = ()  # "--extra-index-url URL", as written
    requirements: tuple[tuple[int, Requirement], ...] = ()


def display(path: Path, root: Path | None) -> str:
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)


def read_text(path: Path, root: Path | None = None) -> str:
    """A UTF-8 file (a byte-order mark is allowed); anything else is one line naming the line."""
    where = display(path, root)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TierError(f"cannot read {where}: {error.strerror}") from None
    return decode_utf8(data, where, TierError).removeprefix("\ufeff")


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, content) of a requirements file's lines as pip reads them.

    Lines break at \\n, \\r\\n and \\r only; a line ending in a backslash is
    joined to the next one with nothing in between (`num\\` + `py` is numpy), a
    comment-only line ends such a join, and comments and blank lines are dropped.
    The joined line has the number of its first line.
    """
    joined: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(lines_of(text.removeprefix("\ufeff")), start=1):
        comment_only = COMMENT.match(line) is not None
        if line.endswith("\\") and not comment_only:
            start = start if pending else number
            pending.append(line.strip("\\"))
        elif pending:
            joined.append((start, "".join(pending) + (" " + line if comment_only else line)))
            pending = []
        else:
            joined.append((number, line))
    if pending:
        joined.append((start, "".join(pending)))
    stripped = ((number, COMMENT.sub("", line).strip()) for number, line in joined)
    return [(number, line) for number, line in stripped if line]


def constraint_path(path: Path, target: str, root: Path, where: str) -> Path:
    """A `-c` file relative to the `.in` that names it; it must stay inside the project.

    Symbolic links count where they lead: a link to a file outside is outside.
    """
    lexical = Path(os.path.normpath(path.parent / target))
    inside = lexical.is_relative_to(root) and lexical.resolve().is_relative_to(root.resolve())
    if Path(target).is_absolute() or "://" in target or not inside:
        raise TierError(
            f"{where}: -c {without_secrets(target)} is outside the project; "
            "name a file inside it relative to this one, like -c constraints.txt"
        )
    return lexical


def read_tier(path: Path, root: Path | None = None) -> Tier:
    root = root or path.parent.parent
    name = path.stem
    if not SAFE_NAME.fullmatch(name):
        raise TierError(
            f"{path}: tier name {name!r} is not a safe file name "
            "(use lowercase letters and digits separated by '-' or '_')"
        )
    text = read_text(path, root)
    relative = display(path, root)
    parents: list[str] = []
    constraints: list[Path] = []
    index_lines: list[str] = []
    requirements: list[tuple[int, Requirement]] = []
    for number, line in logical_lines(text):
        where = f"{relative}:{number}"
        if include := INCLUDE.match(line):
            parent = Path(include.group(1))
            if parent.parent != Path(".") or parent.suffix != ".in":
                raise TierError(
                    f"{where}: {without_secrets(line)!r} must name a tier file beside it, like -r base.in"
                )
            parents.append(parent.stem)
        elif constraint := CONSTRAINT.match(line):
            constraints.append(constraint_path(path, constraint.group(1), root, where))
        elif index := INDEX.match(line):
            option = {"-i": "--index-url", "-f": "--find-links"}.get(index.group(1), index.group(1))
            if not re.match(r"https?://", index.group(2)):
                raise TierError(
                    f"{where}: {option} {without_secrets(index.group(2))} is not an http(s) URL; a lock must "
                    "install the same way on every machine"
                )
            index_lines.append(f"{option} {index.group(2)}")
        elif line.startswith(("-e", "--editable")):
            raise TierError(
                f"{where}: editable {without_secrets(line)!r} cannot be locked with hashes; {SUPPORTED}"
            )
        elif line.startswith("-"):
            raise TierError(f"{where}: option {line.split()[0]!r} is not supported; {SUPPORTED}")
        else:
            requirements.append((number, requirement(line, where)))
    return Tier(
        name,
        path,
        tuple(parents),
        tuple(constraints),
        text,
        tuple(index_lines),
        tuple(requirements),
    )


def requirement(line: str, where: str) -> Requirement:
    try:
        parsed = Requirement(line)
    except InvalidRequirement:
        raise TierError(
            f"{where}: {without_secrets(line)!r} is not a requirement; {SUPPORTED}"
        ) from None
    if parsed.url:
        raise TierError(
            f"{where}: URL requirement {without_secrets(line)!r} cannot be locked; {SUPPORTED}"
        )
    return parsed


def read_tiers(requirements_dir: Path) -> dict[str, Tier]:
    """Read every tier, checked and ordered parents-first."""
    root = requirements_dir.parent
    paths = sorted(requirements_dir.glob("*.in"))
    if not paths:
        raise TierError(f"no tiers: {requirements_dir} has no *.in files")
    tiers = {tier.name: tier for tier in (read_tier(path, root) for path in paths)}

    def generated(path: Path) -> bool:  # a tier's lock or a union (_union, _union-<group>)
        path = path.resolve()  # a link to a lock is that lock
        stem = path.stem
        in_place = path.parent == requirements_dir.resolve() and path.suffix == ".txt"
        return in_place and (stem in tiers or stem == "_union" or stem.startswith("_union-"))

    graph = {name: tier.parents for name, tier in tiers.items()}
    for name, parent in tier_rules.unknown_parents(graph):
        raise TierError(
            f"{tiers[name].path}: -r {parent}.in names a tier that does not exist "
            f"({requirements_dir / (parent + '.in')} is missing)"
        )
    for tier in tiers.values():
        for constraint in tier.constraints:
            where = display(constraint, root)
            if generated(constraint):
                raise TierError(
                    f"{display(tier.path, root)}: -c {constraint.name} is a generated lock; "
                    "constrain with a file you write, like -c constraints.txt"
                )
            if not constraint.is_file():
                raise TierError(f"{tier.path}: constraint file {where} does not exist")
    order, cycle = tier_rules.parents_first(graph)
    if cycle:
        shown = " -> ".join(f"{name}.in" for name in cycle)
        raise TierError(f"tier cycle in {requirements_dir}: {shown}")
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


@dataclass(frozen=True)
class SolveGroup:
    """Tiers resolved together: its members and their ancestors form one union."""

    name: str
    members: tuple[str, ...]  # the tiers it locks, parents first
    closure: tuple[str, ...]  # members and every ancestor, parents first

    @property
    def union(self) -> str:
        """The stem of its union lock: _union for the default group, _union-<name> otherwise."""
        return "_union" if self.name == DEFAULT_GROUP else f"_union-{self.name}"


def solve_groups(tiers: dict[str, Tier], declared: Mapping[str, Sequence[str]]) -> list[SolveGroup]:
    """The default group (every tier not listed) first, then the declared ones in order."""
    owner: dict[str, str] = {}
    for group, names in declared.items():
        where = f"pyproject.toml: [tool.lockstep.solve-groups] {group}"
        if group == DEFAULT_GROUP:
            raise TierError(f"{where}: the name {DEFAULT_GROUP!r} is the group of unlisted tiers")
        if not names:
            raise TierError(f"{where} is empty: list at least one tier or remove the group")
        for name in names:
            if name not in tiers:
                raise TierError(f"{where} names tier {name!r}, which has no requirements/{name}.in")
            if name in owner:
                raise TierError(f"{where}: tier {name!r} is already in solve group {owner[name]}")
            owner[name] = group
    groups = []
    for group in [DEFAULT_GROUP, *declared]:
        members = tuple(name for name in tiers if owner.get(name, DEFAULT_GROUP) == group)
        if members:
            closure = {ancestor for name in members for ancestor in ancestors(tiers, name)}
            groups.append(
                SolveGroup(group, members, tuple(name for name in tiers if name in closure))
            )
    waits_for = {
        group.name: {owner.get(tier, DEFAULT_GROUP) for tier in group.closure} - {group.name}
        for group in groups
    }
    try:
        graphlib.TopologicalSorter(waits_for).prepare()
    except graphlib.CycleError as error:
        names = " and ".join(sorted(set(error.args[1])))
        raise TierError(
            f"pyproject.toml: [tool.lockstep.solve-groups] {names} each include a tier of "
            "the other (through -r lines): put those tiers in one group"
        ) from None
    return groups


def describe(tiers: dict[str, Tier], groups: Sequence[SolveGroup] = ()) -> list[str]:
    """One line per tier: 'name <- parent, parent', and its solve group when there are several."""
    group_of = {name: group.name for group in groups for name in group.members}
    several = len(groups) > 1
    lines = []
    for name, tier in tiers.items():
        line = f"{name} <- {', '.join(tier.parents)}" if tier.parents else f"{name} (root)"
        if several:
            line += f"  [solve group {group_of.get(name, DEFAULT_GROUP)}]"
        lines.append(line)
    return lines
