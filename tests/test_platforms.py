"""One tier for two platforms: linux/amd64 natively and linux/arm64 under qemu, with buildah.

The base is a multi-platform index (the test's amd64 and arm64 bases in one
manifest list) pushed to a loopback registry and pinned by its one digest in
base-images.lock, as `python:3.x-slim` would be. `invoke build --platform`
builds sniper for both, the smoke test runs both images, `invoke publish`
pushes one image index, and `invoke verify` checks each platform against the
lock with that platform's wheels. Under CI=true a machine without qemu fails
these tests (a skip is a failure there).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

from tests import containers
from tests import registry as registries
from tests.conftest import TEMPLATE
from tests.containers import Registry
from tests.images import git_commit, run

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

NAME = "platform-check"
BOTH = "linux/amd64,linux/arm64"
SITE = "/opt/venv/lib/python3.11/site-packages"


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    missing = [tool for tool in ("docker-registry", "skopeo") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (`.ci/run` installs them as root with apt)")
    started = Registry()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def qemu() -> None:
    missing = containers.emulation_missing("arm64")
    if missing:
        pytest.skip(missing)  # a failure under CI=true (tests/conftest.py)


def buildah_env(registry: Registry, folder: Path) -> dict[str, str]:
    """buildah's environment, which reaches the loopback registry over plain HTTP (as a
    registries.conf entry lets it), so a build pulls each platform's base by itself."""
    conf = folder / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
    return {**containers.buildah_env(), "CONTAINERS_REGISTRIES_CONF": str(conf)}


@pytest.fixture(scope="module")
def project(
    registry: Registry, qemu: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """Baked, locked, its sniper tier built on the base index pinned by digest, committed:
    the project and buildah's environment."""
    output = tmp_path_factory.mktemp("platforms")
    baked = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(output),
            extra_context={"project_name": "Platform Check"},
        )
    )
    env = buildah_env(registry, output)
    locked = run(baked, "nox", "-s", "lock", env=env)
    assert locked.returncode == 0, locked.stderr[-2000:]
    index = containers.ensure_base_index("3.11")
    reference = f"{registry.host}/base/lockstep-test-base"
    containers.buildah(
        "manifest", "push", "--all", "--format", "v2s2", "--tls-verify=false", index,
        f"docker://{reference}:3.11",
    )  # fmt: skip
    pinned = f"{reference}:3.11@{registries.digest(f'{reference}:3.11')}"
    with (baked / "pyproject.toml").open("a") as pyproject:
        pyproject.write(f'\n[tool.lockstep.base-images]\nsniper = "{reference}:3.11"\n')
    (baked / "base-images.lock").write_text(f"{pinned}\n")  # one pin for every platform
    git_commit(baked)
    return baked, env


@pytest.fixture(scope="module")
def built(project: tuple[Path, dict[str, str]], ca_bundle: Path) -> dict[str, Any]:
    """`invoke build --tier sniper --platform linux/amd64,linux/arm64`: its output and time."""
    path, env = project
    started = time.monotonic()
    result = run(
        path, "invoke", "build", "--tier", "sniper", "--engine", "buildah",
        "--platform", BOTH, "--ca-bundle", str(ca_bundle), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"output": result.stdout, "seconds": time.monotonic() - started}


def architecture(image: str) -> str:
    shown = containers.buildah(
        "inspect", "--type", "image", "--format", "{{.OCIv1.Architecture}}", image
    )
    return shown.stdout.strip()


def test_each_platform_is_built_and_listed_in_one_manifest_list(built: dict[str, Any]) -> None:
    output = built["output"]
    assert f"building {NAME}:sniper-linux-amd64 for linux/amd64 with buildah" in output
    assert f"building {NAME}:sniper-linux-arm64 for linux/arm64 with buildah" in output
    assert architecture(f"{NAME}:sniper-linux-amd64") == "amd64"
    assert architecture(f"{NAME}:sniper-linux-arm64") == "arm64"
    assert f"built {NAME}:sniper-index: a manifest list of linux/amd64, linux/arm64" in output
    listed = json.loads(containers.buildah("manifest", "inspect", f"{NAME}:sniper-index").stdout)
    shown = sorted(entry["platform"]["architecture"] for entry in listed["manifests"])
    assert shown == ["amd64", "arm64"]


