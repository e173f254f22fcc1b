"""The Python the sessions run on: the one `.python-version` names, or one line saying so.

`3.11` takes any 3.11, `3.11.9` exactly that release. The Python running nox
is taken when it fits (no search at all); otherwise `uv python find` looks for
one without downloading anything. Where none is installed, every session that
needs it says so in one line, instead of a download that fails offline (and
that for 3.11.9 would fetch the newest 3.11 anyway).
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Callable

from tooling.project import Project

Run = Callable[[list[str]], subprocess.CompletedProcess[str]]


def python_matches(found: str, wanted: str) -> bool:
    """3.11.9 matches a .python-version of 3.11 or 3.11.9, not 3.12."""
    return found == wanted or found.startswith(wanted + ".")


def running_python(wanted: str) -> str | None:
    """The Python running this when it is the `wanted` version (no search needed), else None."""
    if sys.executable and python_matches(platform.python_version(), wanted):
        return sys.executable
    return None


def run_captured(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def session_python(project: Project, run: Run = run_captured) -> tuple[str, str | None]:
    """(the interpreter for nox's `python=`, None), or (the version, why no session can run)."""
    wanted = project.python_version
    if running := running_python(wanted):
        return running, None
    from tooling.lock.uv import find_uv  # only when nox's own Python does not fit

    found = run([find_uv(), "python", "find", "--no-python-downloads", wanted])
    path = found.stdout.strip()
    if found.returncode == 0 and path:
        return path, None
    problem = (
        f"Python {wanted} (.python-version) is not installed here: install it with "
        f"`uv python install {wanted}` or `pyenv install {wanted}`"
    )
    if wanted != project.python_minor:
        problem += f", or write {project.python_minor} in .python-version to take any {project.python_minor}"
    return wanted, problem
