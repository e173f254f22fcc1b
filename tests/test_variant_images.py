"""CPU and GPU worker images, each built from its own lock, hold their own build of `accel`.

What a team shipping both workers does, end to end: a loopback PEP 503 index
serves two builds of `accel` (`1.0+cpu`, `1.0+cu121`) under two index paths;
each worker's `.in` names its index; `nox -s lock` resolves the solve groups
(PyPI through the proxy for the shared base); `invoke build` makes both images
with buildah; the smoke test and an import inside each image find the build
its lock names, and nothing of the other.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests import containers, test_images
from tests.conftest import TEMPLATE
from tests.package_index import PackageIndex, build_wheel
from tests.test_images import build_with_buildah, git_commit, run

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

NAME = "variant-check"  # its own image names, apart from other tests'
TIERS = "base, backend:base, cpu-worker:base, gpu-worker:base, dev:backend"
GROUPS = '\n[tool.lockstep.solve-groups]\ncpu = ["cpu-worker"]\ncuda = ["gpu-worker"]\n'
BUILDS = {"cpu-worker": "cpu", "gpu-worker": "cu121"}

# The module-scoped CA bundle secret of the other image tests (with their marker line).
ca_bundle = test_images.ca_bundle


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    wheels = tmp_path_factory.mktemp("wheels")
    with PackageIndex() as served:
        for build in BUILDS.values():
            served.add(build, build_wheel(wheels / build, "accel", f"1.0+{build}", build=build))
        yield served


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, index: PackageIndex) -> Path:
    """Baked, locked for real and committed: the state a team builds its images from."""
    baked = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path_factory.mktemp("variants")),
            extra_context={"project_name": "Variant Check", "tiers": TIERS, "dev_tier": "dev"},
        )
    )
    pyproject = baked / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + GROUPS)
    for tier, build in BUILDS.items():
        (baked / "requirements" / f"{tier}.in").write_text(
            f"# {tier}: base plus the {build} build of accel.\n"
            f"-r base.in\n--extra-index-url {index.url(build)}\naccel==1.0+{build}\n"
        )
    locked = run(baked, "nox", "-s", "lock")
    assert locked.returncode == 0, locked.stderr[-3000:]
    git_commit(baked)
    return baked


@pytest.fixture(scope="module")
def images(project: Path, ca_bundle: Path) -> Iterator[dict[str, str]]:
    """Both workers' images, built with `invoke build` on the test base image; removed after."""
    built = {tier: f"localhost/{NAME}:{tier}" for tier in BUILDS}
    try:
        for tier in built:
            output = build_with_buildah(project, ca_bundle, "--tier", tier)
            assert f"built {NAME}:{tier}" in output, output[-2000:]
        yield built
    finally:
        for image in built.values():
            containers.buildah("rmi", "--force", image, check=False)


def python_in(image: str, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return containers.run_in_image(image, ["/opt/venv/bin/python", "-c", code, *args])


def files_naming_build(image: str, build: str) -> list[str]:
    """Files of the image's environment whose bytes name `build` as accel's version or BUILD."""
    searched = python_in(
        image,
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


@pytest.mark.parametrize("tier", list(BUILDS))
def test_the_smoke_test_finds_exactly_the_lock_in_each_image(
    project: Path, images: dict[str, str], tier: str
) -> None:
    result = run(project, "nox", "-s", "smoke-test", "--", "--tier", tier, "--image")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"{NAME}:{tier}: Python 3.11." in result.stderr
    assert f"exactly requirements/{tier}.txt" in result.stderr


@pytest.mark.parametrize("tier", list(BUILDS))
def test_each_image_imports_the_build_its_lock_names_and_nothing_of_the_other(
    images: dict[str, str], tier: str
) -> None:
    build = BUILDS[tier]
    shown = python_in(
        images[tier],
        "import accel, importlib.metadata as m; print(accel.BUILD, m.version('accel'))",
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"{build} 1.0+{build}"

    other = next(b for b in BUILDS.values() if b != build)
    own = files_naming_build(images[tier], build)
    site = "lib/python3.11/site-packages"
    assert {f"{site}/accel/__init__.py", f"{site}/accel-1.0+{build}.dist-info/METADATA"} <= set(own)
    assert files_naming_build(images[tier], other) == [], f"{images[tier]} holds the {other} build"
