"""Run the generated project's own nox sessions for real (needs the package index)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Bake

pytestmark = [pytest.mark.network, pytest.mark.slow]


def nox(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nox", *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({}, id="defaults"),
        pytest.param(
            {"tiers": "core, tools:core", "dev_tier": "tools", "with_container": "no"}, id="renamed"
        ),
    ],
)
def test_generated_tests_and_lint_sessions_pass(bake: Bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    result = nox(project, "-s", "tests", "lint")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Session tests was successful" in result.stderr
    assert "Session lint was successful" in result.stderr


def test_broken_tier_graph_stops_the_task_with_one_line(bake: Bake) -> None:
    project = bake()
    (project / "requirements" / "hunter.in").write_text("-r missing.in\nnumpy\n")
    result = subprocess.run(
        ["invoke", "tiers"], cwd=project, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {project / 'requirements' / 'hunter.in'}: -r missing.in names a tier "
        f"that does not exist ({project / 'requirements' / 'missing.in'} is missing)"
    ]


def test_invoke_lists_the_tier_graph(bake: Bake) -> None:
    result = subprocess.run(
        ["invoke", "tiers"], cwd=bake(), capture_output=True, text=True, check=True
    )
    assert "strategist <- hunter" in result.stdout
    assert "base (root)" in result.stdout


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["nox", "-s", "lock", "--", "--bogus"], "unrecognized arguments: --bogus"),
        (["nox", "-s", "lock", "--", "--check", "-U"], "--check cannot be combined with --upgrade"),
        (["invoke", "lock", "--check", "--upgrade"], "--check cannot be combined with --upgrade"),
        (["nox", "-s", "smoke-test", "--", "--tier"], "argument --tier: expected one argument"),
        (["invoke", "build"], "name one tier with --tier NAME, or build every tier with --all"),
    ],
)
def test_bad_task_arguments_fail_with_a_clear_line(
    bake: Bake, command: list[str], message: str
) -> None:
    result = subprocess.run(command, cwd=bake(), capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command", [["nox", "-s", "lock"], ["invoke", "lock"], ["invoke", "tiers"]]
)
def test_bad_python_version_file_stops_every_task(bake: Bake, command: list[str]) -> None:
    project = bake()
    (project / ".python-version").write_text("3.x\n")
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "error: .python-version says '3.x': write one version like 3.11 or 3.11.9"
    assert "Traceback" not in result.stderr
