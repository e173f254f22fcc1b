"""The Python the sessions run on: the one `.python-version` names, or one line saying so.

A release line (3.11) is left to nox, which finds a 3.11 or installs one. An
exact version (3.11.9) is looked for here, because nox would install the
newest 3.11 instead and uv would try to download that exact build: where it is
not installed, every session that needs it says so in one line.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Callable

from tooling import lock
from tooling.project import Project

Run = Callable[[list[str]], subprocess.CompletedProcess[str]]


def run_captured(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def session_python(project: Project, run: Run = run_captured) -> tuple[str, str | None]:
    """(what nox's `python=` gets, None), or (the version, why no session can run on it)."""
    wanted = project.python_version
    if wanted == project.python_minor:
        return wanted, None
    if platform.python_version() == wanted:
        return sys.executable, None
    found = run([lock.find_uv(), "python", "find", "--no-python-downloads", wanted])
    path = found.stdout.strip()
    if found.returncode == 0 and path:
        return path, None
    return wanted, (
        f"Python {wanted} (.python-version) is not installed here: install it with "
        f"`uv python install {wanted}` or `pyenv install {wanted}`, "
        f"or write {project.python_minor} in .python-version to take any {project.python_minor}"
    )
