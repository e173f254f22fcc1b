"""The pylock check: everything in which a pylock is not the one derived from its tier lock."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import PurePosixPath

from tooling import lockfile
from tooling.distfiles import File
from tooling.lockfile import Pin
from tooling.pylock.headers import header_lines, problem, split_header
from tooling.pylock.reading import Package, packages_as_written, read_packages
from tooling.pylock.sources import (
    ForeignFile,
    Source,
    Sources,
    Underivable,
    file_problem,
    source_of,
)
from tooling.pylock.writing import UnlistedFiles, derive, head, package_fields, preamble

PACKAGE_NAME = re.compile(r'^name = "(.*)"$')  # a [[packages]] table's name line
PACKAGES = "\n[[packages]]\n"
# A file entry as render() writes it when its name and URL are printable ASCII that JSON,
# public_url and unquote leave as they are (no " \\ @ ? # %) and it has one hash: reading
# it and writing it again gives the same line, so the line need not be written again.
PLAIN = r"[!$&-.0-9:;<=>A-Z\[\]^_`a-z{|}~]"  # (no / either)
PLAIN_ENTRY = re.compile(  # (concatenated: an f-string's doubled braces read as template text)
    r'\{ name = "('
    + PLAIN
    + r'+)", url = "([A-Za-z][A-Za-z0-9+.-]*://(?:'
    + PLAIN
    + r'|/)+)", hashes = \{ ([a-z0-9]+) = "([0-9a-f]+)" \} \}'
)


def problems(
    text: str, lock_name: str, lock_text: str, environment: Sequence[str] = ()
) -> list[str]:
    """Everything in which a pylock is not the one derived from its tier lock, one phrase each.

    The file names and URLs come from the pylock itself (the `.txt` has hashes only):
    each must be a file of its pin, hashed by the `.txt`, on an index the `.txt` names
    (or `environment` does, see sources_of), every hash of the `.txt` must have its file,
    and the pylock written from those files must be this one, byte for byte.
    """
    if why := problem(text, lock_name, lock_text):
        return [why]
    try:
        source = source_of(lock_name, lock_text, environment)
    except Underivable as error:
        return [f"cannot be derived: {error}"]
    if as_derived(source, text):  # the common case, without deriving it
        return []
    quick = packages_as_written(text)  # the layout render() writes, read without a TOML parser
    if quick is not None and not derivation_problems(source, quick, text):
        return []
    try:
        packages = read_packages(text)
    except Underivable as error:
        return [f"cannot be derived: {error}"]
    return derivation_problems(source, packages, text)


def as_derived(source: Source, text: str) -> bool:
    """Whether a pylock is the one derive() writes from its tier lock and the files it names,
    proven table by table (each checked once, whichever tiers share it) in the layout render()
    writes. False also when it may be that one but is not written plainly (see PLAIN_ENTRY) or
    a hash is pinned twice: problems() then derives it."""
    got_head, body = split_header(text)
    tables = body.split(PACKAGES)
    pins = source.pins
    if len(tables) != len(pins) + 1 or tables[0] != preamble(source.requires_python):
        return False
    hash_sets, sources = [pin.hash_set for pin in pins], source.sources
    if sum(map(len, hash_sets)) != len(frozenset().union(*hash_sets)):
        return False  # a hash of two pins: derive() gives its file to both
    for table, pin in zip(tables[1:], pins, strict=True):
        if not table_as_derived(table, pin.name, pin.version, pin.marker, pin.hash_set, sources):
            return False
    header = header_lines(PurePosixPath(source.name).stem)
    return got_head == head(header, source.name, source.text, body)


@lru_cache(maxsize=1024)  # tiers share most packages: each table is checked once
def table_as_derived(
    table: str, name: str, version: str, marker: str, hashes: frozenset[str], sources: Sources
) -> bool:
    """Whether a [[packages]] table (after that line) is the one render() writes for this pin
    from the files it names, each a file the pylock may name (file_problem)."""
    fields = package_fields(name, version, marker)
    lines = table.split("\n")
    if lines[: len(fields)] != fields or lines[-1] != "":
        return False
    rest = lines[len(fields) : -1]
    has_sdist = bool(rest) and rest[0].startswith("sdist = ")
    entries = [rest.pop(0).removeprefix("sdist = ")] if has_sdist else []
    if rest and (rest[0] != "wheels = [" or rest[-1] != "]" or len(rest) < 3):
        return False
    wheels = rest[1:-1]
    if any(line[:4] != "    " or line[-1:] != "," for line in wheels):
        return False
    files = plain_files([*entries, *(line[4:-1] for line in wheels)])
    if files is None or len({file.hashes for file in files}) != len(files):
        return False
    names = [file.name for file in files[len(entries) :]]
    if entries and files[0].name.endswith(".whl"):
        return False
    if not all(n.endswith(".whl") for n in names) or names != sorted(set(names)):
        return False  # render() writes an sdist, then wheels by name, each once
    if {digest for file in files for digest in file.hashes} != hashes:
        return False  # a hash of the lock without its file (or the reverse): named by problems()
    pin = Pin(name, version, marker, (), tuple(hashes), (), 0, ())
    return not any(file_problem(pin, file, sources, "") for file in files)


def plain_files(entries: Sequence[str]) -> list[File] | None:
    """The files of entries written as PLAIN_ENTRY reads them; None when one is not."""
    files = []
    for entry in entries:
        found = PLAIN_ENTRY.fullmatch(entry)
        if found is None:
            return None
        files.append(File(found[1], found[2], (f"{found[3]}:{found[4]}",)))
    return files


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
    if sound_files(replace(pin, via=(), line=0), package, source.sources):
        return []
    found = [
        why
        for file in package.files
        if (why := file_problem(pin, file, source.sources, source.name))
    ]
    if found:
        return found
    if not package.files and pin.hashes:
        return [f"names no file for {pin.name} {pin.version}"]
    return [
        f"lacks the file with hash {digest} of {pin.name} {pin.version}, which {source.name} hashes"
        for digest in unnamed_hashes(pin, package)
    ]


@lru_cache(maxsize=1024)  # tiers share most packages: the drift check checks each one once
def sound_files(pin: Pin, package: Package, sources: Sources) -> bool:
    """Whether a pylock may name every file of this package for this pin and names one for
    every hash of the pin. `pin` without what differs between tiers (its via and line)."""
    if unnamed_hashes(pin, package):
        return False
    return not any(file_problem(pin, file, sources, "") for file in package.files)


def unnamed_hashes(pin: Pin, package: Package) -> list[str]:
    """The hashes of a pin that no file of the package carries: the files a pylock leaves out
    (an installer reading it would never pick them)."""
    named = {digest for file in package.files for digest in file.hashes}
    return [digest for digest in pin.hashes if digest not in named]


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
