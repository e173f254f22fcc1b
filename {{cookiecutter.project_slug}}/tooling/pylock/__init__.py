"""PEP 751 locks: requirements/pylock.<tier>.toml beside each tier's requirements lock.

A pylock is written from its tier's `.txt` (the same pins, markers and hashes)
and from the files uv listed for those hashes (name and URL). Its header
records a digest of the `.txt` body it came from and of its own body. Those
digests only say that nobody edited it carelessly: the drift check derives
the pylock again, without network, from the `.txt` and the files the pylock
names (each must be a file of its pin, hashed by the `.txt`, on an index the
`.txt` names; every hash of the `.txt` must have its file), and names every
difference. pip (26.1+), uv and
`pip-audit --locked` read it.

The package, by layer (each module imports only those before it): headers (the
file's name and its digests), sources (the tier lock it comes from, the files
it may name), writing (`render`, `derive`), reading (its packages, read back)
and check (`problems`, `version_problems`).
"""

from __future__ import annotations

from tooling.pylock.check import problems, version_problems
from tooling.pylock.headers import (
    Recorded,
    damage,
    header_lines,
    path_of,
    problem,
    recorded,
    source_digest,
    split_header,
    tier_of,
)
from tooling.pylock.reading import Package, read_packages
from tooling.pylock.sources import ForeignFile, Source, Sources, Underivable, source_of, sources_of
from tooling.pylock.writing import UnlistedFiles, by_hash, derive, render

__all__ = [
    "ForeignFile",
    "Package",
    "Recorded",
    "Source",
    "Sources",
    "Underivable",
    "UnlistedFiles",
    "by_hash",
    "damage",
    "derive",
    "header_lines",
    "path_of",
    "problem",
    "problems",
    "read_packages",
    "recorded",
    "render",
    "source_digest",
    "source_of",
    "sources_of",
    "split_header",
    "tier_of",
    "version_problems",
]
