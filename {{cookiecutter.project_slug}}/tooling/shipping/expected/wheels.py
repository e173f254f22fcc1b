"""The wheel of a pin the image's installer takes, and its bytes, fetched and checked by hash."""

from __future__ import annotations

import http.client
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from tooling import public_url
from tooling.distfiles import File
from tooling.shipping.expected.wants import ExpectedError, sha256_hex

ARCHITECTURES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
Fetch = Callable[[str], bytes]


def image_tags(python_minor: str, architecture: str, glibc: tuple[int, int]) -> list[Tag]:
    """The tags a CPython `python_minor` on glibc `glibc` Linux accepts, most preferred first."""
    machine = ARCHITECTURES.get(architecture, architecture)
    platforms = [f"manylinux_{glibc[0]}_{minor}_{machine}" for minor in range(glibc[1], 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    for minor, name in legacy.items():
        if minor <= glibc[1]:
            index = platforms.index(f"manylinux_2_{minor}_{machine}") + 1
            platforms.insert(index, f"{name}_{machine}")
    platforms.append(f"linux_{machine}")
    version = tuple(int(part) for part in python_minor.split("."))
    return [
        *cpython_tags(version, platforms=platforms),
        *compatible_tags(version, "cp" + "".join(map(str, version)), platforms),
    ]


def choose_wheel(files: Iterable[File], tags: Sequence[Tag]) -> File | None:
    """The wheel an installer takes: the one whose best tag comes first in `tags`."""
    rank = {tag: index for index, tag in enumerate(tags)}
    best: tuple[int, File] | None = None
    for file in files:
        if not file.name.endswith(".whl"):
            continue
        ranks = [rank[tag] for tag in parse_wheel_filename(file.name)[3] if tag in rank]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), file)
    return best[1] if best else None


def applies(marker: str | None, environment: Mapping[str, str]) -> bool:
    return marker is None or Marker(marker).evaluate(dict(environment))


def fetch_url(url: str) -> bytes:
    """A wheel's bytes from its URL (what the lock names; its hash is checked by the caller)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data: bytes = response.read()
            return data
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise ExpectedError(f"cannot fetch {public_url(url)}: {error}") from None


def sha256_of(file: File) -> str:
    for digest in file.hashes:
        kind, _, value = digest.partition(":")
        if kind == "sha256":
            return value
    raise ExpectedError(f"the lock names no sha256 for {file.name}: run `nox -s lock`")


def wheel_bytes(file: File, cache_dir: Path, fetch: Fetch) -> bytes:
    """The wheel `file` names, from the cache (keyed by sha256) or fetched; never unverified."""
    digest = sha256_of(file)
    cached = cache_dir / digest / file.name
    if cached.is_file():
        data = cached.read_bytes()
        if sha256_hex(data) == digest:
            return data
    data = fetch(file.url)
    if sha256_hex(data) != digest:
        raise ExpectedError(
            f"{public_url(file.url)} served a {file.name} whose sha256 is not the lock's "
            f"({sha256_hex(data)}, not {digest}): the index or a proxy changed it"
        )
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".partial")
        partial.write_bytes(data)
        partial.replace(cached)
    except OSError as error:
        raise ExpectedError(
            f"cannot cache {file.name} in {cache_dir}: {error.strerror or error} "
            "(XDG_CACHE_HOME chooses where the wheels go)"
        ) from None
    return data
