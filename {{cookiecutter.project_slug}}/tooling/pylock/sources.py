"""Where a pylock comes from: its tier lock, read, and the indexes and files it may name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name, canonicalize_version

from tooling import lockfile, public_url
from tooling.distfiles import File
from tooling.lockfile import Pin
from tooling.pylock.headers import split_header
from tooling.tiers import INDEX

PYTHON_VERSION = re.compile(r"^# options: .*--python-version (\d+\.\d+)", re.MULTILINE)
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tbz", ".tar")
NOT_PLAIN = re.compile(r"[%?#\t\r\n]")  # what urlsplit and unquote read in a URL's path
PYPI_ORIGINS = ("https://pypi.org", "https://files.pythonhosted.org")  # pip's default index


class ForeignFile(Exception):
    """A listed file a pylock may not name (see file_problem): the reason, as a phrase."""


@dataclass(frozen=True)
class Sources:
    """Where the files of a tier may be: the origins (scheme://host[:port]) of the indexes
    its `.txt` names (PyPI's when no --index-url replaces it) and of those the environment
    gives uv and pip on this machine. (The lock refuses a local --find-links folder, so
    every file has a URL.)"""

    origins: tuple[str, ...]
    from_environment: bool = False


def sources_of(options: Sequence[str], environment: Sequence[str] = ()) -> Sources:
    """The Sources of a tier lock's option lines (`--index-url URL`, ...) and of the
    index URLs the environment sets (UV_INDEX_URL, PIP_INDEX_URL...)."""
    origins: list[str] = []
    replaced = False
    for line in options:
        if found := INDEX.match(line):
            option, value = found.groups()
            replaced = replaced or option in ("-i", "--index-url")
            origins.append(origin(value) or value)
    if not replaced:
        origins[:0] = PYPI_ORIGINS
    machine = [host for url in environment if (host := origin(url)) and host not in origins]
    return Sources(tuple(dict.fromkeys([*origins, *machine])), bool(machine))


def origin(url: str) -> str | None:
    """scheme://host[:port] of a URL, without any login; None when it has no host."""
    scheme, _, rest = public_url(url).partition("://")
    return origin_of_location(scheme, rest.split("/", 1)[0])


@cache  # a lock's thousands of file URLs are on one or two hosts
def origin_of_location(scheme: str, location: str) -> str | None:
    """origin() of the part of a public URL between `://` and its path."""
    try:
        parts = urlsplit(f"{scheme}://{location}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return f"{parts.scheme.lower()}://{parts.hostname}" + (f":{port}" if port else "")


def is_file_of(file_name: str, pin: Pin) -> bool:
    """Whether a wheel or sdist file name is one of this pinned name and version."""
    found = name_and_version(file_name)
    return found is not None and canonical(*found) == canonical(pin.name, pin.version)


@lru_cache(maxsize=4096)  # the same few names and versions, once per file of every tier
def canonical(name: str, version: str) -> tuple[str, str]:
    """A name and version as they compare (PEP 503 name, normalized version)."""
    return canonicalize_name(name), canonicalize_version(version)


def name_and_version(file_name: str) -> tuple[str, str] | None:
    """(name, version) as a wheel or sdist file name spells them; None for any other name.

    Read by the layout (PEP 427, PEP 625 and older sdists), not by version rules:
    a legacy version is still compared as written.
    """
    if file_name.endswith(".whl"):
        parts = file_name.removesuffix(".whl").split("-")
        return (parts[0], parts[1]) if len(parts) in (5, 6) else None
    for suffix in SDIST_SUFFIXES:
        if file_name.endswith(suffix):
            name, dash, version = file_name.removesuffix(suffix).rpartition("-")
            return (name, version) if dash and name and version else None
    return None


def file_problem(pin: Pin, file: File, sources: Sources, lock_name: str) -> str | None:
    """Why a pylock may not name this file for this pin (a phrase); None when it may."""
    what = f"{file.name} for {pin.name} {pin.version}"
    if not file.hashes or not pin.hash_set.issuperset(file.hashes):
        return f"names {what} with a hash {lock_name} does not pin"
    if not is_file_of(file.name, pin):
        return f"names {file.name}, which is not a file of {pin.name} {pin.version}"
    where = origin(file.url) if "://" in file.url else None
    if where not in sources.origins:
        named = f"{lock_name} names" + (
            " or the environment sets" if sources.from_environment else ""
        )
        return (
            f"names {what} at {where or file.url}, which is not an index {named} "
            f"({', '.join(sources.origins)})"
        )
    last = last_segment(file.url)
    if last != file.name:
        return f"names {what} at the URL of another file ({last})"
    return None


def last_segment(url: str) -> str:
    """The last segment of a URL's path, unquoted."""
    if url.count("/") >= 3 and not NOT_PLAIN.search(url):
        return url.rsplit("/", 1)[1]  # what urlsplit finds, which a plain URL does not need
    return unquote(urlsplit(url).path).rsplit("/", 1)[-1]


class Underivable(Exception):
    """A tier lock no pylock can be derived from (unreadable, no Python version): the reason."""


@dataclass(frozen=True)
class Source:
    """What a pylock is derived from: its tier lock, read."""

    name: str  # "requirements/base.txt"
    text: str
    pins: tuple[Pin, ...]
    sources: Sources
    requires_python: str


def source_of(lock_name: str, lock_text: str, environment: Sequence[str] = ()) -> Source:
    """The tier lock a pylock comes from (`environment`: the index URLs the environment
    sets, see sources_of); Underivable when it cannot be read."""
    try:
        tier = lockfile.parse(lock_text, lock_name)
    except lockfile.LockFileError as error:
        raise Underivable(str(error)) from None
    version = PYTHON_VERSION.search(split_header(lock_text)[0])
    if version is None:
        raise Underivable(f"{lock_name} records no --python-version")
    sources = sources_of(tier.options, environment)
    return Source(lock_name, lock_text, tier.pins, sources, f">={version[1]}")
