"""What moved between two versions of the tier locks, for people and for pull requests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    from tooling.lockfile import Pin


def version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def versions_by_name(pins: Iterable[Pin]) -> dict[str, str]:
    found: dict[str, set[str]] = {}
    for pin in pins:
        found.setdefault(pin.name, set()).add(pin.version)
    return {name: "/".join(sorted(v, key=version_key)) for name, v in sorted(found.items())}


@dataclass(frozen=True)
class Yanked:
    """A pinned version its index marks yanked (PEP 592), as uv warned while locking."""

    name: str
    version: str
    reason: str  # "" when the index gives none
    tiers: list[str]

    def line(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"warning: {self.name} {self.version} is yanked on its index{why}; locked in "
            f"{', '.join(self.tiers)}: pin another version unless you need this one"
        )


@dataclass
class Changes:
    """What moved between the old locks and the new ones, per tier (tiers in order)."""

    tiers: list[str] = field(default_factory=list)
    per_tier: dict[str, dict[str, tuple[str | None, str | None]]] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)  # tiers locked for the first time
    cooldown: list[str] = field(default_factory=list)  # held back, kept, skipped (tooling.cooldown)
    yanked: list[Yanked] = field(default_factory=list)

    def grouped(self) -> dict[tuple[str, str, str], list[str]]:
        """(name, old, new) -> the tiers where it changed so; "" stands for absent."""
        grouped: dict[tuple[str, str, str], list[str]] = {}
        for tier in self.tiers:
            for name, (old, new) in self.per_tier.get(tier, {}).items():
                grouped.setdefault((name, old or "", new or ""), []).append(tier)
        return grouped

    def lines(self) -> list[str]:
        """`idna 3.4 → 3.20 (base, dev)`, then `added ...` and `removed ...` lines."""
        moved, added, removed = [], [], []
        for (name, old, new), tiers in sorted(self.grouped().items()):
            where = f"({', '.join(tiers)})"
            if old and new:
                moved.append(f"{name} {old} → {new} {where}")
            elif new:
                added.append(f"added {name} {new} {where}")
            else:
                removed.append(f"removed {name} {old} {where}")
        first = [
            f"{tier}: first lock, {count} package{'' if count == 1 else 's'}"
            for tier, count in self.first.items()
        ]
        lines = moved + added + removed + first
        lines = lines or ["nothing moved: every tier pins what it pinned before"]
        return lines + [yanked.line() for yanked in self.yanked] + self.cooldown

    def markdown(self) -> str:
        out = ["# What moved in the locks", ""]
        changed = [tier for tier in self.tiers if self.per_tier.get(tier)]
        cooldown = ["", "## Cooldown", "", *(f"- {line}" for line in self.cooldown)]
        if not changed and not self.first and not self.yanked:
            out.append("Nothing moved: every tier pins what it pinned before.")
            return "\n".join([*out, *(cooldown if self.cooldown else []), ""])
        out += [f"- {line}" for line in self.lines() if line not in self.cooldown]
        for tier in changed:
            out += ["", f"## {tier}", "", "| package | before | after |", "|---|---|---|"]
            for name, (old, new) in self.per_tier[tier].items():
                out.append(f"| {name} | {old or '(new)'} | {new or '(removed)'} |")
        if self.cooldown:
            out += cooldown
        return "\n".join(out) + "\n"


def compare(old: dict[str, str], new: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    return {
        name: (old.get(name), new.get(name))
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    }
