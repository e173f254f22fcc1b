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
import sys
import sysconfig
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


def check_record(
    dist: importlib.metadata.Distribution, name: str
) -> tuple[list[dict[str, str]], set[Path]]:
    """(problems, files listed) for one distribution's RECORD."""
    text = dist.read_text("RECORD")
    if text is None:
        return [{"distribution": name, "file": "RECORD", "problem": "no RECORD"}], set()
    problems, listed = [], set()
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        relative, hash_value = row[0], row[1] if len(row) > 1 else ""
        path = Path(os.path.normpath(str(dist.locate_file(relative))))
        listed.add(path)
        if not hash_value:
            continue  # RECORD itself, and files a tool adds after installing
        if not path.is_file():
            problems.append({"distribution": name, "file": relative, "problem": "missing"})
            continue
        algorithm, _, expected = hash_value.partition("=")
        if record_hash(path, algorithm) != expected:
            problems.append({"distribution": name, "file": relative, "problem": "changed"})
    return problems, listed


def unlisted_files(site_packages: Path, listed: set[Path]) -> list[str]:
    """Files in site-packages no RECORD names; byte code of a listed source is fine."""
    found = []
    for top, _, names in os.walk(site_packages):
        for name in names:
            path = Path(top) / name
            if path in listed or (top == str(site_packages) and name in VENV_FILES):
                continue
            if path.suffix == ".pyc" and path.parent.name == "__pycache__":
                source = path.parent.parent / (name.split(".", 1)[0] + ".py")
                if source in listed or source.name in VENV_FILES:
                    continue
            found.append(str(path.relative_to(site_packages)))
    return sorted(found)


def inventory() -> dict[str, Any]:
    site_packages = Path(sysconfig.get_paths()["purelib"])
    distributions, problems, listed = [], [], set()
    for dist in importlib.metadata.distributions(path=[str(site_packages)]):
        name = dist.metadata["Name"]
        distributions.append({"name": name, "version": dist.version})
        found, files = check_record(dist, name)
        problems += found
        listed |= files
    return {
        "python": platform.python_version(),
        "prefix": sys.prefix,
        "markers": marker_environment(),
        "distributions": sorted(distributions, key=lambda d: (d["name"].lower(), d["version"])),
        "record_problems": problems,
        "unlisted": unlisted_files(site_packages, listed),
    }


if __name__ == "__main__":
    print(json.dumps(inventory()))
