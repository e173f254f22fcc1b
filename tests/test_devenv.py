"""`invoke dev`: `.venv` is exactly the dev lock plus the app, editable, run as a user would."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Bake, read_lock, run_in
from tests.package_index import build_wheel

pytestmark = [pytest.mark.network, pytest.mark.slow]


def commands_run(output: str) -> list[str]:
    """The first three words of each command `invoke dev` showed before running it."""
    return [" ".join(line.split()[1:4]) for line in output.splitlines() if line.startswith("$ ")]


def test_invoke_dev_makes_dot_venv_the_dev_lock_and_keeps_it_so(bake: Bake, tmp_path: Path) -> None:
    project = bake(
        tiers="core, tools:core", dev_tier="tools", with_container="no", ci_provider="none"
    )
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    assert run_in(project, "nox", "-s", "lock").returncode == 0

    first = run_in(project, "invoke", "dev")
    assert first.returncode == 0, first.stderr
    assert commands_run(first.stdout) == [
        "uv venv --clear",
        "uv pip sync",
        "uv pip install",
        ".venv/bin/pre-commit install",
    ]
    assert ".venv is ready: exactly requirements/tools.txt, with my-service installed editable" in (
        first.stdout
    )
    venv = project / ".venv" / "bin"
    version = run_in(project, str(venv / "my-service"), "--version")
    assert version.returncode == 0 and version.stdout.strip() == "my-service 0.1.0"
    tests = run_in(project, str(venv / "pytest"), "-q", "tests/test_cli.py")
    assert tests.returncode == 0, tests.stdout
    pins = {pin["name"]: pin["version"] for pin in read_lock(project, "requirements/tools.txt")}
    assert run_in(project, str(venv / "ruff"), "--version").stdout.split() == ["ruff", pins["ruff"]]
    assert "/.venv/bin/python" in (project / ".git" / "hooks" / "pre-commit").read_text()
    # Editable: a change to the code shows without reinstalling.
    init = project / "src" / "my_service" / "__init__.py"
    init.write_text(init.read_text().replace('"0.1.0"', '"0.1.1"'))
    assert (
        run_in(project, str(venv / "my-service"), "--version").stdout.strip() == "my-service 0.1.1"
    )
    init.write_text(init.read_text().replace('"0.1.1"', '"0.1.0"'))

    again = run_in(project, "invoke", "dev")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        ".venv is up to date: exactly requirements/tools.txt, with my-service installed editable"
    ]
    assert run_in(project, "invoke", "dev", "--check").returncode == 0

    # A new command in pyproject.toml is installed at the next `invoke dev`.
    pyproject = project / "pyproject.toml"
    scripts = '[project.scripts]\nmy-service = "my_service.cli:main"\n'
    pyproject.write_text(
        pyproject.read_text().replace(scripts, scripts + 'my-tool = "my_service.cli:main"\n')
    )
    assert not (venv / "my-tool").exists()
    reinstalled = run_in(project, "invoke", "dev")
    assert commands_run(reinstalled.stdout) == ["uv pip sync", "uv pip install"]
    assert run_in(project, str(venv / "my-tool"), "--version").returncode == 0

    extra = build_wheel(tmp_path / "wheels", "tinypkg", "1.0")
    added = run_in(project, "uv", "pip", "install", "--python", str(venv / "python"), str(extra))
    assert added.returncode == 0, added.stderr
    checked = run_in(project, "invoke", "dev", "--check")
    assert checked.returncode == 1 and checked.stdout == ""
    assert checked.stderr.splitlines() == [
        "error: .venv does not match requirements/tools.txt: extra distribution tinypkg 1.0: "
        "requirements/tools.txt does not name it; run `invoke dev`"
    ]

    synced = run_in(project, "invoke", "dev")
    assert synced.returncode == 0, synced.stderr
    assert commands_run(synced.stdout) == ["uv pip sync", "uv pip install"]
    gone = run_in(project, str(venv / "python"), "-c", "import tinypkg")
    assert gone.returncode == 1 and "No module named 'tinypkg'" in gone.stderr
    assert run_in(project, "invoke", "dev", "--check").returncode == 0

    # A .venv of another Python (as pyvenv.cfg records it) is made again.
    config = project / ".venv" / "pyvenv.cfg"
    config.write_text(
        re.sub(r"version_info = [\d.]+", "version_info = 3.10.13", config.read_text())
    )
    other = run_in(project, "invoke", "dev", "--check")
    assert other.returncode == 1
    assert other.stderr.splitlines() == [
        "error: .venv does not match requirements/tools.txt: .venv runs Python 3.10.13 "
        "but .python-version says 3.11; run `invoke dev`"
    ]
    remade = run_in(project, "invoke", "dev")
    assert remade.returncode == 0, remade.stderr
    assert commands_run(remade.stdout) == ["uv venv --clear", "uv pip sync", "uv pip install"]
    assert "version_info = 3.11." in config.read_text()


def test_invoke_dev_check_without_dot_venv_or_lock(bake: Bake) -> None:
    project = bake(
        tiers="core, tools:core", dev_tier="tools", with_container="no", ci_provider="none"
    )
    no_lock = run_in(project, "invoke", "dev")
    assert no_lock.returncode == 1
    assert no_lock.stderr.splitlines() == [
        "error: requirements/tools.txt is missing: run `nox -s lock` first"
    ]
    assert not (project / ".venv").exists()
    assert run_in(project, "nox", "-s", "lock").returncode == 0
    missing = run_in(project, "invoke", "dev", "--check")
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        "error: .venv does not exist: run `invoke dev` to make it from requirements/tools.txt"
    ]
