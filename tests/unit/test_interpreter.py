import platform
import subprocess
import sys
from pathlib import Path

import pytest
from tooling.interpreter import Run, session_python
from tooling.project import Project

PYTHON_MINOR = ".".join(platform.python_version().split(".")[:2])


def finder(returncode: int, stdout: str) -> tuple[list[list[str]], Run]:
    """A stand-in for `uv python find`, and the commands it was asked to run."""
    calls: list[list[str]] = []

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, returncode, stdout, "error: no interpreter")

    return calls, run


@pytest.mark.parametrize("version", [platform.python_version(), PYTHON_MINOR])
def test_the_running_python_is_taken_when_it_fits(version: str) -> None:
    calls, run = finder(2, "")
    assert session_python(Project(Path("."), version), run) == (sys.executable, None)
    assert calls == []


@pytest.mark.parametrize("version", ["3.11.99", "3.99"])
def test_another_version_is_looked_for_without_downloading(version: str) -> None:
    calls, run = finder(0, "/opt/python/bin/python3\n")
    found = session_python(Project(Path("."), version), run)
    assert found == ("/opt/python/bin/python3", None)
    assert calls[0][1:] == ["python", "find", "--no-python-downloads", version]


@pytest.mark.parametrize("returncode", [1, 2])
def test_a_missing_exact_version_is_one_line_saying_how_to_install_it(returncode: int) -> None:
    _, run = finder(returncode, "")
    python, problem = session_python(Project(Path("."), "3.11.99"), run)
    assert python == "3.11.99"
    assert problem == (
        "Python 3.11.99 (.python-version) is not installed here: install it with "
        "`uv python install 3.11.99` or `pyenv install 3.11.99`, "
        "or write 3.11 in .python-version to take any 3.11"
    )


def test_a_missing_release_line_is_one_line_too() -> None:
    _, run = finder(2, "")
    assert session_python(Project(Path("."), "3.99"), run) == (
        "3.99",
        "Python 3.99 (.python-version) is not installed here: install it with "
        "`uv python install 3.99` or `pyenv install 3.99`",
    )
