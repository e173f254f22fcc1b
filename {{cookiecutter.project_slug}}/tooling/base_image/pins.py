"""base-images.lock: every tier's base image pinned by digest.

Read by the drift check (a pin of python:<version> must follow .python-version)
and by `invoke build`; written by `invoke base-image --refresh`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from tooling import ToolingError

BASE_IMAGES = "base-images.lock"
DIGEST = re.compile(r"^(?P<reference>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")


class BaseImageError(ToolingError):
    pass


def read_base_pins(root: Path) -> dict[str, str]:
    """reference -> reference@sha256:digest."""
    path = root / BASE_IMAGES
    if not path.is_file():
        return {}
    pins = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = DIGEST.match(line)
        if not match:
            raise BaseImageError(
                f"{BASE_IMAGES}:{number}: {line!r} is not IMAGE@sha256:DIGEST; "
                "rewrite it with `invoke base-image --refresh`"
            )
        pins[match["reference"]] = line
    return pins


def write_base_pins(root: Path, pins: Mapping[str, str]) -> None:
    lines = [
        "# Base images pinned by digest; `invoke build` uses these.",
        "# Written by `invoke base-image --refresh`; `nox -s lock_check` checks the Python tags.",
        *(pins[reference] for reference in sorted(pins)),
    ]
    path = root / BASE_IMAGES
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    temporary.replace(path)


def base_image_problems(root: Path, python_version: str) -> list[str]:
    """Pins of python:<version> images whose version is not .python-version's."""
    try:
        pins = read_base_pins(root)
    except BaseImageError as error:
        return [str(error)]
    problems = []
    for reference in pins:
        match = re.match(r"^(?:.*/)?python:(\d+\.\d+(?:\.\d+)?)", reference)
        if match and match.group(1) != python_version:
            problems.append(
                f"{BASE_IMAGES} pins {reference} but .python-version says "
                f"{python_version}: run `invoke base-image --refresh`"
            )
    return problems
