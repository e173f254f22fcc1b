"""What the container tests share: commands in a baked project with an engine's
environment, `invoke build` on the local base image, and a committed project."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests import containers
from tests.conftest import run_in

MARKER = "# lockstep-test-secret-marker-5f1c2a"  # planted in secrets: no image may hold it


def run(
    project: Path, *command: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command in the project, with buildah's environment unless `env` gives an engine's."""
    return run_in(project, *command, env=env or containers.buildah_env())


def smoke_test(
    project: Path, *arguments: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`nox -s smoke-test -- ARGUMENTS` in the project, with an engine's environment."""
    return run(project, "nox", "-s", "smoke-test", "--", *arguments, env=env)


def build_with(
    engine: containers.Engine,
    project: Path,
    ca_bundle: Path,
    *arguments: str,
    base: str | None = None,
) -> str:
    """`invoke build` on the local base image (or `base`), the CA bundle passed as a secret;
    its output."""
    result = run(
        project,
        "invoke",
        "build",
        *arguments,
        "--engine",
        engine.name,
        "--base-image",
        base or engine.ensure_base("3.11"),
        "--ca-bundle",
        str(ca_bundle),
        env={**engine.env, "GITHUB_STEP_SUMMARY": str(project.parent / "build-summary.md")},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def git_commit(project: Path) -> str:
    """Commit the project (as a user's repository would be); return the commit's time."""
    for command in (
        ["git", "init", "--quiet"],
        ["git", "add", "--all"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "start"],
    ):
        subprocess.run(command, cwd=project, check=True, capture_output=True)
    shown = subprocess.run(
        ["git", "log", "-1", "--format=%ct"],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
    )
    return shown.stdout.strip()


def write_ca_bundle(folder: Path, system: str | None) -> Path:
    """The CA bundle the builds get as a secret: the system's, with MARKER in it."""
    bundle = folder / "ca.pem"
    text = Path(system).read_text() if system and Path(system).is_file() else ""
    bundle.write_text(f"{MARKER}\n{text}")
    return bundle
