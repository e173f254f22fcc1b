"""What a Python environment holds, printed as JSON; standard library only.

The smoke test runs this file's text with the environment's own Python
(`python -I -c ...`), inside an image (which has no pip and no packaging) or
in a fresh venv; the host then compares the report with the tier's lock. It
reports the marker environment, every installed distribution with its
version, every file whose bytes differ from its distribution's RECORD, and
files in site-packages that no RECORD lists.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import posixpath
import sys
import sysconfig
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

# Written by the tools that create a venv (uv, virtualenv), not by any distribution.
VENV_FILES = {"_virtualenv.py", "_virtualenv.pth"}


def marker_environment() -> dict[str, str]:
    """The values PEP 508 markers are evaluated against, as packaging computes them."""
    info = sys.implementation.version
    implementation = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        implementation += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": implementation,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def record_hash(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm, path.read_bytes()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def record_rows(name: str, text: str, problems: list[dict[str, str]]) -> Iterator[list[str]]:
    """RECORD's rows; a row csv cannot read (a field over its 128 KiB limit) is a problem."""
    reader = csv.reader(io.StringIO(text))
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            problem = f"unreadable: line {reader.line_num} is not readable as CSV: {error}"
            problems.append({"distribution": name, "file": "RECORD", "problem": problem})


def check_record(
    name: str,
    text: str | None,
    locate: Callable[[str], str],
    file_hash: Callable[[str, str], str | None],
) -> tuple[list[dict[str, str]], set[str]]:
    """(problems, paths listed) for one distribution's RECORD `text`.

    `locate` gives the path of a RECORD entry; `file_hash(path, algorithm)` the
    file's hash as RECORD writes it, None when there is no such file. The image
    check of `invoke verify` reads layers with the same rules (tooling.shipping.pulled_image).
    """
    if text is None:
        return [{"distribution": name, "file": "RECORD", "problem": "no RECORD"}], set()
    problems: list[dict[str, str]] = []
    listed = set()
    for row in record_rows(name, text, problems):
        if not row:
            continue
        relative, hash_value = row[0], row[1] if len(row) > 1 else ""
        path = locate(relative)
        listed.add(path)
        if not hash_value:
            continue  # RECORD itself, and files a tool adds after installing
        algorithm, _, expected = hash_value.partition("=")
        found = file_hash(path, algorithm)
        if found is None:
            problems.append({"distribution": name, "file": relative, "problem": "missing"})
        elif found != expected:
            problems.append({"distribution": name, "file": relative, "problem": "changed"})
    return problems, listed


def unlisted_among(files: Iterable[str], site_packages: str, listed: set[str]) -> list[str]:
    """Files in site-packages no RECORD names; byte code of a listed source is fine."""
    found = []
    for path in files:
        if path in listed:
            continue
        folder, name = posixpath.split(path)
        if folder == site_packages and name in VENV_FILES:
            continue
        if name.endswith(".pyc") and posixpath.basename(folder) == "__pycache__":
            source = posixpath.join(posixpath.dirname(folder), name.split(".", 1)[0] + ".py")
            if source in listed or posixpath.basename(source) in VENV_FILES:
                continue
        found.append(posixpath.relpath(path, site_packages))
    return sorted(found)


def disk_hash(path: str, algorithm: str) -> str | None:
    return record_hash(Path(path), algorithm) if os.path.isfile(path) else None


def inventory() -> dict[str, Any]:
    site_packages = os.path.normpath(sysconfig.get_paths()["purelib"])
    distributions, problems, listed = [], [], set()
    for dist in importlib.metadata.distributions(path=[site_packages]):
        name = dist.metadata["Name"]
        distributions.append({"name": name, "version": dist.version})

        def locate(relative: str, dist: importlib.metadata.Distribution = dist) -> str:
            return os.path.normpath(str(dist.locate_file(relative)))

        found, files = check_record(name, dist.read_text("RECORD"), locate, disk_hash)
        problems += found
        listed |= files
    on_disk = [os.path.join(top, n) for top, _, names in os.walk(site_packages) for n in names]
    return {
        "python": platform.python_version(),
        "prefix": sys.prefix,
        "markers": marker_environment(),
        "distributions": sorted(distributions, key=lambda d: (d["name"].lower(), d["version"])),
        "record_problems": problems,
        "unlisted": unlisted_among(on_disk, site_packages, listed),
    }


if __name__ == "__main__":
    print(json.dumps(inventory()))
