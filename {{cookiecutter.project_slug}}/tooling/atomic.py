"""All-or-nothing writes: every file changes, or none does.

New texts go to temporary files beside their targets (`.<name>.<pid>-<random>.tmp`,
with the mode any new file gets under the umask), then replace the targets.
A failure at any point (a full disk, a failing rename, Ctrl-C) puts back every
file already replaced and removes every temporary. A run killed outright
(SIGKILL, power loss) cannot: the next run removes what it left, knowing it by
the process id in the name, once that process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from tooling import ToolingError


class WriteError(ToolingError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}; no lock was changed")
        self.path, self.reason = path, reason


def shown(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def current_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


# What a run leaves while it works: temporaries beside the files it writes, and work
# folders in the system's temporary folder (only looked for there).
TEMPORARY = re.compile(r"\..+\.(\d+)-[0-9a-f]{8}\.tmp")
WORK_FOLDER = re.compile(r"lockstep-(\d+)-\w+")


def temporary_beside(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def gone(pid: int) -> bool:
    """Whether no process has this id (a process of another user still counts)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def remove_leftovers(folder: Path, pattern: re.Pattern[str]) -> None:
    """Remove what killed runs left in folder: entries named by pattern (group 1: the pid)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        found = pattern.fullmatch(entry.name)
        if found is None or not gone(int(found.group(1))):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


@contextlib.contextmanager
def work_folder() -> Iterator[Path]:
    """A temporary folder for uv's inputs and outputs, named so a later run can clean it up."""
    system = Path(tempfile.gettempdir())
    remove_leftovers(system, WORK_FOLDER)
    with tempfile.TemporaryDirectory(prefix=f"lockstep-{os.getpid()}-") as folder:
        yield Path(folder)


def staged_copy(path: Path, text: str, temporaries: list[Path]) -> Path:
    """Write text beside path under a temporary name, with the mode a new file gets."""
    temporary = temporary_beside(path)
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    temporaries.append(temporary)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(handle, data) :]
    finally:
        os.close(handle)
    return temporary


def backup(path: Path, temporaries: list[Path]) -> Path:
    kept = temporary_beside(path)
    temporaries.append(kept)
    try:
        os.link(path, kept)
    except OSError:
        shutil.copy2(path, kept)
    return kept


def write_all(files: dict[Path, str], remove: Iterable[Path] = ()) -> list[Path]:
    """Write every changed file and remove the given ones, or change nothing at all.

    Returns the paths that changed. Any failure (a full disk, a failing rename,
    an interrupt) puts back every file already moved and removes every temporary.
    """
    for folder in {path.parent for path in [*files, *remove]}:
        remove_leftovers(folder, TEMPORARY)
    changed = {path: text for path, text in files.items() if current_text(path) != text}
    removing = [path for path in remove if path.exists()]
    temporaries: list[Path] = []
    staged: dict[Path, Path] = {}
    backups: dict[Path, Path] = {}
    done: list[Path] = []
    current = ""
    try:
        for path, text in changed.items():
            current = shown(path)
            staged[path] = staged_copy(path, text, temporaries)
        for path in [*changed, *removing]:
            current = shown(path)
            if path.exists():
                backups[path] = backup(path, temporaries)
        for path in [*changed, *removing]:
            current = shown(path)
            if path in staged:
                os.replace(staged[path], path)
            else:
                path.unlink()
            done.append(path)
    except BaseException as failure:
        for path in reversed(done):
            if path in backups:
                os.replace(backups[path], path)
            else:
                path.unlink(missing_ok=True)
        if isinstance(failure, OSError):
            reason = failure.strerror or errno.errorcode.get(failure.errno or 0, str(failure))
            raise WriteError(current, reason) from None
        raise
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    return [*sorted(changed), *sorted(removing)]
