"""Layered tiers with buildah: a child tier's image is its parent tier's environment plus its own.

The default tiers: sniper is exactly base (no layer of its own), hunter adds
numpy. Built cold in a store of their own, on the local stand-in base image
pinned as python:3.11-slim: the run's cold builds (tests.images.ColdBuilds).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import containers
from tests import registry as registries
from tests.conftest import read_lock
from tests.containers import Registry
from tests.images import (
    BASE,
    NAME,
    ColdBuilds,
    cold_build,
    copy_project,
    git_commit,
    image_id,
    pin_local_base,
    run,
    smoke_test,
)

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

SITE = "opt/venv/lib/python3.11/site-packages"
TIERS = ("sniper", "hunter")


@pytest.fixture(scope="module")
def store(cold_builds: ColdBuilds) -> containers.PrivateStore:
    """buildah's store of the run's cold builds: the base, then what they built."""
    return cold_builds.store("buildah")[0]


@pytest.fixture(scope="module")
def locked(cold_builds: ColdBuilds) -> Path:
    """The committed project those builds are of, its base pinned (never changed here)."""
    return cold_builds.store("buildah")[1]


@pytest.fixture(scope="module")
def built(cold_builds: ColdBuilds) -> dict[str, str]:
    """sniper, then hunter, built cold: tier -> the output of its `invoke build`."""
    return {tier: cold_builds.build("buildah", tier) for tier in TIERS}


def diff_ids(store: containers.PrivateStore, image: str) -> list[str]:
    shown = store.buildah("inspect", "--type", "image", image).stdout
    return [str(each) for each in json.loads(shown)["OCIv1"]["rootfs"]["diff_ids"]]


def layer_members(
    store: containers.PrivateStore, image: str, index: int, folder: Path
) -> list[str]:
    """The paths in the image's layer number `index` (from the bottom)."""
    store.buildah("push", "--disable-compression", image, f"dir:{folder}")
    manifest = json.loads((folder / "manifest.json").read_text())
    blob = folder / manifest["layers"][index]["digest"].removeprefix("sha256:")
    with tarfile.open(fileobj=io.BytesIO(blob.read_bytes())) as layer:
        return [member.name.removeprefix("./") for member in layer.getmembers()]


def test_child_tiers_share_their_parent_s_environment_layers(
    built: dict[str, str], cold_builds: ColdBuilds, store: containers.PrivateStore
) -> None:
    environment = diff_ids(store, f"localhost/{NAME}-environment:base")
    base = diff_ids(store, BASE)
    sniper = diff_ids(store, f"localhost/{NAME}:sniper")
    hunter = diff_ids(store, f"localhost/{NAME}:hunter")
    # base: the bare stage's RUN, the lock's COPY, the RUN installing it.
    assert environment[: len(base)] == base and len(environment) == len(base) + 3
    # sniper has no package of its own: the base tier's environment, then the runtime's two.
    assert sniper[: len(environment)] == environment and len(sniper) == len(environment) + 2
    # hunter: the same layers, byte for byte, then its own COPY and RUN, then the runtime's.
    assert hunter[: len(environment)] == environment and len(hunter) == len(environment) + 4
    assert hunter[-2:] == sniper[-2:]  # useradd and the app: the same bytes too
    pin = cold_builds.store("buildah")[2]  # python:3.11-slim@sha256:...
    assert (
        f"building {NAME}:hunter with buildah from {pin} (on tier base's environment)"
        in (built["hunter"])
    )


def test_a_child_s_own_layer_holds_only_the_packages_it_adds(
    built: dict[str, str], locked: Path, store: containers.PrivateStore, tmp_path: Path
) -> None:
    parent = {str(pin["name"]) for pin in read_lock(locked, "requirements/base.txt")}
    child = {str(pin["name"]) for pin in read_lock(locked, "requirements/hunter.txt")}
    added = {name.replace("-", "_") for name in child - parent}
    assert added == {"numpy"}
    environment = diff_ids(store, f"localhost/{NAME}-environment:base")
    members = layer_members(store, f"{NAME}:hunter", len(environment) + 1, tmp_path / "hunter")
    installed = {
        path.split("/")[len(SITE.split("/"))]
        for path in members
        if path.startswith(f"{SITE}/") and path != f"{SITE}/"
    }
    owners = {re.split(r"[-.]", entry)[0].lower() for entry in installed}
    assert owners == added, sorted(installed)
    # No byte code of the parent's packages compiled again into this layer.
    assert not [path for path in members if "/pydantic" in path or "/structlog" in path]


