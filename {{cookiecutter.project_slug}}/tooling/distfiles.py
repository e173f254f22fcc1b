"""The files of each pinned version: which file each hash of a lock belongs to.

A requirements lock's `--hash` lines carry hashes only. uv names the files
when it writes the same resolution as a PEP 751 lock (`--format pylock.toml`),
so the lock has uv make one of the union's pins, offline, from the index
pages just read, and keeps only the hashes of files some Python that
`requires-python` allows can install: sdists always, wheels by their tags.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

INTERPRETER = re.compile(r"[a-z]+(\d)(\d*)")  # py3, cp311, pp310: the tag's Python version


@dataclass(frozen=True)
class File:
    """One file of a pinned version."""

    name: str  # the file name: numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl
    url: str
    hashes: tuple[str, ...]  # "sha256:<hex>"


Files = Mapping[tuple[str, str], tuple[File, ...]]  # (canonical name, version) -> files


# The lines of a PEP 751 lock as uv writes it: such a lock is read line by line (tomllib
# takes a quarter of a second for the 1,800 files of a big union), any other with tomllib.
STRING = r'"([^"\\]*)"'
TOP_LINE = re.compile(r'(?:lock-version|created-by|requires-python) = "[^"\\]*"|')
PACKAGE_LINE = re.compile(rf"(name|version|marker|index|requires-python) = {STRING}")
FILE_TABLE = re.compile(  # \x7b is "{": two braces in a row would read as template text
    rf"\x7b (?:name = {STRING}, )?(?:url|path) = {STRING}"
    r"(?:, upload-time = [0-9T:.Z+-]+)?(?:, size = \d+)?"
    r', hashes = \{ ((?:[a-z0-9]+ = "[0-9a-f]+")(?:, [a-z0-9]+ = "[0-9a-f]+")*) \} \}'
)
HASH_PAIR = re.compile(r'([a-z0-9]+) = "([0-9a-f]+)"')
BETWEEN_TABLES = re.compile(r"(?<=\} \}), (?=\{ )")


def read_pylock(text: str) -> dict[tuple[str, str], tuple[File, ...]]:
    """The files of every package of a PEP 751 lock, keyed by (canonical name, version)."""
    packages = uv_packages(text)
    if packages is None:
        return read_any_pylock(text)
    files: dict[tuple[str, str], tuple[File, ...]] = {}
    for fields, entries in packages:
        if "version" not in fields:
            continue  # not a pinned version from an index (a directory, a VCS checkout)
        key = (canonicalize_name(fields["name"]), fields["version"])
        files[key] = (*files.get(key, ()), *(listed_file(*entry) for entry in entries))
    return files


UvPackage = tuple[dict[str, str], list[tuple[str | None, str, str]]]


def uv_packages(text: str) -> list[UvPackage] | None:
    """Each package's fields and files (name, url, hashes) when every line of the lock is
    one uv writes (see FILE_TABLE), else None."""
    packages: list[UvPackage] = []
    entries: list[tuple[str | None, str, str]] | None = None  # inside `wheels = [`
    for line in text.splitlines():
        if entries is not None:
            if line == "]":
                entries = None
            elif not (line.startswith("    { ") and add_files(entries, [line.strip(" ,")])):
                return None
        elif line == "[[packages]]":
            packages.append(({}, []))
        elif not packages:
            if not TOP_LINE.fullmatch(line):
                return None
        elif found := PACKAGE_LINE.fullmatch(line):
            packages[-1][0][found[1]] = found[2]
        elif line.startswith("sdist = { ") and not packages[-1][1]:
            if not add_files(packages[-1][1], [line.removeprefix("sdist = ")]):
                return None
        elif line == "wheels = [":
            entries = packages[-1][1]
        elif line.startswith("wheels = [{ ") and line.endswith(" }]"):
            if not add_files(packages[-1][1], BETWEEN_TABLES.split(line[10:-1])):
                return None
        elif line:
            return None
    return packages if entries is None else None


def add_files(entries: list[tuple[str | None, str, str]], tables: list[str]) -> bool:
    """Add each inline file table; False when one is not as uv writes it."""
    for table in tables:
        found = FILE_TABLE.fullmatch(table)
        if found is None:
            return False
        entries.append((found[1], found[2], found[3]))
    return True


def listed_file(name: str | None, url: str, hashes: str) -> File:
    """The File of an inline table uv wrote, as file_of reads it."""
    pairs = sorted(HASH_PAIR.findall(hashes))
    return File(
        name or unquote(urlsplit(url).path.rsplit("/", 1)[-1]),
        url,
        tuple(f"{kind}:{value}" for kind, value in pairs),
    )


def read_any_pylock(text: str) -> dict[tuple[str, str], tuple[File, ...]]:
    """read_pylock for any PEP 751 lock, with tomllib."""
    files: dict[tuple[str, str], tuple[File, ...]] = {}
    for package in tomllib.loads(text).get("packages", []):
        if "version" not in package:
            continue  # not a pinned version from an index (a directory, a VCS checkout)
        entries = [package["sdist"]] if "sdist" in package else []
        entries += package.get("wheels", [])
        key = (canonicalize_name(package["name"]), package["version"])
        files[key] = (*files.get(key, ()), *map(file_of, entries))
    return files


def file_of(entry: Mapping[str, Any]) -> File:
    url = str(entry.get("url") or entry.get("path") or "")
    name = str(entry.get("name") or unquote(urlsplit(url).path.rsplit("/", 1)[-1]))
    hashes = entry.get("hashes") or {}
    return File(name, url, tuple(f"{kind}:{value}" for kind, value in sorted(hashes.items())))


def installable(file_name: str, python_minor: str) -> bool:
    """Whether some Python >= `python_minor` (e.g. "3.11") can install this file.

    sdists always can. A wheel can when one of its tags can: `py3`, `py3Y` and
    abi3 tags install on every later Python; any other tag with a version
    (cp310-cp310, cp310-none, pp310-pypy310_pp73) only on that version.
    """
    if not file_name.endswith(".whl"):
        return True
    try:
        tags = parse_wheel_filename(file_name)[3]
    except InvalidWheelFilename:
        return True  # not ours to judge: keep it
    minimum = int(python_minor.split(".")[1])
    for tag in tags:
        match = INTERPRETER.fullmatch(tag.interpreter)
        if match is None or match[1] not in ("2", "3"):
            return True  # an interpreter tag this rule does not know: keep it
        if match[1] == "2":
            continue
        if not match[2] or tag.interpreter.startswith("py") or tag.abi == "abi3":
            return True
        if int(match[2]) >= minimum:
            return True
    return False


def installable_hashes(files: Iterable[File], python_minor: str) -> set[str]:
    """The hashes of the files some allowed Python can install."""
    return {
        digest for file in files if installable(file.name, python_minor) for digest in file.hashes
    }
