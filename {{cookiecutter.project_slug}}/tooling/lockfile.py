"""Reading hashed lock files: the one parser behind locking, auditing and image checks.

A lock is what `uv pip compile --generate-hashes` writes: leading `#` header
lines, option lines (`--index-url ...`), then one block per pinned package:

    numpy==2.2.6 ; python_full_version < '3.12' \\
        --hash=sha256:... \\
        --hash=sha256:...
        # via -r requirements/hunter.in

Names, versions and markers are read with `packaging`, so a lock is judged by
the same rules pip and uv apply. Anything else is an error naming the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tooling import ToolingError, decode_utf8, lines_of

HASH = re.compile(r"^--hash[=\s]([a-z0-9]+:[0-9a-fA-F]+)\s*\\?$")
HASH_LINE = re.compile(r"\s+--hash[=\s]([a-z0-9]+:[0-9a-fA-F]+)\s*\\?\s*")  # HASH, indented
CONFLICT_MARKER = re.compile(r"^(<{7}|={7}|>{7}|\|{7})(\s|$)")


class LockFileError(ToolingError):
    """A lock that cannot be read; `line` and `reason` say where and why (line 0: the file)."""

    def __init__(self, message: str, line: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.reason = reason or message


@dataclass(frozen=True)
class Pin:
    """One pinned package of a lock."""

    name: str  # canonical (PEP 503) name
    version: str  # exactly as pinned, local labels included (2.1.0+cpu)
    marker: str  # the environment marker as written, "" when there is none
    extras: tuple[str, ...]
    hashes: tuple[str, ...]  # "sha256:<hex>"
    via: tuple[str, ...]  # what asked for it: "-r requirements/base.in", "pydantic", ...
    line: int  # line number of the requirement line
    lines: tuple[str, ...]  # the requirement line and its hash lines, as written

    @cached_property
    def hash_set(self) -> frozenset[str]:
        """The hashes, for membership tests (a pin of a big package has dozens)."""
        return frozenset(self.hashes)

    def applies(self, environment: Mapping[str, str] | None = None) -> bool:
        """Whether an installer in `environment` (default: this Python) installs this pin."""
        if not self.marker:
            return True
        return Marker(self.marker).evaluate(dict(environment) if environment else None)


@dataclass(frozen=True)
class LockFile:
    header: tuple[str, ...]  # the leading comment lines
    options: tuple[str, ...]  # --index-url, --extra-index-url, --find-links lines
    pins: tuple[Pin, ...]

    def versions(self) -> set[tuple[str, str]]:
        """Every (name, version) the lock pins, whatever its markers."""
        return {(pin.name, pin.version) for pin in self.pins}


@lru_cache(maxsize=1024)  # a pin is in the union and in every tier that has it
def parse_pin(text: str) -> tuple[str, str, str, tuple[str, ...]]:
    """(name, version, marker, extras) of a `name[extras]==version ; marker` line.

    Raises LockFileError with the reason alone; `parse` adds where it is.
    """
    if CONFLICT_MARKER.match(text):
        raise LockFileError("conflict marker")
    if text.startswith(("-e", "--editable")):
        raise LockFileError(f"editable requirement {text!r} cannot be locked with hashes")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        # packaging's message goes on with the line and a caret: its first line says it all
        first = str(error).splitlines()[0].rstrip(":") if str(error) else "unreadable"
        raise LockFileError(f"not a requirement: {text!r} ({first})") from None
    if requirement.url:
        raise LockFileError(f"URL requirement {text!r} is not a pinned version")
    specifiers = list(requirement.specifier)
    if (
        len(specifiers) != 1
        or specifiers[0].operator not in ("==", "===")
        or "*" in str(specifiers[0].version)
    ):
        raise LockFileError(f"{text!r} is not pinned to one version with ==")
    marker = text.split(";", 1)[1].strip() if requirement.marker else ""
    return (
        canonicalize_name(requirement.name),
        specifiers[0].version,
        marker,
        tuple(sorted(requirement.extras)),
    )


@dataclass
class Block:
    """A pin being read: its requirement line, then its hash and via lines."""

    name: str
    version: str
    marker: str
    extras: tuple[str, ...]
    line: int
    lines: list[str]
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)

    def pin(self) -> Pin:
        return Pin(
            self.name,
            self.version,
            self.marker,
            self.extras,
            tuple(self.hashes),
            tuple(self.via),
            self.line,
            tuple(self.lines),
        )


@lru_cache(maxsize=32)  # the drift check reads each tier lock twice (itself, its pylock's source)
def parse(text: str, source: str = "lock") -> LockFile:
    """Parse a lock's text; `source` names it in errors ("requirements/base.txt")."""
    header: list[str] = []
    options: list[str] = []
    pins: list[Pin] = []
    current: Block | None = None
    in_via = False

    def damaged(number: int, reason: str) -> LockFileError:
        return LockFileError(f"{source}:{number}: {reason}", number, reason)

    for number, line in enumerate(lines_of(text), start=1):
        # A pin's hash line (most lines) first: no branch below would take it.
        if current is not None and (match := HASH_LINE.fullmatch(line)):
            current.hashes.append(match.group(1))
            current.lines.append(line)
            continue
        stripped = line.strip()
        if not stripped:
            continue
        elif current is None and not options and line.startswith("#"):
            header.append(line)
        elif line.startswith("--") and current is None:
            options.append(stripped)
        elif not line[0].isspace() and not line.startswith("#"):
            if current is not None:
                pins.append(current.pin())
            requirement = stripped.removesuffix("\\").strip()
            try:
                current = Block(*parse_pin(requirement), line=number, lines=[line])
            except LockFileError as error:
                raise damaged(number, error.reason) from None
            in_via = False
        elif current is None:
            if line.startswith("#"):
                continue
            raise damaged(number, f"unexpected line before the first package: {stripped!r}")
        elif stripped == "# via":
            in_via = True
        elif stripped.startswith("# via "):
            current.via.append(stripped.removeprefix("# via ").strip())
        elif in_via and stripped.startswith("#   "):
            current.via.append(stripped.removeprefix("#   ").strip())
        elif stripped.startswith("#"):
            in_via = False
        else:
            raise damaged(number, f"unexpected line in a lock: {stripped!r}")
    if current is not None:
        pins.append(current.pin())
    return LockFile(tuple(header), tuple(options), tuple(pins))


def read(path: Path, source: str | None = None) -> LockFile:
    """Read and parse a lock; errors name `source` (default: the path)."""
    name = source or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LockFileError(f"{name} is missing: run `nox -s lock`") from None
    except OSError as error:
        raise LockFileError(f"cannot read {name}: {error.strerror}") from None
    return parse(decode_utf8(data, name, LockFileError).removeprefix("\ufeff"), name)
