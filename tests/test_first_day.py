"""The template's own first day: the README's commands as written, run.py, and
the container tests' skip reason without buildah.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE, Bake, read_lock
from tests.offline_tools import (
    BIN,
    git,
    offline_env,
    run,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("ci", ["", "true"])
def test_container_tests_skip_with_a_reason_without_buildah(ci: str) -> None:
    """Without buildah and mmdebstrap they skip saying why; under CI=true that fails the run."""
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(PATH=str(BIN), CI=ci)  # this environment's tools, no buildah or mmdebstrap
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_images.py"],
        cwd=TEMPLATE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    reason = "needs buildah and mmdebstrap (`.ci/run` installs them as root with apt)"
    assert reason in done.stdout, done.stdout[-3000:]
    assert "FileNotFoundError" not in done.stdout
    if ci:
        assert done.returncode == 1 and "skipped under CI=true" in done.stdout
        assert re.search(r" \d+ (failed|errors?)", done.stdout.splitlines()[-1])
        assert " passed" not in done.stdout.splitlines()[-1]
    else:
        assert done.returncode == 0 and " skipped" in done.stdout.splitlines()[-1]
        assert " passed" not in done.stdout.splitlines()[-1]


def test_run_py_says_what_it_installs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests import run as runner

    lock = tmp_path / "dev.txt"
    lock.write_text("# a lock with nothing to install\n")
    monkeypatch.setattr(runner, "LOCK", lock)
    monkeypatch.setattr(runner, "ROOT", tmp_path)
    python = runner.ensure_environment(tmp_path / "venv")
    assert capsys.readouterr().out.splitlines() == [
        f"tests/run.py: creating the test environment {tmp_path / 'venv'}",
        "tests/run.py: installing dev.txt: 0 packages, hashes required "
        "(about a minute the first time)",
        "tests/run.py: installed dev.txt; running pytest",
    ]
    assert runner.ensure_environment(tmp_path / "venv") == python
    assert capsys.readouterr().out == ""  # already current: nothing to say


def console_commands(readme: str, heading: str) -> list[str]:
    """The `$ ` lines of each console block under a README heading, one script per block."""
    section = readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```console\n(.*?)```", section, flags=re.DOTALL)
    return [
        "\n".join(line[2:] for line in block.splitlines() if line.startswith("$ "))
        for block in blocks
    ]


@pytest.mark.network
def test_readme_first_day_commands_work_as_written(bake: Bake, tmp_path: Path) -> None:
    """Getting started, the switch to the locked tools and the git hooks, run as a user would.

    Another virtual environment is active throughout, as it often is: the
    commands must still fill `.venv`, and leave the other one alone.
    """
    project = bake(tiers="base, dev:base", with_container="no", ci_provider="none")
    readme = (project / "README.md").read_text()
    getting_started, switch = console_commands(readme, "Getting started")
    [hooks] = console_commands(readme, "Git hooks")
    other = tmp_path / "other-venv"
    run(["uv", "venv", "-q", str(other)], tmp_path, {**os.environ})
    env = {key: value for key, value in os.environ.items() if key != "PIP_FIND_LINKS"}
    env.update(PIP_CONFIG_FILE=os.devnull, VIRTUAL_ENV=str(other), NO_COLOR="1")
    env["PATH"] = f"{other / 'bin'}{os.pathsep}{env['PATH']}"
    git(project, offline_env(tmp_path / "home"), "init", "-q")

    for script in (getting_started, switch, hooks):
        run(["bash", "-e", "-c", script], project, env)

    pins = {pin["name"]: pin["version"] for pin in read_lock(project, "requirements/dev.txt")}
    ruff = run([str(project / ".venv" / "bin" / "ruff"), "--version"], project, env).stdout
    assert ruff.split() == ["ruff", pins["ruff"]]
    pre_commit = run([str(project / ".venv" / "bin" / "pre-commit"), "--version"], project, env)
    assert pre_commit.stdout.split() == ["pre-commit", pins["pre-commit"]]
    assert "/.venv/bin/python" in (project / ".git" / "hooks" / "pre-commit").read_text()
    assert not (other / "bin" / "ruff").exists() and not (other / "bin" / "pre-commit").exists()


def test_quick_start_no_input_example_bakes_beside_the_clone(
    template_repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """The README's `--no-input` example, run as written in a clone: the clone stays clean."""
    repo, env = template_repo
    readme = (TEMPLATE / "README.md").read_text()
    [example] = re.findall(r"`(python -m cookiecutter --no-input [^`]*)`", readme)
    assert "--output-dir .." in example
    run(["bash", "-e", "-c", example], repo, {**env, "PWD": str(repo)})
    project = repo.parent / "my-service"
    assert (project / "requirements" / "api.in").read_text().count("-r core.in") == 1
    assert json.loads((project / ".cruft.json").read_text())["template"] == str(repo)
    assert git(repo, env, "status", "--porcelain") == ""
