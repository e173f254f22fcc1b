"""A pylock's [[packages]] read back: quickly in the layout it is written in, else by tomllib."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
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
