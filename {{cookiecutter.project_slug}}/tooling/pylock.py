"""PEP 751 locks: requirements/pylock.<tier>.toml beside each tier's requirements lock.

A pylock is written from its tier's `.txt` (the same pins, markers and hashes)
and from the files uv listed for those hashes (name and URL). Its header
records a digest of the `.txt` body it came from and of its own body. Those
digests only say that nobody edited it carelessly: the drift check derives
the pylock again, without network, from the `.txt` and the files the pylock
names (each must be a file of its pin, hashed by the `.txt`, on an index the
`.txt` names), and names every difference. pip (26.1+), uv and
`pip-audit --locked` read it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name, canonicalize_version

from tooling import lockfile, public_url
from tooling.distfiles import File, Files
from tooling.lockfile import Pin
from tooling.project import GENERATED_BY
from tooling.tiers import INDEX

CREATED_BY = "lockstep"
SOURCE_LINE = re.compile(r"^# from (\S+) body sha256:([0-9a-f]{64})$", re.MULTILINE)
BODY_LINE = re.compile(r"^# body sha256:([0-9a-f]{64})", re.MULTILINE)
PYTHON_VERSION = re.compile(r"^# options: .*--python-version (\d+\.\d+)", re.MULTILINE)
PACKAGE_NAME = re.compile(r'^name = "(.*)"$')  # a [[packages]] table's name line
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tbz", ".tar")
PYPI_ORIGINS = ("https://pypi.org", "https://files.pythonhosted.org")  # pip's default index


class UnlistedFiles(Exception):
    """Hashes of a lock whose files the listing does not name."""

    def __init__(self, pins: Sequence[str]) -> None:
        super().__init__(", ".join(pins))
        self.pins = list(pins)


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
    try:
        parts = urlsplit(public_url(url))
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return f"{parts.scheme.lower()}://{parts.hostname}" + (f":{port}" if port else "")


def is_file_of(file_name: str, pin: Pin) -> bool:
    """Whether a wheel or sdist file name is one of this pinned name and version."""
    found = name_and_version(file_name)
    return found is not None and (
        canonicalize_name(found[0]) == canonicalize_name(pin.name)
        and canonicalize_version(found[1]) == canonicalize_version(pin.version)
    )


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
    if not file.hashes or any(digest not in pin.hashes for digest in file.hashes):
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
    last = unquote(urlsplit(file.url).path).rsplit("/", 1)[-1]
    if last != file.name:
        return f"names {what} at the URL of another file ({last})"
    return None


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


def files_of(pin: Pin, files: Mapping[str, File]) -> list[File]:
    """The listed files a pin hashes, one per file name, with only the hashes the pin has."""
    listed = [files[digest] for digest in pin.hashes if digest in files]
    return [
        File(file.name, file.url, tuple(h for h in file.hashes if h in pin.hashes))
        for file in {file.name: file for file in listed}.values()
    ]


def render_package(pin: Pin, files: Mapping[str, File]) -> list[str]:
    """One [[packages]] table: the pin's sdist and wheels, one entry per listed file it hashes."""
    chosen = files_of(pin, files)
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


def only_from(
    sources: Sources, pins: Sequence[Pin], files: Mapping[str, File], lock_name: str
) -> None:
    """Raises ForeignFile for the first file of a pin that a pylock may not name."""
    for pin in pins:
        for file in files_of(pin, files):
            if why := file_problem(pin, file, sources, lock_name):
                raise ForeignFile(why)


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


# --- deriving a pylock from its tier lock ---------------------------------------------------


class Underivable(Exception):
    """A tier lock no pylock can be derived from (unreadable, no Python version): the reason."""


def header_lines(tier: str) -> list[str]:
    return [
        f"# requirements/pylock.{tier}.toml: PEP 751 lock of the {tier} tier, the same pins "
        f"as requirements/{tier}.txt.",
        GENERATED_BY,
    ]


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


