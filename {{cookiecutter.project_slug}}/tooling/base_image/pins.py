"""base-images.lock: every tier's base image pinned by digest.

A line `IMAGE@sha256:DIGEST` pins the image for every platform (a multi-platform
index resolves per platform when used); `IMAGE@sha256:DIGEST linux/arm64` pins it
for that platform alone, and wins there. Read by the drift check (a pin of
python:<version> must follow .python-version) and by `invoke build`; written by
`invoke base-image --refresh`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from tooling import ToolingError

BASE_IMAGES = "base-images.lock"
DIGEST = re.compile(r"^(?P<reference>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")
PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")


class BaseImageError(ToolingError):
    pass


def pin_key(reference: str, platform: str | None = None) -> str:
    """The key of read_base_pins: the reference, or `reference platform` for one platform's."""
    return f"{reference} {platform}" if platform else reference


def read_base_pins(root: Path) -> dict[str, str]:
    """reference (or `reference platform`, see pin_key) -> reference@sha256:digest."""
    path = root / BASE_IMAGES
    if not path.is_file():
        return {}
    pins = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pin, _, platform = line.partition(" ")
        match = DIGEST.match(pin)
        if not match or (platform and not PLATFORM.fullmatch(platform.strip())):
            raise BaseImageError(
                f"{BASE_IMAGES}:{number}: {line!r} is not IMAGE@sha256:DIGEST [PLATFORM]; "
                "rewrite it with `invoke base-image --refresh`"
            )
        pins[pin_key(match["reference"], platform.strip())] = pin
    return pins


def write_base_pins(root: Path, pins: Mapping[str, str]) -> None:
    """`pins` as read_base_pins returns them."""
    lines = [
        "# Base images pinned by digest (a platform after one: its pin for that platform alone);",
        "# `invoke build` uses these. Written by `invoke base-image --refresh`;",
        "# `nox -s lock_check` checks the Python tags.",
        *(" ".join([pins[key], *key.split(" ")[1:]]) for key in sorted(pins)),
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
    for reference in {key.split(" ")[0] for key in pins}:
        match = re.match(r"^(?:.*/)?python:(\d+\.\d+(?:\.\d+)?)", reference)
        if match and match.group(1) != python_version:
            problems.append(
                f"{BASE_IMAGES} pins {reference} but .python-version says "
                f"{python_version}: run `invoke base-image --refresh`"
            )
    return problems
