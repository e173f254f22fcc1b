"""What the container tests share: commands in a baked project with an engine's
environment, `invoke build` on the local base image, a committed project, and the
one project (`bake_image_project`) and the cold builds (`ColdBuilds`) a test run makes once."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from cookiecutter.main import cookiecutter

from tests import containers
from tests.conftest import TEMPLATE, run_in

MARKER = "# lockstep-test-secret-marker-5f1c2a"  # planted in secrets: no image may hold it
NAME = "image-check"  # the shared project's images, apart from other tests' and benchmarks'
BASE = containers.base_image_name("3.11")
# Secret-looking files at every depth; none may reach any image.
PLANTED = (
    "deploy/.env",
    "certs/corp.pem",
    "config/.netrc",
    "tests/fixtures/.env.local",
    "tooling/signing.key",
    "tests/.pypirc",
    "requirements/pip.conf",
    "tests/id_ed25519",
    "src/.env",
)


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


def commit_time(project: Path) -> str:
    """The time of the project's HEAD commit (the builds' SOURCE_DATE_EPOCH)."""
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


def bake_image_project(output: Path) -> Path:
    """The default tiers baked as "Image Check", locked, planted with secret-looking files and
    committed: what the container tests build (each on a copy, `copy_project`)."""
    project = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(output),
            extra_context={"project_name": "Image Check"},
        )
    )
    locked = run(project, "nox", "-s", "lock")
    assert locked.returncode == 0, locked.stderr[-2000:]
    for relative in PLANTED:
        planted = project / relative
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_text(f"{MARKER} {relative}\n")
    # A module that only looks like an ssh key's name: the dev image keeps it.
    (project / "tests" / "id_helpers.py").write_text('"""Helpers."""\n')
    git_commit(project)
    return project


def copy_project(project: Path, folder: Path) -> Path:
    """A copy of `project` (its git history too, not its nox environments) in `folder`."""
    copy = folder / project.name
    shutil.copytree(project, copy, symlinks=True, ignore=shutil.ignore_patterns(".nox"))
    return copy


def cold_build(
    project: Path, store: containers.PrivateStore, tier: str, ca_bundle: Path | None = None
) -> str:
    """`invoke build --tier TIER` in `store`, on the base its project pins; its output."""
    bundle = ["--ca-bundle", str(ca_bundle)] if ca_bundle else []
    built = run(
        project, "invoke", "build", "--tier", tier, "--engine", store.engine.name, *bundle,
        env=store.env,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return built.stdout


def pin_local_base(project: Path, store: containers.PrivateStore) -> str:
    """`invoke base-image --refresh --local`, the test base standing in for python:3.11-slim
    in `store`: the pin base-images.lock then holds (python:3.11-slim@DIGEST)."""
    store.buildah("tag", BASE, "docker.io/library/python:3.11-slim")
    pinned = run(
        project, "invoke", "base-image", "--refresh", "--local", "--engine", store.engine.name,
        env=store.env,
    )  # fmt: skip
    assert pinned.returncode == 0, pinned.stderr
    digest = store.buildah(
        "inspect", "--type", "image", "--format", "{{.FromImageDigest}}", BASE
    ).stdout.strip()
    return f"python:3.11-slim@{digest}"


def image_id(output: str, tier: str) -> str:
    """The image ID `invoke build` printed for the tier."""
    shown = re.search(rf"built {NAME}:{tier}: image ID ([0-9a-f]{{64}})", output)
    assert shown, output[-2000:]
    return shown.group(1)


class ColdBuilds:
    """Per engine (buildah, podman): a store of its own holding only the base, where a copy of
    the committed project pins it and builds its tiers, each once per test run, on demand.

    The first build of a tier in an empty store is cold (no layer cache); the tests that need
    a cold build (two cold builds of one commit, layered tiers) and those that need any built
    image in a private store (a refusing runtime's smoke test) share these, and
    tests that change an image put the original back (`containers.Engine.restore`).
    """

    def __init__(self, project: Path, ca_bundle: Path, folder: Path) -> None:
        self.project, self.ca_bundle, self.folder = project, ca_bundle, folder
        self.stores: dict[str, tuple[containers.PrivateStore, Path, str]] = {}
        self.outputs: dict[tuple[str, str], str] = {}

    def store(self, engine: str) -> tuple[containers.PrivateStore, Path, str]:
        """(the store, its project copy, the base pin) for `engine`."""
        if engine not in self.stores:
            store = containers.PrivateStore(BASE, engine=engine)
            project = copy_project(self.project, self.folder / engine)
            pin = pin_local_base(project, store)
            git_commit(project)  # the pin is part of the commit the images are built from
            self.stores[engine] = (store, project, pin)
        return self.stores[engine]

    def build(self, engine: str, tier: str) -> str:
        """The output of the tier's build in the engine's store (built on the first call)."""
        if (engine, tier) not in self.outputs:
            store, project, _ = self.store(engine)
            self.outputs[engine, tier] = cold_build(project, store, tier, self.ca_bundle)
        return self.outputs[engine, tier]

    def remove(self) -> None:
        for store, _, _ in self.stores.values():
            store.remove()