def problems(
    text: str, lock_name: str, lock_text: str, environment: Sequence[str] = ()
) -> list[str]:
    """Everything in which a pylock is not the one derived from its tier lock, one phrase each.

    The file names and URLs come from the pylock itself (the `.txt` has hashes only):
    each must be a file of its pin, hashed by the `.txt`, on an index the `.txt` names
    (or `environment` does, see sources_of), and the pylock written from those files
    must be this one, byte for byte.
    """
    if why := problem(text, lock_name, lock_text):
        return [why]
    try:
        source = source_of(lock_name, lock_text, environment)
    except Underivable as error:
        return [f"cannot be derived: {error}"]
    quick = packages_as_written(text)  # the layout render() writes, read without a TOML parser
    if quick is not None and not derivation_problems(source, quick, text):
        return []
    try:
        packages = read_packages(text)
    except Underivable as error:
        return [f"cannot be derived: {error}"]
    return derivation_problems(source, packages, text)


def derivation_problems(source: Source, packages: Sequence[Package], text: str) -> list[str]:
    """problems() once the pylock's packages are read."""
    found = package_problems(source.pins, packages, source.name) + named_files(source, packages)
    if found:
        return found
    listed = {
        digest: file for package in packages for file in package.files for digest in file.hashes
    }
    try:
        expected = derive(source, listed, check_files=False)  # named_files checked them
    except (UnlistedFiles, ForeignFile) as error:  # named above; kept for safety
        return [f"cannot be derived: {error}"]
    return [] if expected == text else [first_difference(text, expected, source.name)]


WRITTEN_FIELD = re.compile(r'^(name|version|marker) = ("(?:[^"\\]|\\.)*")$')
WRITTEN_FILE = re.compile(
    r'^(?:sdist = |    )\{ name = ("(?:[^"\\]|\\.)*"), (url|path) = ("(?:[^"\\]|\\.)*"), '
    r'hashes = \{ ((?:\w+ = "[0-9a-f]+", )*\w+ = "[0-9a-f]+") \} \},?$'
)
WRITTEN_OTHER = {"[[packages]]", "wheels = [", "]", ""}


def packages_as_written(text: str) -> list[Package] | None:
    """The packages of a pylock in exactly the layout render() writes, read line by line
    (a TOML parser takes most of a no-op lock's time); None for any other layout, which
    problems() then reads with tomllib. Only a pylock equal to its derivation passes, so a
    misread one is never accepted: it is read again properly."""
    body = split_header(text)[1].split("\n[[packages]]\n")
    packages = []
    for table in body[1:]:
        fields: dict[str, str] = {}
        files: list[File] = []
        for line in table.splitlines():
            if found := WRITTEN_FIELD.match(line):
                fields[found[1]] = json.loads(found[2])
            elif found := WRITTEN_FILE.match(line):
                hashes = tuple(
                    f"{kind}:{value}"
                    for kind, value in sorted(re.findall(r'(\w+) = "([0-9a-f]+)"', found[4]))
                )
                files.append(File(json.loads(found[1]), json.loads(found[3]), hashes))
            elif line not in WRITTEN_OTHER:
                return None
        packages.append(
            Package(
                fields.get("name", ""), fields.get("version", ""), fields.get("marker", ""),
                tuple(files),
            )
        )  # fmt: skip
    return packages


def version_problems(text: str, lock_name: str, lock_text: str) -> list[str]:
    """What a pylock says of its packages (names, versions, markers: what pip-audit reads)
    that its tier lock does not, one phrase each; the files are not looked at."""
    if why := problem(text, lock_name, lock_text):
        return [why]
    try:
        pins = lockfile.parse(lock_text, lock_name).pins
        packages = read_packages(text)
    except (lockfile.LockFileError, Underivable) as error:
        return [f"cannot be derived: {error}"]
    return package_problems(pins, packages, lock_name)


