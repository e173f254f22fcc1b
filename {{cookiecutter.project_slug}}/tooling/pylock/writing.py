"""Writing a pylock: the [[packages]] tables of a tier's pins and the files uv listed for them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from json.encoder import encode_basestring_ascii
from pathlib import PurePosixPath

from tooling import public_url
from tooling.distfiles import File, Files
from tooling.lockfile import Pin
from tooling.pylock.headers import header_lines, sha256, source_digest
from tooling.pylock.sources import ForeignFile, Source, Sources, file_problem

CREATED_BY = "lockstep"


class UnlistedFiles(Exception):
    """Hashes of a lock whose files the listing does not name."""

    def __init__(self, pins: Sequence[str]) -> None:
        super().__init__(", ".join(pins))
        self.pins = list(pins)


def by_hash(listed: Files) -> dict[str, File]:
    """Each listed file under each of its hashes ("sha256:<hex>")."""
    return {digest: file for files in listed.values() for file in files for digest in file.hashes}


def _string(value: str) -> str:
    # A JSON string (ASCII, escapes \" \\ \n \uXXXX...) is a TOML basic string: json.dumps'
    # own encoder for a str, without its dispatch (a pylock has thousands of strings).
    return encode_basestring_ascii(value)


@cache  # a file shared by several tiers is written once
def _file_table(file: File) -> str:
    pairs = [digest.partition(":") for digest in file.hashes]
    hashes = ", ".join([f"{kind} = {_string(value)}" for kind, _, value in pairs])
    if "://" in file.url:
        where = f"url = {_string(public_url(file.url))}"  # never a login or token of the index
    else:
        where = f"path = {_string(file.url)}"  # a local file (--find-links), as uv wrote it
    return "{ name = " + _string(file.name) + f", {where}, hashes = " + "{ " + hashes + " } }"


def files_of(pin: Pin, files: Mapping[str, File]) -> list[File]:
    """The listed files a pin hashes, one per file name, with only the hashes the pin has."""
    listed = [files[digest] for digest in pin.hashes if digest in files]
    return [
        file
        if pin.hash_set.issuperset(file.hashes)
        else File(file.name, file.url, tuple(h for h in file.hashes if h in pin.hash_set))
        for file in {file.name: file for file in listed}.values()
    ]


def render_package(pin: Pin, files: Mapping[str, File]) -> tuple[str, ...]:
    """One [[packages]] table: the pin's sdist and wheels, one entry per listed file it hashes."""
    return package_lines(pin.name, pin.version, pin.marker, tuple(files_of(pin, files)))


def package_fields(name: str, version: str, marker: str) -> list[str]:
    """A [[packages]] table's lines before its files."""
    lines = [f"name = {_string(name)}", f"version = {_string(version)}"]
    return [*lines, f"marker = {_string(marker)}"] if marker else lines


def preamble(requires_python: str) -> str:
    """A pylock's body before its packages."""
    return (
        f'lock-version = "1.0"\nrequires-python = {_string(requires_python)}\n'
        f"created-by = {_string(CREATED_BY)}\n"
    )


def head(header: Sequence[str], lock_name: str, lock_text: str, body_text: str) -> str:
    """A pylock's header: `header`, then the digests of its tier lock's body and of its own."""
    lines = [
        *header,
        f"# from {lock_name} body sha256:{source_digest(lock_text)}",
        f"# body sha256:{sha256(body_text)} (of every line below)",
    ]
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=1024)  # a package shared by several tiers is written once
def package_lines(
    name: str, version: str, marker: str, chosen: tuple[File, ...]
) -> tuple[str, ...]:
    sdists = [file for file in chosen if not file.name.endswith(".whl")]
    wheels = sorted((file for file in chosen if file.name.endswith(".whl")), key=lambda f: f.name)
    lines = ["[[packages]]", *package_fields(name, version, marker)]
    if sdists:  # PEP 751 has room for one sdist: prefer .tar.gz (PEP 625)
        sdists.sort(key=lambda f: (not f.name.endswith(".tar.gz"), f.name))
        lines.append(f"sdist = {_file_table(sdists[0])}")
    if wheels:
        lines.append("wheels = [")
        lines += [f"    {_file_table(wheel)}," for wheel in wheels]
        lines.append("]")
    return tuple(lines)


def render(
    lock_name: str,
    lock_text: str,
    pins: Sequence[Pin],
    files: Mapping[str, File],
    requires_python: str,
    header: Sequence[str],
    sources: Sources | None = None,
) -> str:
    """The pylock of one tier. Raises UnlistedFiles for a pin none of whose hashes is listed,
    and ForeignFile for a listed file not on `sources` (when given) or not of its pin.

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
    if sources is not None:
        only_from(sources, pins, files, lock_name)
    body = [preamble(requires_python)]
    for pin in pins:
        body += ["\n", "\n".join(render_package(pin, files)), "\n"]
    body_text = "".join(body)
    return head(header, lock_name, lock_text, body_text) + body_text


def only_from(
    sources: Sources, pins: Sequence[Pin], files: Mapping[str, File], lock_name: str
) -> None:
    """Raises ForeignFile for the first file of a pin that a pylock may not name."""
    for pin in pins:
        for file in files_of(pin, files):
            if why := file_problem(pin, file, sources, lock_name):
                raise ForeignFile(why)


def derive(source: Source, files: Mapping[str, File], check_files: bool = True) -> str:
    """The pylock `nox -s lock` writes from this tier lock and these listed files
    (`check_files=False`: the caller has checked them already)."""
    tier = PurePosixPath(source.name).stem
    return render(
        source.name,
        source.text,
        source.pins,
        files,
        source.requires_python,
        header_lines(tier),
        source.sources if check_files else None,
    )
