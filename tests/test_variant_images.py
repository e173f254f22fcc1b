"""CPU and GPU worker images, each built from its own lock, hold their own build of `accel`.

What a team shipping both workers does, end to end: a loopback PEP 503 index
serves two builds of `accel` (`1.0+cpu`, `1.0+cu121`) under two index paths;
each worker's `.in` names its index; `nox -s lock` resolves the solve groups
(PyPI through the proxy for the shared base); the GPU worker names its own
base image (a stand-in for a CUDA runtime image) and `invoke base-image
--refresh` pins both bases; `invoke build` makes both images with buildah,
podman and docker in turn; the smoke test and an import inside each image find the build its
lock names, and nothing of the other.

buildah and podman work in a store of their own, removed afterwards; docker
pulls its bases from a loopback registry, and its images are removed afterwards. The index listens
on the host's loopback, so the builds use `invoke build --network host`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests import containers
from tests.conftest import TEMPLATE
from tests.images import git_commit, run, smoke_test
from tests.package_index import PackageIndex, build_wheel

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

NAME = "variant-check"  # its own image names, apart from other tests'
TIERS = "base, backend:base, cpu-worker:base, gpu-worker:base, dev:backend"
TIER_NAMES = [entry.strip().partition(":")[0] for entry in TIERS.split(",")]
BUILDS = {"cpu-worker": "cpu", "gpu-worker": "cu121"}
CUDA_BASE = "localhost/lockstep-test-cuda:12.1-runtime"  # the test base image plus CUDA_VERSION
SETTINGS = f"""
[tool.lockstep.solve-groups]
cpu = ["cpu-worker"]
cuda = ["gpu-worker"]

