"""The no-op test: whether `nox -s lock` has nothing to do, without parsing a lock.

A full lock that succeeds records one digest of everything a lock reads (the
`.in` and `-c` files, every lock and pylock in requirements/, pyproject.toml,
.python-version, the dev container's file, the index variables pylocks are checked against, and the
size and modification time of the tooling's own files) in .lockstep_cache/.
A later lock whose digest is the same would read the same bytes and write
nothing, so it stops there: no resolution, no lock parsed, no pylock derived
again. Any byte that differs runs the full lock. The drift check (`--check`)
never takes this shortcut: it is the guard.

The noxfile reads the project through load_project: when the digest is the
same, the settings the last full lock checked are not checked again (nor is
their schema imported). Any changed byte of pyproject.toml, .python-version,
a tier file or the tooling loads the project as always, errors included.

Only light modules are imported here: a no-op must not pay for the lock's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tooling import ToolingError
from tooling.lock.inputs import environment_indexes, read_inputs
from tooling.project import Project, load, read

CACHE = ".lockstep_cache"
STAMP = "locks-current"
TOOLING = Path(__file__).resolve().parent.parent  # the tooling package that runs


class Digest:
    """sha256 over named parts: a part's name and length come before its bytes."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def add(self, name: str, data: bytes) -> None:
        self.hash.update(f"{name}\0{len(data)}\0".encode())
        self.hash.update(data)


def inputs_digest(project: Project) -> str:
    """What a lock reads and never writes: the `.in` and `-c` files, .python-version and
    the index variables."""
    digest = Digest()
    for relative, text in sorted(read_inputs(project).texts.items()):
        digest.add(relative, text.encode())
    digest.add(".python-version", (project.root / ".python-version").read_bytes())
    digest.add("index variables", "\n".join(environment_indexes()).encode())
    return digest.hash.hexdigest()


def inputs_before_lock(project: Project) -> str | None:
    """inputs_digest, or None when an input cannot be read (the lock names it)."""
    try:
        return inputs_digest(project)
    except (OSError, ToolingError):
        return None


def state(project: Project) -> str:
    """One digest of every byte a no-op lock would read, and of the code reading it."""
    digest = Digest()
    digest.add("inputs", inputs_digest(project).encode())
    requirements = project.requirements_dir
    for path in sorted([*requirements.glob("*.txt"), *requirements.glob("pylock.*.toml")]):
        digest.add(f"requirements/{path.name}", path.read_bytes())
    digest.add("pyproject.toml", (project.root / "pyproject.toml").read_bytes())
    devcontainer = project.root / ".devcontainer" / "devcontainer.json"  # its Python follows
    if devcontainer.is_file():
        digest.add("devcontainer.json", devcontainer.read_bytes())
    for folder, children, files in os.walk(TOOLING):  # the code: an edit or checkout moves these
        children[:] = sorted(child for child in children if child != "__pycache__")
        for name in sorted(file for file in files if file.endswith(".py")):
            stat = os.stat(os.path.join(folder, name))
            digest.add(os.path.join(folder, name), b"%d %d" % (stat.st_size, stat.st_mtime_ns))
    return digest.hash.hexdigest()


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


def load_project(root: Path) -> tuple[Project, bool]:
    """The project at root, and whether the last full lock left every file as it is now
    (unchanged): then its settings, checked by that lock, are not checked again."""
    if unchanged(Project(root, python_version="")):  # the digest reads files only
        try:
            return read(root), True
        except (OSError, ToolingError):
            pass  # the record names files that are no longer readable: load says why
    return load(root), False


def record(project: Project, inputs_before: str | None) -> None:
    """Note that the locks are current as the files stand, after a full lock succeeded that
    read its inputs when they had `inputs_before` (inputs_digest).

    An input edited while that lock ran is not what its locks were made from: nothing is
    recorded then. The cache is only a shortcut: a folder that cannot be written just keeps
    the next lock from taking it.
    """
    folder = project.root / CACHE
    try:
        if inputs_before is None or inputs_digest(project) != inputs_before:
            return
        current = state(project)
    except (OSError, ToolingError):
        return
    try:
        folder.mkdir(exist_ok=True)
        ignore = folder / ".gitignore"  # like ruff's and mypy's caches: no project file to edit
        if not ignore.is_file():
            ignore.write_text("# written by `nox -s lock`\n*\n", encoding="ascii")
        from tooling.atomic import temporary_beside  # not on the no-op path

        partial = temporary_beside(folder / STAMP)
        partial.write_text(current, encoding="ascii")
        os.replace(partial, folder / STAMP)
    except OSError:
        return