def test_the_smoke_test_runs_each_platform_s_image(
    project: tuple[Path, dict[str, str]], built: dict[str, Any]
) -> None:
    path, env = project
    result = run(path, "nox", "-s", "smoke-test", "--", "--tier", "sniper", "--image", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{NAME}:sniper-linux-amd64: checked in buildah\n" in result.stderr
    assert f"{NAME}:sniper-linux-arm64: checked in buildah under qemu" in result.stderr
    for platform in ("amd64", "arm64"):
        assert f"{NAME}:sniper-linux-{platform}: --version: " in result.stderr
        assert f"{NAME}:sniper-linux-{platform}: exactly requirements/sniper.txt" in result.stderr


def test_a_platform_s_own_budget_is_checked_against_its_image(
    project: tuple[Path, dict[str, str]], built: dict[str, Any]
) -> None:
    """The arm64 base is larger: one budget for both fails arm64 alone, until it has its own."""
    path, env = project
    pyproject = path / "pyproject.toml"
    original = pyproject.read_text()
    sizes = {
        arch: containers.Buildah(env).inspect(f"{NAME}:sniper-linux-{arch}")["size"] / 1e6
        for arch in ("amd64", "arm64")
    }
    assert sizes["arm64"] > sizes["amd64"] + 5
    shared = int(sizes["amd64"]) + 2
    one_budget = re.sub(r"(?m)^sniper = \d+$", f"sniper = {shared}", original)
    assert one_budget != original
    try:
        pyproject.write_text(one_budget)
        over = run(path, "nox", "-s", "smoke-test", "--", "--tier", "sniper", "--image", env=env)
        assert over.returncode != 0
        assert f"{NAME}:sniper-linux-amd64: size: " in over.stderr
        assert (
            f"{NAME}:sniper-linux-arm64 is {sizes['arm64']:.0f} MB, over its {shared} MB budget "
            "([tool.lockstep.image-budget-mb] sniper or "
            '[tool.lockstep.platform-budget-mb."linux/arm64"] sniper in pyproject.toml)'
        ) in over.stderr
        own = int(sizes["arm64"]) + 2
        pyproject.write_text(
            one_budget + f'\n[tool.lockstep.platform-budget-mb."linux/arm64"]\nsniper = {own}\n'
        )
        within = run(path, "nox", "-s", "smoke-test", "--", "--tier", "sniper", "--image", env=env)
        assert within.returncode == 0, within.stderr[-3000:]
        assert (
            f"{NAME}:sniper-linux-arm64: size: {sizes['arm64']:.0f} MB of a {own} MB budget"
        ) in within.stderr
    finally:
        pyproject.write_text(original)


def test_docker_refuses_several_platforms_in_one_line(
    project: tuple[Path, dict[str, str]],
) -> None:
    path, env = project
    if shutil.which("docker") is None:
        pytest.skip("needs the docker client (`.ci/run` installs docker.io as root with apt)")
    result = run(
        path, "invoke", "build", "--tier", "sniper", "--engine", "docker", "--platform", BOTH,
        env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: docker builds one platform at a time here: build several platforms with "
        "--engine buildah or --engine podman (manifest lists), or name one with --platform"
    )


def test_a_bad_platform_is_one_line(project: tuple[Path, dict[str, str]]) -> None:
    path, env = project
    result = run(path, "invoke", "build", "--tier", "sniper", "--platform", "arm64", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: --platform: 'arm64' is not a platform; write it like linux/amd64 or linux/arm64"
    )
    assert (
        not (path / "dist" / "images" / "built.json").exists()
        or "arm64'" not in (path / "dist" / "images" / "built.json").read_text()
    )


@pytest.fixture(scope="module")
def published(
    project: tuple[Path, dict[str, str]], built: dict[str, Any], registry: Registry
) -> dict[str, str]:
    """`invoke publish --tier sniper` of the two-platform build: its output and reference."""
    path, env = project
    namespace = f"{registry.host}/team"
    result = run(path, "invoke", "publish", "--tier", "sniper", "--registry", namespace, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {
        "stdout": result.stdout,
        "reference": result.stdout.strip().splitlines()[-1],
        "repository": f"{namespace}/{NAME}",
    }


def raw_manifest(reference: str) -> tuple[str, dict[str, Any]]:
    """(digest, manifest) of `reference` as the loopback registry serves it."""
    shown = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        check=True,
    )
    return f"sha256:{hashlib.sha256(shown.stdout).hexdigest()}", json.loads(shown.stdout)


def test_publish_pushes_one_index_with_both_platforms_and_records_each(
    project: tuple[Path, dict[str, str]], published: dict[str, str]
) -> None:
    path, _ = project
    repository, output = published["repository"], published["stdout"]
    for arch in ("amd64", "arm64"):  # each platform smoke-tested before anything is pushed
        smoked = output.index(f"{NAME}:sniper-linux-{arch}: user: uid 1000")
        assert smoked < output.index(f"pushed {repository}:sniper with buildah")
    digest, index = raw_manifest(f"{repository}:sniper")
    assert published["reference"] == f"{repository}@{digest}"
    assert "manifest.list" in index["mediaType"] or "image.index" in index["mediaType"]
    listed = {
        f"{entry['platform']['os']}/{entry['platform']['architecture']}": entry["digest"]
        for entry in index["manifests"]
    }
    assert sorted(listed) == ["linux/amd64", "linux/arm64"]
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True
    ).stdout.strip()
    assert raw_manifest(f"{repository}:sniper-{commit}")[0] == digest
    record = json.loads((path / "dist" / "images" / "sniper.json").read_text())
    assert record["reference"] == published["reference"]
    for platform, entry in record["platforms"].items():
        assert entry["digest"] == listed[platform]
        sbom = json.loads((path / entry["sbom"]).read_text())
        assert sbom["metadata"]["component"]["version"] == listed[platform]
    assert sorted(record["platforms"]) == ["linux/amd64", "linux/arm64"]


