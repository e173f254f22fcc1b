"""A pylock's [[packages]] read back: quickly in the layout it is written in, else by tomllib."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from tooling.distfiles import File
from tooling.pylock.headers import split_header
from tooling.pylock.sources import Underivable


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


STRING = r'("[^"\\]*(?:\\.[^"\\]*)*")'  # a basic string, escapes included
WRITTEN_FIELD = re.compile(rf"^(name|version|marker) = {STRING}$")
WRITTEN_FILE = re.compile(  # its hashes are read by HASH_ENTRY (and any other text compared)
    # (concatenated, not an f-string: doubled braces would read as template text)
    r"^(?:sdist = |    )\{ name = "
    + STRING
    + ", (url|path) = "
    + STRING
    + r", hashes = \{ (.*) \} \},?$"
)
FILE_STARTS = ("sdist = ", "    {")
HASH_ENTRY = re.compile(r'(\w+) = "([0-9a-f]+)"')
WRITTEN_OTHER = {"[[packages]]", "wheels = [", "]", ""}


def packages_as_written(text: str) -> list[Package] | None:
    """The packages of a pylock in the layout render() writes, read line by line (a TOML
    parser takes most of the drift check's time); None for any other layout, which
    problems() then reads with tomllib. Only a pylock equal to its derivation passes, so a
    misread one is never accepted: it is read again properly."""
    packages = []
    for table in split_header(text)[1].split("\n[[packages]]\n")[1:]:
        try:
            package = package_as_written(table)
        except ValueError:  # an escape JSON does not read (render() writes none): tomllib judges
            return None
        if package is None:
            return None
        packages.append(package)
    return packages


@lru_cache(maxsize=1024)  # tiers share most packages: the drift check reads each table once
def package_as_written(table: str) -> Package | None:
    """One [[packages]] table (after its header line) as render() writes it; else None."""
    fields: dict[str, str] = {}
    files: list[File] = []
    for line in table.splitlines():
        if line.startswith(FILE_STARTS) and (found := WRITTEN_FILE.match(line)):
            hashes = tuple(
                [f"{kind}:{value}" for kind, value in sorted(HASH_ENTRY.findall(found[4]))]
            )
            files.append(File(string_value(found[1]), string_value(found[3]), hashes))
        elif found := WRITTEN_FIELD.match(line):
            fields[found[1]] = string_value(found[2])
        elif line not in WRITTEN_OTHER:
            return None
    return Package(
        fields.get("name", ""), fields.get("version", ""), fields.get("marker", ""), tuple(files)
    )


def string_value(quoted: str) -> str:
    """A basic string as render() writes it (JSON's escapes): only one with escapes is parsed."""
    return json.loads(quoted) if "\\" in quoted else quoted[1:-1]


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
