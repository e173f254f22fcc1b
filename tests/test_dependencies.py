"""Adding a dependency the ecosystem's way, tested with the real uv and invoke: nothing
bypasses the tiers (network: uv resolves from the package index)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import Bake, read_lock
from tests.conftest import run_in as run

pytestmark = [pytest.mark.network, pytest.mark.slow]


def packages(project: Path, tier: str) -> set[str]:
    return {str(pin["name"]) for pin in read_lock(project, f"requirements/{tier}.txt")}


def uv(project: Path, *arguments: str) -> tuple[int, str]:
    done = run(project, sys.executable, "-m", "uv", *arguments)
    return done.returncode, done.stdout + done.stderr


def test_uv_add_cannot_bypass_the_tiers_and_invoke_add_locks_them(bake: Bake) -> None:
    project = bake(with_container="no")
    assert run(project, "nox", "-s", "lock").returncode == 0
    pyproject = (project / "pyproject.toml").read_text()

    # `uv add X` would list X in [project].dependencies: the build reads those from base.in.
    code, said = uv(project, "add", "requests")
    assert code != 0 and "dynamic" in said
    assert (project / "pyproject.toml").read_text() == pyproject  # uv put it back

    # `uv add --group hunter rich` succeeds for uv, but no tier would ever lock rich.
    code, said = uv(project, "add", "--group", "hunter", "rich")
    assert code == 0, said
    stale = run(project, "nox", "-s", "lock", "--", "--check")
    assert stale.returncode == 1
    assert "uv: pyproject.toml [dependency-groups] hunter lists 'rich>=" in stale.stderr
    assert "uv: uv.lock is not this project's lock" in stale.stderr

    added = run(project, "invoke", "add", "rich", "--tier", "hunter")
    assert added.returncode == 0, added.stderr
    assert "added rich to requirements/hunter.in and locked" in added.stdout
    assert "rich" in packages(project, "hunter") and "rich" in packages(project, "dev")
    assert "rich" not in packages(project, "sniper")
    (project / "pyproject.toml").write_text(pyproject)  # what the check said: drop the group
    (project / "uv.lock").unlink()
    shutil.rmtree(project / ".venv", ignore_errors=True)  # uv add synced one; invoke dev owns it
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0

    removed = run(project, "invoke", "remove", "rich", "--tier", "hunter")
    assert removed.returncode == 0, removed.stderr
    assert "rich" not in packages(project, "hunter")
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0

    before = {path.name: path.read_bytes() for path in (project / "requirements").glob("*.*")}
    failed = run(project, "invoke", "add", "no-such-package-lockstep-test")
    assert failed.returncode == 1
    assert failed.stderr.strip().endswith("(requirements/base.in is as it was)")
    after = {path.name: path.read_bytes() for path in (project / "requirements").glob("*.*")}
    assert after == before