def test_a_layered_image_holds_exactly_its_lock(
    built: dict[str, str], locked: Path, store: containers.PrivateStore
) -> None:
    for tier in ("sniper", "hunter"):
        smoke = smoke_test(locked, "--tier", tier, "--image", env=store.env)
        assert smoke.returncode == 0, smoke.stderr[-3000:]
        assert re.search(
            rf"exactly requirements/{tier}.txt: \d+ distributions, every file matches its RECORD",
            smoke.stderr,
        )


def test_two_cold_builds_give_one_image_id_per_tier(
    built: dict[str, str], locked: Path, ca_bundle: Path
) -> None:
    with containers.PrivateStore(BASE) as cold:
        pin_local_base(locked, cold)
        again = cold_build(locked, cold, "hunter", ca_bundle)
        environment = f"localhost/{NAME}-environment:base"
        assert diff_ids(cold, environment)  # built again, in this store
    assert image_id(again, "hunter") == image_id(built["hunter"], "hunter")


# --- invoke verify of a layered image, from a registry --------------------------------------


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    started = Registry()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def published(
    locked: Path,
    registry: Registry,
    ca_bundle: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, containers.PrivateStore, str]]:
    """scout (base plus a pure-Python package), on a base pinned in the registry for every
    tier, built and published. Not hunter: verify cannot prove numpy's byte code on this
    machine's Python (a finding of its own, layered or not)."""
    project = copy_project(locked, tmp_path_factory.mktemp("verify"))
    (project / "requirements" / "scout.in").write_text("-r base.in\nidna\n")
    relocked = run(project, "nox", "-s", "lock")
    assert relocked.returncode == 0, relocked.stderr[-2000:]
    with containers.PrivateStore(BASE) as store:
        reference = f"{registry.host}/base/{BASE.rpartition('/')[2]}"
        store.buildah("push", "--tls-verify=false", BASE, f"docker://{reference}")
        pinned = f"{reference}@{registries.digest(reference)}"
        store.buildah("pull", "--tls-verify=false", pinned)
        every_tier = "".join(f'{tier} = "{reference}"\n' for tier in ("base", "scout"))
        with (project / "pyproject.toml").open("a") as pyproject:
            pyproject.write(f"\n[tool.lockstep.base-images]\n{every_tier}")
        (project / "base-images.lock").write_text(f"{pinned}\n")
        git_commit(project)
        built = run(
            project, "invoke", "build", "--tier", "scout", "--engine", "buildah",
            "--ca-bundle", str(ca_bundle), env=store.env,
        )  # fmt: skip
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        assert "(on tier base's environment)" in built.stdout
        result = run(
            project, "invoke", "publish", "--tier", "scout", "--engine", "buildah",
            "--registry", f"{registry.host}/layers", env=store.env,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield project, store, result.stdout.strip().splitlines()[-1]


def verify(project: Path, store: containers.PrivateStore, image: str) -> list[str]:
    result = run(
        project, "invoke", "verify", "--engine", "buildah", "--image", image, env=store.env
    )
    return [f"exit {result.returncode}", *(result.stdout + result.stderr).splitlines()]


def test_verify_proves_a_layered_image_and_finds_a_tamper(
    published: tuple[Path, containers.PrivateStore, str], registry: Registry
) -> None:
    project, store, reference = published
    proven = verify(project, store, reference)
    assert proven[0] == "exit 0", [line for line in proven if "error" in line]
    assert "is exactly requirements/scout.txt of commit " in proven[-1], proven[-5:]
    assert any("layers above change nothing outside /opt/venv" in line for line in proven)

    # The parent's layer changed under the child's tag: structlog lives in base's layers.
    image = f"{NAME}:scout"
    tagged = f"{registry.host}/layers/{NAME}:scout"
    site = f"/{SITE}"
    original = store.engine.changed_image(image, f"echo 'print(1)' >> {site}/structlog/__init__.py")
    try:
        store.buildah("push", "--tls-verify=false", "--format", "v2s2", image, f"docker://{tagged}")
    finally:
        store.engine.restore(original, image)
    refused = verify(project, store, tagged)
    assert refused[0] == "exit 1"
    changed = f"error: {tagged}: {site}/structlog/__init__.py: changed (sha256 "
    assert any(line.startswith(changed) for line in refused), refused[-20:]
