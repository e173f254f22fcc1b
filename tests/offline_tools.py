"""Helpers for the tests that run the generated project's CI files and the template's tools
offline: the proxy pointed at a closed port (a test that reached the network fails
instead of passing by luck), a home of their own, and readers of the workflows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import TEMPLATE

BIN = Path(sys.executable).parent
DEAD_PROXY = "http://127.0.0.1:9"
CASES = [
    pytest.param({"ci_provider": "github", "with_container": "yes"}, id="github-containers"),
    pytest.param({"ci_provider": "github", "with_container": "no"}, id="github-no-containers"),
    pytest.param({"ci_provider": "none", "with_container": "no"}, id="no-ci"),
]
GITHUB_CASES = CASES[:2]


def offline_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = DEAD_PROXY
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    if home is not None:  # no user config for git, cookiecutter or cruft
        home.mkdir(parents=True, exist_ok=True)
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_AUTHOR_NAME="Template Test",
            GIT_AUTHOR_EMAIL="test@example.com",
            GIT_COMMITTER_NAME="Template Test",
            GIT_COMMITTER_EMAIL="test@example.com",
            PRE_COMMIT_HOME=str(home / "pre-commit"),
        )
    env.update(extra)
    return env


def run(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    *,
    expect: int | None = 0,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if expect is not None:
        assert done.returncode == expect, (
            f"{' '.join(argv)} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def git(repo: Path, env: dict[str, str], *args: str) -> str:
    return run(["git", *args], repo, env).stdout.strip()


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.y*ml"))


def actions(project: Path) -> list[Path]:
    return sorted((project / ".github" / "actions").glob("*/action.y*ml"))


def workflow_steps(project: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in workflows(project):
        for name, job in load_yaml(path)["jobs"].items():
            for step in job["steps"]:
                yield name, step
    for path in actions(project):
        for step in load_yaml(path)["runs"]["steps"]:
            yield path.parent.name, step


def template_files() -> list[Path]:
    """The template as a user would clone it: tracked and new files, nothing ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return [Path(name) for name in listed if name and (TEMPLATE / name).is_file()]


def template_checkout(folder: Path) -> tuple[Path, dict[str, str]]:
    """A git repository holding a copy of this template, with one commit (the
    `template_repo` fixture), and the offline environment to run tools in it."""
    env = offline_env(folder / "home")
    repo = folder / "cookiecutter-lockstep"
    for relative in template_files():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE / relative, repo / relative)
    git(repo, env, "init", "-q", "-b", "main")
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "-m", "template v1")
    return repo, env
