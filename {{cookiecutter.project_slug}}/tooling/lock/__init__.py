"""Hashed, consistent, incremental and atomic locks for every tier.

How it works:
1. Every input (the `.in` files and the `-c` files they name) is read once
   and digested once. uv resolves the union of all tiers from a snapshot of
   exactly those bytes in a temporary folder, with hashes, into
   requirements/_union.txt (the previous union seeds it, so unchanged
   packages keep their pins). Hashes of wheels that no Python allowed by
   requires-python can install are left out (tooling.distfiles).
2. Each stale tier's lock is its own closure: uv compiles the tier's `.in`
   with the union's pins as constraints (offline first, from the pages the
   union came from), so extras and markers decide what enters it, and every
   pin keeps the union's version and hash lines. A package shared by two
   tiers therefore has the same version and hashes in both.
3. Every lock's header records a digest of each input file's requirement
   lines (comments do not count), of the compile options and of its own
   body; a tier's header also records a digest of how the union pins its
   packages. A cut or edited union is never trusted: it is resolved again
   instead of being copied into tiers; a tier whose packages did not move in
   the union is kept byte for byte.
4. The drift check recomputes all of that without network, checks every tier
   pin against the union and every requirement of every `.in` against its
   tier's pins.
5. Each tier also gets requirements/pylock.<tier>.toml (PEP 751, tooling.pylock):
   the same pins, markers and hashes, with the file each hash names (from
   uv's listing of this run, or offline from the union when nothing was
   resolved). It records a digest of its tier lock's body and of its own, but
   the drift check derives it again from the `.txt` and the files it names
   (pylock.problems), and the lock writes again any pylock that check refuses.
   A union from before uninstallable hashes were left out loses the hashes
   uv lists no installable file for then (so every hash has its pylock file).
6. Locks (with pyproject.toml and the --report file) are written to
   temporary files and moved into place only after all of them were
   produced; any failure puts every file back as it was.
7. Solve groups ([tool.lockstep.solve-groups]) split the tiers into several
   unions (_union.txt for the default group, _union-<group>.txt for the
   others), each its own resolution with its own index lines. Stale groups
   resolve concurrently, one uv process each. A group that shares tiers with
   another resolves unconstrained, or against the shared pins already locked
   when those tiers did not change; it resolves again, with the owner's new
   pins as constraints, only when its shared packages came out different
   (first offline, from the index pages this run has just fetched). Then it takes the shared packages' lines (hashes included) from the
   owner, so a shared tier is locked the same everywhere.
8. A lock that succeeds records a digest of every file it read and wrote
   (tooling.lock.fresh); the next lock that finds the same digest has
   nothing to do and stops without parsing anything. The check never does.

The package, by layer (each module imports only those before it): inputs,
fresh (the no-op test), headers, render, uv (the process and its failures),
tools (the tools' own locks, `--tools`), pylocks, resolve (one group), groups (solve groups together), drift (the
check), command (the full lock), cli (`nox -s lock`: a no-op stops before the
modules after fresh are imported); `python -m tooling.lock` runs the command in
the current folder. Importing this package imports none of them: each name
below is imported from its module when it is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tooling.lock.cli import main, parse_arguments
    from tooling.lock.command import lock
    from tooling.lock.drift import advice, check
    from tooling.lock.headers import header, recorded
    from tooling.lock.inputs import UNION_CONSTRAINTS, LockError, requirement_digest
    from tooling.lock.render import Union, pinned, render_pin, tier_packages
    from tooling.lock.resolve import only_installable
    from tooling.lock.uv import YankedPins, find_uv, uv_reason

HOME = {
    "main": "cli",
    "parse_arguments": "cli",
    "lock": "command",
    "advice": "drift",
    "check": "drift",
    "header": "headers",
    "recorded": "headers",
    "UNION_CONSTRAINTS": "inputs",
    "LockError": "inputs",
    "requirement_digest": "inputs",
    "Union": "render",
    "pinned": "render",
    "render_pin": "render",
    "tier_packages": "render",
    "only_installable": "resolve",
    "YankedPins": "uv",
    "find_uv": "uv",
    "uv_reason": "uv",
}

__all__ = [
    "UNION_CONSTRAINTS",
    "LockError",
    "Union",
    "YankedPins",
    "advice",
    "check",
    "find_uv",
    "header",
    "lock",
    "main",
    "only_installable",
    "parse_arguments",
    "pinned",
    "recorded",
    "render_pin",
    "requirement_digest",
    "tier_packages",
    "uv_reason",
]


def __getattr__(name: str) -> object:
    """`lock.check` and the rest, imported on first use (a no-op lock needs few of them)."""
    if name not in HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{HOME[name]}"), name)
    globals()[name] = value
    return value