def verify(path: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return run(path, "invoke", "verify", *arguments, env=env)


def test_verify_finds_a_tampered_arm64_image_while_its_amd64_twin_verifies(
    project: tuple[Path, dict[str, str]], published: dict[str, str]
) -> None:
    path, env = project
    repository = published["repository"]
    good = verify(path, env, "--image", f"{repository}:sniper")
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    assert "is an image index: checking linux/amd64, linux/arm64" in good.stdout
    assert (
        good.stdout.strip()
        .splitlines()[-1]
        .startswith(f"verified {repository}:sniper (linux/amd64, linux/arm64): sha256:")
    )

    engine = containers.Buildah(env)
    arm = f"{NAME}:sniper-linux-arm64"
    original = engine.changed_image(arm, f"echo 'import os' > {SITE}/evil.pth")  # under qemu
    index = f"localhost/{NAME}-tampered:index"
    try:
        engine.cli("manifest", "create", index)
        engine.cli("manifest", "add", index, f"{NAME}:sniper-linux-amd64")
        engine.cli("manifest", "add", index, arm)
        engine.cli(
            "manifest", "push", "--all", "--format", "v2s2", "--tls-verify=false", index,
            f"docker://{repository}:tampered",
        )  # fmt: skip
    finally:
        engine.cli("manifest", "rm", index, check=False)
        engine.restore(original, arm)

    every = verify(path, env, "--image", f"{repository}:tampered")
    assert every.returncode == 1, every.stdout[-2000:]
    errors = every.stderr.strip().splitlines()
    assert errors and all(
        line.startswith(f"error: {repository}:tampered (linux/arm64): ") for line in errors
    ), errors
    assert any("evil.pth" in line for line in errors), errors

    amd64 = verify(path, env, "--image", f"{repository}:tampered", "--platform", "linux/amd64")
    assert amd64.returncode == 0, amd64.stdout[-2000:] + amd64.stderr[-2000:]
    assert (
        amd64.stdout.strip()
        .splitlines()[-1]
        .startswith(f"verified {repository}:tampered (linux/amd64): sha256:")
    )


def test_verify_rebuild_gives_each_platform_s_published_image_id(
    project: tuple[Path, dict[str, str]], published: dict[str, str], ca_bundle: Path
) -> None:
    path, env = project
    reference = published["reference"]
    result = verify(
        path, {**env, "SSL_CERT_FILE": str(ca_bundle)}, "--image", reference, "--rebuild",
        "--engine", "buildah",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"building {NAME}:sniper-linux-arm64 for linux/arm64 with buildah" in result.stdout
    for platform in ("linux/amd64", "linux/arm64"):
        assert f"the same as {reference} ({platform})\n" in result.stdout


def test_podman_builds_both_platforms_into_one_manifest_list(
    project: tuple[Path, dict[str, str]],
    registry: Registry,
    ca_bundle: Path,
    tmp_path: Path,
) -> None:
    """podman reads a bare name in `manifest add` as docker://: the list is made by image ID."""
    path, buildah = project
    copy = tmp_path / path.name
    shutil.copytree(path, copy, symlinks=True)
    env = {
        **containers.podman_env(containers.run_dir() / "podman-pl"),  # short: PODMAN_ROOT_LIMIT
        "CONTAINERS_REGISTRIES_CONF": buildah["CONTAINERS_REGISTRIES_CONF"],
    }
    built = run(
        copy, "invoke", "build", "--tier", "sniper", "--engine", "podman",
        "--platform", BOTH, "--ca-bundle", str(ca_bundle), env=env,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    podman = containers.Podman(env)
    listed = json.loads(podman.cli("manifest", "inspect", f"{NAME}:sniper-index").stdout)
    shown = sorted(entry["platform"]["architecture"] for entry in listed["manifests"])
    assert shown == ["amd64", "arm64"]
    smoked = run(copy, "nox", "-s", "smoke-test", "--", "--tier", "sniper", "--image", env=env)
    assert smoked.returncode == 0, smoked.stdout[-3000:] + smoked.stderr[-3000:]
    assert f"{NAME}:sniper-linux-arm64: checked in podman under qemu" in smoked.stderr
