"""A pylock's name and header: the digests it records, read back, and when they disown it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tooling.project import GENERATED_BY

SOURCE_LINE = re.compile(r"^# from (\S+) body sha256:([0-9a-f]{64})$", re.MULTILINE)
BODY_LINE = re.compile(r"^# body sha256:([0-9a-f]{64})", re.MULTILINE)


def path_of(requirements_dir: Path, tier: str) -> Path:
    return requirements_dir / f"pylock.{tier}.toml"


def tier_of(path: Path) -> str | None:
    """The tier a `pylock.<tier>.toml` belongs to; None for any other file name."""
    name = path.name
    if name.startswith("pylock.") and name.endswith(".toml") and name.count(".") >= 2:
        return name.removeprefix("pylock.").removesuffix(".toml")
    return None


@lru_cache(maxsize=64)  # the check digests each body twice (its damage, then its problems)
def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# The leading lines that start with "#", each with its line break: what str.splitlines
# breaks lines at (CRLF as one), without splitting a body of thousands of lines.
BREAK = "\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]"
HEADER = re.compile(f"(?:#(?:(?!{BREAK}).)*(?:{BREAK}|\\Z))*", re.DOTALL)


@lru_cache(maxsize=64)  # read for every digest of the same few texts
def split_header(text: str) -> tuple[str, str]:
    """(the leading comment lines, the rest): a generated lock's header and body."""
    found = HEADER.match(text)  # (always: it matches the empty string)
    end = found.end() if found else 0
    return text[:end], text[end:]


def source_digest(lock_text: str) -> str:
    """What a pylock records of the tier lock it was written from: a digest of its body."""
    return sha256(split_header(lock_text)[1])


@dataclass(frozen=True)
class Recorded:
    source: str | None  # the lock it was written from
    source_digest: str | None
    body_digest: str | None
    body: str


def recorded(text: str) -> Recorded:
    head, body = split_header(text)
    source = SOURCE_LINE.search(head)
    own = BODY_LINE.search(head)
    return Recorded(
        source[1] if source else None,
        source[2] if source else None,
        own[1] if own else None,
        body,
    )


def problem(text: str, lock_name: str, lock_text: str) -> str | None:
    """Why a pylock's own digests disown it (cut, edited carelessly, or written from another
    tier lock); None when they agree, which proves nothing: see `problems`."""
    return damage(text) or mismatch(text, lock_name, lock_text)


def damage(text: str) -> str | None:
    """Why a pylock cannot be trusted as written (edited, cut, not ours); None when it can."""
    was = recorded(text)
    if was.body_digest is None or was.source_digest is None:
        return "records no digests: it was not written by `nox -s lock`"
    if sha256(was.body) != was.body_digest:
        return "does not match the digest of its body (cut or edited by hand)"
    return None


def mismatch(text: str, lock_name: str, lock_text: str) -> str | None:
    """Why a sound pylock is not the one of this tier lock; None when it is."""
    was = recorded(text)
    same_name = (was.source or "").rsplit("/", 1)[-1] == lock_name.rsplit("/", 1)[-1]
    if not same_name or was.source_digest != source_digest(lock_text):
        return f"was written from another {lock_name} than the one beside it"
    return None


def header_lines(tier: str) -> list[str]:
    return [
        f"# requirements/pylock.{tier}.toml: PEP 751 lock of the {tier} tier, the same pins "
        f"as requirements/{tier}.txt.",
        GENERATED_BY,
    ]