@dataclass(frozen=True)
class Package:
    """A [[packages]] table of a pylock, as read (anything it cannot be is left empty)."""

    name: str
    version: str
    marker: str
    files: tuple[File, ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (canonicalize_name(self.name), self.version, self.marker)


def read_packages(text: str) -> list[Package]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise Underivable(f"it is not TOML ({error})") from None
    tables = data.get("packages")
    return (
        [read_package(table) for table in tables if isinstance(table, dict)]
        if isinstance(tables, list)
        else []
    )


def read_package(table: Mapping[str, Any]) -> Package:
    entries = [table.get("sdist"), *(table.get("wheels") or [])]
    files = tuple(read_file(entry) for entry in entries if isinstance(entry, dict))
    return Package(
        str(table.get("name", "")),
        str(table.get("version", "")),
        str(table.get("marker", "")),
        files,
    )


def read_file(entry: Mapping[str, Any]) -> File:
    url = str(entry.get("url") or entry.get("path") or "")
    name = str(entry.get("name") or unquote(urlsplit(url).path).rsplit("/", 1)[-1])
    hashes = entry.get("hashes")
    pairs = sorted(hashes.items()) if isinstance(hashes, dict) else []
    return File(name, url, tuple(f"{kind}:{value}" for kind, value in pairs))


def package_problems(pins: Sequence[Pin], packages: Sequence[Package], lock_name: str) -> list[str]:
    """The packages a pylock adds, drops or has at another version or marker than its
    tier lock pins them; one phrase each."""
    by_key = {(pin.name, pin.version, pin.marker): pin for pin in pins}
    seen = {package.key for package in packages}
    missing = [pin for key, pin in by_key.items() if key not in seen]
    found: list[str] = []
    for package in [package for package in packages if package.key not in by_key]:
        pin = next((pin for pin in missing if pin.name == package.key[0]), None)
        if pin is not None:
            missing.remove(pin)
            found.append(changed(package, pin, lock_name))
        else:
            found.append(f"names {package.name} {package.version}, which {lock_name} does not pin")
    return found + [f"lacks {pin.name} {pin.version}, which {lock_name} pins" for pin in missing]


def changed(package: Package, pin: Pin, lock_name: str) -> str:
    if package.version != pin.version:
        return f"names {pin.name} {package.version}, but {lock_name} pins {pin.name} {pin.version}"
    return (
        f"gives {pin.name} {pin.version} {marker_phrase(package.marker)}, "
        f"but {lock_name} gives it {marker_phrase(pin.marker)}"
    )


def marker_phrase(marker: str) -> str:
    return f"the marker {marker!r}" if marker else "no marker"


def named_files(source: Source, packages: Sequence[Package]) -> list[str]:
    """The files a pylock may not name for the packages its tier lock pins; one phrase each."""
    pins = {(pin.name, pin.version, pin.marker): pin for pin in source.pins}
    return [
        why
        for package in packages
        if (pin := pins.get(package.key)) is not None
        for why in file_problems(pin, package, source)
    ]


def file_problems(pin: Pin, package: Package, source: Source) -> list[str]:
    found = [
        why
        for file in package.files
        if (why := file_problem(pin, file, source.sources, source.name))
    ]
    if not package.files and pin.hashes:
        found.append(f"names no file for {pin.name} {pin.version}")
    return found


def first_difference(text: str, expected: str, lock_name: str) -> str:
    """Where a pylock first differs from the one derived from its tier lock, in one phrase:
    in its body when that differs (a hand edit also changes the digest in the header)."""
    (got_head, got_body), (head, body) = split_header(text), split_header(expected)
    if got_body != body:
        got, wanted, offset = got_body.splitlines(), body.splitlines(), got_head.count("\n")
    else:
        got, wanted, offset = got_head.splitlines(), head.splitlines(), 0
    number = next(
        (n for n, pair in enumerate(zip(got, wanted, strict=False)) if pair[0] != pair[1]),
        min(len(got), len(wanted)),
    )
    line = got[number] if number < len(got) else ""
    want = wanted[number] if number < len(wanted) else ""
    names = [found[1] for found in map(PACKAGE_NAME.match, got[:number]) if found]
    where = f" (package {names[-1]})" if names else ""
    return (
        f"is not what `nox -s lock` writes from {lock_name}: line {offset + number + 1}{where} "
        f"reads {excerpt(line, want)}"
    )


def excerpt(line: str, want: str, width: int = 60) -> str:
    """The part of two lines where they first differ: `…got…` where `…want…` is written."""
    pairs = enumerate(zip(line, want, strict=False))
    column = next((n for n, (a, b) in pairs if a != b), min(len(line), len(want)))
    start = max(0, column - width // 3)

    def part(text: str) -> str:
        if not text:
            return "(nothing)"
        cut = text[start : start + width]
        return ("…" if start else "") + cut + ("…" if start + width < len(text) else "")

    return f"{part(line)!r} where it writes {part(want)!r}"
