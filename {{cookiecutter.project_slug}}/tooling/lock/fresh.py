"""The no-op test: whether `nox -s lock` has nothing to do, without parsing a lock.

A full lock that succeeds records one digest of everything a lock reads (the
`.in` and `-c` files, every lock and pylock in requirements/, pyproject.toml,
.python-version, the index variables pylocks are checked against, and the size
and modification time of the tooling's own files) in .lockstep_cache/. A later lock whose digest is the same
would read the same bytes and write nothing, so it stops there: no resolution,
no lock parsed, no pylock derived again. Any byte that differs runs the full
lock. The drift check (`--check`) never takes this shortcut: it is the guard.

Only light modules are imported here: a no-op must not pay for the lock's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tooling import ToolingError
from tooling.lock.inputs import environment_indexes, read_inputs
from tooling.project import Project

CACHE = ".lockstep_cache"
STAMP = "locks-current"
TOOLING = Path(__file__).resolve().parent.parent  # the tooling package that runs


def state(project: Project) -> str:
    """One digest of every byte a no-op lock would read, and of the code reading it."""
    inputs = read_inputs(project)
    digest = hashlib.sha256()

    def add(name: str, data: bytes) -> None:
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)

    for relative, text in sorted(inputs.texts.items()):
        add(relative, text.encode())
    requirements = project.requirements_dir
    for path in sorted([*requirements.glob("*.txt"), *requirements.glob("pylock.*.toml")]):
        add(f"requirements/{path.name}", path.read_bytes())
    for name in ("pyproject.toml", ".python-version"):
        add(name, (project.root / name).read_bytes())
    add("index variables", "\n".join(environment_indexes()).encode())
    for folder, children, files in os.walk(TOOLING):  # the code: an edit or checkout moves these
        children[:] = sorted(child for child in children if child != "__pycache__")
        for name in sorted(file for file in files if file.endswith(".py")):
            stat = os.stat(os.path.join(folder, name))
            add(os.path.join(folder, name), b"%d %d" % (stat.st_size, stat.st_mtime_ns))
    return digest.hexdigest()


def unchanged(project: Project) -> bool:
    """Whether the last full lock left every file as it is now (so there is nothing to do)."""
    try:
        recorded = (project.root / CACHE / STAMP).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return False
    try:
        return recorded == state(project)
    except (OSError, ToolingError):
        return False  # something unreadable: the full lock names it


def record(project: Project) -> None:
    """Note that the locks are current as the files stand (after a full lock succeeded).

    The cache is only a shortcut: a folder that cannot be written just keeps the next
    lock from taking it.
    """
    folder = project.root / CACHE
    try:
        current = state(project)
    except (OSError, ToolingError):
        return
    try:
        folder.mkdir(exist_ok=True)
        ignore = folder / ".gitignore"  # like ruff's and mypy's caches: no project file to edit
        if not ignore.is_file():
            ignore.write_text("# written by `nox -s lock`\n*\n", encoding="ascii")
        partial = folder / f".{STAMP}.{os.getpid()}.tmp"
        partial.write_text(current, encoding="ascii")
        os.replace(partial, folder / STAMP)
    except OSError:
        return
