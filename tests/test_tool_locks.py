"""The hashed locks of the tools the template ships follow the chosen Python version."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Bake

TOOL_LOCKS = ["requirements/tools/audit", "requirements/tools/safety", ".github/cruft-requirements"]
# Every release line the prompt accepts, one with a patch version.
VERSIONS = ["3.11.9", "3.12", "3.13", "3.14"]


@pytest.mark.parametrize("version", VERSIONS)
def test_tool_locks_name_the_chosen_python(bake: Bake, version: str) -> None:
    project = bake(python_version=version)
    minor = ".".join(version.split(".")[:2])
    # Each lock's header (the tools' .in files name `nox -s lock -- --tools`).
    for lock in TOOL_LOCKS:
        text = (project / f"{lock}.txt").read_text()
        command = f"--python-version {minor} --exclude-newer 7 days {lock}.in -o"
        assert command in text, lock
        assert "--python-version 3.1" not in text.replace(f"--python-version {minor}", ""), lock
    images = (project / "docs" / "images.md").read_text()
    assert f"(`python:{version}-slim@sha256:…`)" in images


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
def test_tool_locks_are_what_uv_locks_for_the_chosen_python(bake: Bake, version: str) -> None:
    """The documented refresh, `nox -s lock -- --tools` (under the cooldown), leaves every
    shipped tool lock as it is."""
    project = bake(python_version=version)
    shipped = {lock: (project / f"{lock}.txt").read_text() for lock in TOOL_LOCKS}
    done = subprocess.run(
        [sys.executable, "-m", "tooling.lock", "--tools"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for lock in TOOL_LOCKS:
        assert (project / f"{lock}.txt").read_text() == shipped[lock], lock