[tool.lockstep.base-images]
gpu-worker = "{CUDA_BASE}"
"""

# The module-scoped CA bundle secret of the other image tests (with their marker line).


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    wheels = tmp_path_factory.mktemp("wheels")
    with PackageIndex() as served:
        for build in BUILDS.values():
            served.add(build, build_wheel(wheels / build, "accel", f"1.0+{build}", build=build))
        yield served


@dataclass
class Variants:
    """Where the workers are built: an engine, its environment, and the bases it pins."""

    engine: containers.Engine
    cpu_base: str  # every tier's base but the GPU worker's, as base-images.lock names it
    gpu_base: str
    settings: str  # what the project adds to pyproject.toml
    pin_options: tuple[str, ...]  # for `invoke base-image --refresh`


@pytest.fixture(scope="module", params=containers.ENGINE_NAMES)
def store(request: pytest.FixtureRequest) -> Iterator[Variants]:
    """A store holding python:3.11-slim and the CUDA stand-in: for buildah and podman a
    private one (the bases local); for docker the tests' daemon, the bases pulled from a
    loopback registry (docker knows a digest only for what it pulled or pushed)."""
    base = containers.ensure_base_image("3.11")
    if request.param != "docker":
        with containers.PrivateStore(base, engine=request.param) as private:
            private.buildah("tag", base, "docker.io/library/python:3.11-slim")
            container = private.buildah("from", "--pull-never", base).stdout.strip()
            private.buildah("config", "--env", "CUDA_VERSION=12.1", container)
            private.buildah("commit", "--rm", container, CUDA_BASE)
            yield Variants(private.engine, "python:3.11-slim", CUDA_BASE, SETTINGS, ("--local",))
        return
    docker = containers.Docker(request.getfixturevalue("docker_daemon").env)
    docker.ensure_base("3.11")
    with containers.Registry() as registry:
        cpu, gpu = f"{registry.host}/python:3.11-slim", f"{registry.host}/cuda:12.1-runtime"
        container = f"lockstep-cuda-{os.getpid()}"
        docker.cli("run", "--name", container, "--network", "none", "--entrypoint", "true", base)
        try:
            docker.cli("commit", "--change", "ENV CUDA_VERSION=12.1", container, gpu)
        finally:
            docker.cli("rm", container, check=False)
        docker.cli("tag", base, cpu)
        for image in (cpu, gpu):
            docker.cli("push", image)
            docker.cli("rmi", image)  # `invoke base-image --refresh` pulls them back
        bases = {tier: gpu if tier == "gpu-worker" else cpu for tier in TIER_NAMES}
        settings = SETTINGS.replace(
            f'gpu-worker = "{CUDA_BASE}"',
            "\n".join(f'{tier} = "{image}"' for tier, image in bases.items()),
        )
        try:
            yield Variants(docker, cpu, gpu, settings, ())
        finally:
            for tier in TIER_NAMES:
                docker.cli("rmi", "--force", f"{NAME}:{tier}", check=False)
            docker.cli("rmi", "--force", cpu, gpu, check=False)


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    index: PackageIndex,
    store: Variants,
) -> Path:
    """Baked, locked for real, bases pinned and committed: what a team builds its images from."""
    baked = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path_factory.mktemp("variants")),
            extra_context={"project_name": "Variant Check", "tiers": TIERS, "dev_tier": "dev"},
        )
    )
    pyproject = baked / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + store.settings)
    for tier, build in BUILDS.items():
        (baked / "requirements" / f"{tier}.in").write_text(
            f"# {tier}: base plus the {build} build of accel.\n"
            f"-r base.in\n--extra-index-url {index.url(build)}\naccel==1.0+{build}\n"
        )
    locked = run(baked, "nox", "-s", "lock")
    assert locked.returncode == 0, locked.stderr[-3000:]
    pinned = run(
        baked,
        "invoke",
        "base-image",
        "--refresh",
        *store.pin_options,
        "--engine",
        store.engine.name,
        env=store.engine.env,
    )
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    git_commit(baked)
    return baked


@pytest.fixture(scope="module")
def builds(project: Path, store: Variants, ca_bundle: Path) -> dict[str, str]:
    """`invoke build --tier T` of both workers, the CA bundle as a secret: each one's output."""
    outputs = {}
    for tier in BUILDS:
        built = run(
            project,
            "invoke",
            "build",
            "--tier",
            tier,
            "--engine",
            store.engine.name,
            "--network",
            "host",
            "--ca-bundle",
            str(ca_bundle),
            env=store.engine.env,
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        assert f"built {NAME}:{tier}: image ID" in built.stdout, built.stdout[-2000:]
        outputs[tier] = built.stdout
    return outputs


def python_in(
    store: Variants, tier: str, code: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run the environment's Python in a throwaway container of the tier's image."""
    argv = ["/opt/venv/bin/python", "-c", code, *args]
    return store.engine.run_in_image(f"{NAME}:{tier}", argv)


def files_naming_build(store: Variants, tier: str, build: str) -> list[str]:
    """Files of the image's environment whose bytes name `build` as accel's version or BUILD."""
    searched = python_in(
        store,
        tier,
        "import pathlib, sys\n"
        "venv, build = pathlib.Path('/opt/venv'), sys.argv[1].encode()\n"
        "needles = (b'1.0+' + build, b'BUILD = \"' + build + b'\"')\n"
        "files = [p for p in venv.rglob('*') if p.is_file()]\n"
        "named = [p for p in files if any(n in p.read_bytes() for n in needles)]\n"
        "print(len(files), *sorted(str(p.relative_to(venv)) for p in named))\n",
        build,
    )
    assert searched.returncode == 0, searched.stderr
    counted, *named = searched.stdout.split()
    assert int(counted) > 100  # the whole environment was read, not an empty folder
    return named


def test_each_worker_lock_names_its_own_build_and_index(project: Path, index: PackageIndex) -> None:
    requirements = project / "requirements"
    for tier, build in BUILDS.items():
        lock = (requirements / f"{tier}.txt").read_text()
        assert f"accel==1.0+{build} \\" in lock
        assert f"--extra-index-url {index.url(build)}\n" in lock
        other = next(b for b in BUILDS.values() if b != build)
        assert index.url(other) not in lock and f"1.0+{other}" not in lock
    for tier in ("base", "backend", "dev"):
        lock = (requirements / f"{tier}.txt").read_text()
        assert "accel" not in lock, tier
        for build in BUILDS.values():
            assert index.url(build) not in lock, f"{tier}.txt names the {build} index"


def test_each_worker_builds_on_its_own_pinned_base_image(
    project: Path, store: Variants, builds: dict[str, str]
) -> None:
    pins = (project / "base-images.lock").read_text()
    cpu_base = re.search(rf"^{re.escape(store.cpu_base)}@sha256:[0-9a-f]{{64}}$", pins, re.M)
    gpu_base = re.search(rf"^{re.escape(store.gpu_base)}@sha256:[0-9a-f]{{64}}$", pins, re.M)
    assert cpu_base and gpu_base, pins
    assert (
        f"building {NAME}:cpu-worker with {store.engine.name} from {cpu_base.group(0)}"
        in builds["cpu-worker"]
    )
    assert (
        f"building {NAME}:gpu-worker with {store.engine.name} from {gpu_base.group(0)}"
        in builds["gpu-worker"]
    )
    shown = {
        tier: python_in(store, tier, "import os; print(os.environ.get('CUDA_VERSION'))").stdout
        for tier in BUILDS
    }
    assert shown == {"cpu-worker": "None\n", "gpu-worker": "12.1\n"}


@pytest.mark.parametrize("tier", list(BUILDS))
def test_the_smoke_test_finds_exactly_the_lock_in_each_image(
    project: Path, store: Variants, builds: dict[str, str], tier: str
) -> None:
    result = smoke_test(project, "--tier", tier, "--image", env=store.engine.env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    log = result.stderr
    assert f"{NAME}:{tier}: Python 3.11." in log
    assert re.search(
        rf"exactly requirements/{tier}.txt: \d+ distributions, every file matches its RECORD", log
    )
    assert re.search(r"imports: \d+ top-level modules", log)


@pytest.mark.parametrize("tier", list(BUILDS))
def test_each_image_imports_the_build_its_lock_names_and_nothing_of_the_other(
    store: Variants, builds: dict[str, str], tier: str
) -> None:
    build = BUILDS[tier]
    shown = python_in(
        store, tier, "import accel, importlib.metadata as m; print(accel.BUILD, m.version('accel'))"
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"{build} 1.0+{build}", shown.stderr

    other = next(b for b in BUILDS.values() if b != build)
    own = files_naming_build(store, tier, build)
    site = "lib/python3.11/site-packages"
    assert {f"{site}/accel/__init__.py", f"{site}/accel-1.0+{build}.dist-info/METADATA"} <= set(own)
    assert files_naming_build(store, tier, other) == [], f"the {tier} image holds the {other} build"
