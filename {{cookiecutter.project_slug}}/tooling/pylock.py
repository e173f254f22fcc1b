"""PEP 751 locks: requirements/pylock.<tier>.toml beside each tier's requirements lock.

A pylock is written from its tier's `.txt` (the same pins, markers and hashes)
and from the files uv listed for those hashes (name and URL). Its header
records a digest of the `.txt` body it came from and of its own body, so the
drift check knows, without network, that it still says what the `.txt` says
and that nobody edited it. pip (26.1+), uv and `pip-audit --locked` read it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tooling import public_url
from tooling.distfiles import File, Files
from tooling.lockfile import Pin

CREATED_BY = "lockstep"
SOURCE_LINE = re.compile(r"^# from (\S+) body sha256:([0-9a-f]{64})$", re.MULTILINE)
BODY_LINE = re.compile(r"^# body sha256:([0-9a-f]{64})", re.MULTILINE)


class UnlistedFiles(Exception):
    """Hashes of a lock whose files the listing does not name."""

    def __init__(self, pins: Sequence[str]) -> None:
        super().__init__(", ".join(pins))
        self.pins = list(pins)


def path_of(requirements_dir: Path, tier: str) -> Path:
    return requirements_dir / f"pylock.{tier}.toml"


def tier_of(path: Path) -> str | None:
    """The tier a `pylock.<tier>.toml` belongs to; None for any other file name."""
    name = path.name
    if name.startswith("pylock.") and name.endswith(".toml") and name.count(".") >= 2:
        return name.removeprefix("pylock.").removesuffix(".toml")
    return None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def split_header(text: str) -> tuple[str, str]:
    """(the leading comment lines, the rest): a generated lock's header and body."""
    lines = text.splitlines(keepends=True)
    end = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    return "".join(lines[:end]), "".join(lines[end:])


def source_digest(lock_text: str) -> str:
    """What a pylock records of the tier lock it was written from: a digest of its body."""
    return sha256(split_header(lock_text)[1])


def by_hash(listed: Files) -> dict[str, File]:
    """Each listed file under each of its hashes ("sha256:<hex>")."""
    return {digest: file for files in listed.values() for file in files for digest in file.hashes}


def _string(value: str) -> str:
    # A JSON string (ASCII, escapes \" \\ \n \uXXXX...) is a TOML basic string.
    return json.dumps(value)


@cache  # a file shared by several tiers is written once
def _file_table(file: File) -> str:
    hashes = ", ".join(
        f"{kind} = {_string(value)}" for kind, value in (h.split(":", 1) for h in file.hashes)
    )
    if "://" in file.url:
        where = f"url = {_string(public_url(file.url))}"  # never a login or token of the index
    else:
        where = f"path = {_string(file.url)}"  # a local file (--find-links), as uv wrote it
    return "{ " + f"name = {_string(file.name)}, {where}, hashes = " + "{ " + hashes + " } }"


def render_package(pin: Pin, files: Mapping[str, File]) -> list[str]:
    """One [[packages]] table: the pin's sdist and wheels, one entry per listed file it hashes."""
    listed = [files[digest] for digest in pin.hashes if digest in files]
    chosen = list({file.name: file for file in listed}.values())
    sdists = [file for file in chosen if not file.name.endswith(".whl")]
    wheels = sorted((file for file in chosen if file.name.endswith(".whl")), key=lambda f: f.name)
    lines = ["[[packages]]", f"name = {_string(pin.name)}", f"version = {_string(pin.version)}"]
    if pin.marker:
        lines.append(f"marker = {_string(pin.marker)}")
    if sdists:  # PEP 751 has room for one sdist: prefer .tar.gz (PEP 625)
        sdists.sort(key=lambda f: (not f.name.endswith(".tar.gz"), f.name))
        lines.append(f"sdist = {_file_table(sdists[0])}")
    if wheels:
        lines.append("wheels = [")
        lines += [f"    {_file_table(wheel)}," for wheel in wheels]
        lines.append("]")
    return lines


def render(
    lock_name: str,
    lock_text: str,
    pins: Sequence[Pin],
    files: Mapping[str, File],
    requires_python: str,
    header: Sequence[str],
) -> str:
    """The pylock of one tier. Raises UnlistedFiles for a pin none of whose hashes is listed.

    A hash uv lists no file for is one no allowed Python installs (a tier lock from
    before such hashes were left out still has them): the pylock leaves it out.
    `header` is the lines every generated lock starts with (what it is, who writes it);
    `lock_text` is the tier lock, whose body's digest the pylock records.
    """
    unlisted = [
        f"{pin.name}=={pin.version}"
        for pin in pins
        if pin.hashes and not any(h in files for h in pin.hashes)
    ]
    if unlisted:
        raise UnlistedFiles(unlisted)
    body = [
        'lock-version = "1.0"',
        f"requires-python = {_string(requires_python)}",
        f"created-by = {_string(CREATED_BY)}",
    ]
    for pin in pins:
        body += ["", *render_package(pin, files)]
    body_text = "\n".join(body) + "\n"
    lines = [
        *header,
        f"# from {lock_name} body sha256:{source_digest(lock_text)}",
        f"# body sha256:{sha256(body_text)} (of every line below)",
    ]
    return "\n".join(lines) + "\n" + body_text


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
    """Why a pylock does not say what its tier lock says; None when it does."""
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
