"""An exact patch version in .python-version: used where installed, one clear line where not."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.conftest import TEMPLATE, Bake, run_in

pytestmark = pytest.mark.slow

ABSENT = "3.11.99"  # a patch release no machine has
NEEDS_PYTHON = [
    ["nox", "-s", "tests"],
    ["nox", "-s", "lint"],
    ["nox", "-s", "build"],
    ["nox", "-s", "smoke-test"],
    ["nox", "-s", "audit"],
    ["nox", "-s", "safety"],
    ["nox", "-s", "sbom"],
    ["invoke", "test"],
    ["invoke", "lint"],
    ["invoke", "smoke"],
    ["invoke", "audit"],
    ["invoke", "sbom"],
]


@pytest.fixture(scope="module")
def absent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("absent")
    answers = {"python_version": ABSENT}
    return Path(
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=output)
    )


@pytest.mark.parametrize("command", NEEDS_PYTHON, ids=" ".join)
def test_a_missing_exact_python_is_one_line_naming_it_and_how_to_install_it(
    absent: Path, command: list[str]
) -> None:
    result = run_in(absent, *command)
    assert result.returncode != 0
    said = [line for line in result.stderr.splitlines() if ABSENT in line]
    assert len(said) == 1, result.stderr
    assert f"Python {ABSENT} (.python-version) is not installed here" in said[0]
    assert f"`uv python install {ABSENT}`" in said[0]
    assert "Traceback" not in result.stderr and "download" not in result.stderr.lower()


def test_the_lock_needs_no_interpreter_of_that_version(absent: Path) -> None:
    """Locking resolves for the version without running it; the drift check says what is missing."""
    result = run_in(absent, "nox", "-s", "lock_check")
    assert ABSENT not in result.stderr
    assert "run `nox -s lock`" in result.stderr


@pytest.mark.network
def test_an_installed_exact_python_runs_build_and_smoke_test(bake: Bake) -> None:
    exact = platform.python_version()  # the Python running these tests is installed here
    project = bake(python_version=exact, with_container="no")
    for session in (["lock"], ["build"], ["smoke-test", "--", "--tier", "base"]):
        result = run_in(project, "nox", "-s", *session)
        assert result.returncode == 0, result.stderr[-2000:]
    assert f"Python {exact} (.python-version {exact})" in result.stderr
    assert f'"python": "{exact}"' in result.stdout + result.stderr
