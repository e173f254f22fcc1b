"""The dev container's Python follows .python-version, as the image builds do.

`.devcontainer/devcontainer.json` passes the Dockerfile's `PYTHON_VERSION`
build argument itself (VS Code builds the `dev` stage without `invoke build`),
so it states the version once more: `nox -s lock` rewrites it with the other
places that do (tooling.project), and the drift check names a stale one. Only
the argument's value changes; every other byte of the file stays.
"""

from __future__ import annotations

import re
from pathlib import Path

from tooling import decode_utf8

DEVCONTAINER = Path(".devcontainer") / "devcontainer.json"
ARGUMENT = re.compile(r'("PYTHON_VERSION"\s*:\s*")([^"\\\r\n]*)(")')


def stated_versions(root: Path) -> list[str]:
    """The PYTHON_VERSION values devcontainer.json passes (none without the file)."""
    path = root / DEVCONTAINER
    if not path.is_file():
        return []
    return [found.group(2) for found in ARGUMENT.finditer(read(path))]


def devcontainer_problems(root: Path, python_version: str) -> list[str]:
    return [
        f"{DEVCONTAINER.as_posix()} passes PYTHON_VERSION {stated!r} but .python-version says "
        f"{python_version} (`nox -s lock` rewrites it)"
        for stated in stated_versions(root)
        if stated != python_version
    ]


def devcontainer_rewrites(root: Path, python_version: str) -> dict[Path, str]:
    """{devcontainer.json: new text} when it passes another Python version."""
    if not devcontainer_problems(root, python_version):
        return {}
    path = root / DEVCONTAINER
    text = ARGUMENT.sub(lambda found: found.group(1) + python_version + found.group(3), read(path))
    return {path: text}


def read(path: Path) -> str:
    return decode_utf8(path.read_bytes(), DEVCONTAINER.as_posix())
