"""Which pinned versions the tier locks hold.

A lock ships to every Python and platform its markers name, so every
`(name, version)` it pins is audited, whatever its marker says about the
interpreter running the audit. The pins are read with `tooling.lockfile`;
pip-audit reads the same pins from each tier's PEP 751 lock, which must say
exactly what the `.txt` says (`pylocks_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from tooling import lockfile, pylock, tiers
from tooling.audit import EXIT_CONFIG, EXIT_SERVICE, AuditError

PYPI_INDEX = "https://pypi.org/simple"


@dataclass(frozen=True)
class PinnedVersion:
    """One (name, version) pinned by one or more tier locks."""

    name: str  # canonical
    version: str  # as pinned
    tiers: tuple[str, ...]  # the tiers whose lock pins it, parents first
    markers: tuple[str, ...]  # the markers it is pinned under ("" for none)

    @property
    def key(self) -> tuple[str, Version | str]:
        return version_key(self.name, self.version)

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def version_key(name: str, version: str) -> tuple[str, Version | str]:
    """(name, version) as installers compare them: 2.0 and 2.0.0 are one version."""
    try:
        return (name, Version(version))
    except InvalidVersion:
        return (name, version.lower())


def discover_locks(requirements_dir: Path, only: Iterable[str] = ()) -> dict[str, Path]:
    """Tier name -> lock path, parents first; every tier must have its lock."""
    graph = tiers.read_tiers(requirements_dir)
    wanted = list(only) or list(graph)
    unknown = [name for name in wanted if name not in graph]
    if unknown:
        raise AuditError(f"unknown tier(s) {', '.join(unknown)}; tiers are: {', '.join(graph)}")
    locks = {name: requirements_dir / f"{name}.txt" for name in graph if name in wanted}
    missing = [str(path) for path in locks.values() if not path.is_file()]
    if missing:
        raise AuditError(f"missing lock(s) {', '.join(missing)}: run `nox -s lock` first")
    return locks


def pinned_versions(locks: Mapping[str, Path]) -> list[PinnedVersion]:
    """Every (name, version) any lock pins, once, with the tiers that pin it."""
    if not locks:
        raise AuditError("no locks to check")
    found: dict[tuple[str, Version | str], PinnedVersion] = {}
    for tier, path in locks.items():
        for pin in lockfile.read(path).pins:
            seen = PinnedVersion(pin.name, pin.version, (tier,), (pin.marker,))
            known = found.get(seen.key)
            if known is not None:
                seen = PinnedVersion(
                    known.name,
                    known.version,
                    tuple(dict.fromkeys((*known.tiers, tier))),
                    tuple(dict.fromkeys((*known.markers, pin.marker))),
                )
            found[seen.key] = seen
    return sorted(found.values(), key=lambda p: (p.name, _sort_version(p.version)))


def versions_to_check(locks: Mapping[str, Path]) -> list[PinnedVersion]:
    """`pinned_versions`, when there are any: an audit of no versions has checked nothing."""
    pins = pinned_versions(locks)
    if not pins:
        paths = ", ".join(str(path) for path in locks.values())
        pin = "pins" if len(locks) == 1 else "pin"
        raise AuditError(
            f"nothing checked: {paths} {pin} no package versions, so there is nothing to audit",
            EXIT_SERVICE,
        )
    return pins


def index_urls(locks: Mapping[str, Path]) -> list[str]:
    """The package indexes the locks were resolved from, as recorded (PyPI unless replaced)."""
    primary: list[str] = []
    extra: list[str] = []
    for path in locks.values():
        for option in lockfile.read(path).options:
            found = tiers.INDEX.match(option)
            if found and found[1] in ("-i", "--index-url"):
                primary.append(found[2])
            elif found and found[1] == "--extra-index-url":
                extra.append(found[2])
    return list(dict.fromkeys((primary or [PYPI_INDEX]) + extra))


def _sort_version(version: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def pylocks_of(locks: Mapping[str, Path]) -> dict[str, Path]:
    """Tier name -> its PEP 751 lock, which must say exactly what the tier's `.txt` says."""
    found = {}
    for tier, path in locks.items():
        standard = pylock.path_of(path.parent, tier)
        shown = f"{path.parent.name}/{standard.name}"
        try:
            text = standard.read_text(encoding="utf-8").replace("\r\n", "\n")
        except FileNotFoundError:
            raise AuditError(
                f"{shown} is missing: run `nox -s lock`, which writes it beside {path.name}",
                EXIT_CONFIG,
            ) from None
        lock_text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        # pip-audit reads the pylock: it must name exactly the versions the .txt pins
        why = pylock.version_problems(text, f"{path.parent.name}/{path.name}", lock_text)
        if why:
            raise AuditError(f"{shown} {'; '.join(why)}: run `nox -s lock`", EXIT_CONFIG)
        found[tier] = standard
    return found


def covering(pins: Iterable[PinnedVersion]) -> list[str]:
    """Tiers whose locks together pin every version, each chosen only when it adds one."""
    uncovered = {pin.key: pin.tiers for pin in pins}
    sizes: dict[str, int] = {}
    for tiers_of in uncovered.values():
        for tier in tiers_of:
            sizes[tier] = sizes.get(tier, 0) + 1
    chosen: list[str] = []
    for tier in sorted(sizes, key=lambda name: -sizes[name]):
        if any(tier in tiers_of for tiers_of in uncovered.values()):
            chosen.append(tier)
            uncovered = {key: t for key, t in uncovered.items() if tier not in t}
    return chosen
