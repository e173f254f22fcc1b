"""The hashed locks of the tools the template ships follow the chosen Python version."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import Bake

TOOL_LOCKS = ["requirements/tools/audit", "requirements/tools/safety", ".github/cruft-requirements"]
# Every release line the prompt accepts, one with a patch version.
VERSIONS = ["3.11.9", "3.12", "3.13", "3.14"]


@pytest.mark.parametrize("version", VERSIONS)
def test_tool_locks_name_the_chosen_python(bake: Bake, version: str) -> None:
    project = bake(python_version=version)
    minor = ".".join(version.split(".")[:2])
    # Each lock's header, and the refresh command in the tools' .in files.
    files = [f"{lock}.txt" for lock in TOOL_LOCKS] + [f"{lock}.in" for lock in TOOL_LOCKS[:2]]
    for name in files:
        text = (project / name).read_text()
        command = f"--python-version {minor} {name.rsplit('.', 1)[0]}.in -o"
        assert command in text, name
        assert "--python-version 3.1" not in text.replace(f"--python-version {minor}", ""), name
    images = (project / "docs" / "images.md").read_text()
    assert f"(`python:{version}-slim@sha256:…`)" in images


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
def test_tool_locks_are_what_uv_locks_for_the_chosen_python(bake: Bake, version: str) -> None:
    """The README's refresh command, run as written, leaves every shipped tool lock as it is."""
    project = bake(python_version=version)
    for lock in TOOL_LOCKS:
        shipped = (project / f"{lock}.txt").read_text()
        command = (
            "uv pip compile --quiet --universal --generate-hashes --python-version "
            f'"$(cut -d. -f1,2 .python-version)" {lock}.in -o {lock}.txt'
        )
        done = subprocess.run(
            ["bash", "-c", command], cwd=project, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        assert (project / f"{lock}.txt").read_text() == shipped, lock
