"""CPU and CUDA workers lock their own build of one package (real uv, loopback index)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Bake
from tests.conftest import run_in as run
from tests.package_index import PackageIndex, build_wheel, user_pip

pytestmark = [pytest.mark.slow]

TIERS = "base, backend:base, cpu-worker:base, gpu-worker:base, dev:backend"
GROUPS = '[tool.lockstep.solve-groups]\ncpu = ["cpu-worker"]\ncuda = ["gpu-worker"]\n'


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PackageIndex]:
    wheels = tmp_path / "wheels"
    with PackageIndex() as served:
        served.add("pypi", build_wheel(wheels, "basepkg", "1.0"))
        served.add("pypi", build_wheel(wheels, "webpkg", "2.0", requires=("basepkg",)))
        served.add("pypi", build_wheel(wheels, "toolpkg", "3.0"))
        served.add("pypi", build_wheel(wheels, "accel", "1.0", build="generic"))
        served.add("cpu", build_wheel(wheels / "cpu", "accel", "1.0+cpu", build="cpu"))
        served.add("cu121", build_wheel(wheels / "cu121", "accel", "1.0+cu121", build="cu121"))
        yield served


def grouped_project(bake: Bake, index: PackageIndex, inputs: dict[str, str]) -> Path:
    """A project with the CPU and CUDA groups, PyPI replaced by the loopback index, locked."""
    project = bake(tiers=TIERS, with_container="no")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        .replace("[tool.lockstep]\n", f'[tool.lockstep]\nindex-url = "{index.url("pypi")}"\n', 1)
        # these tests count uv's page requests; the cooldown's own look-ups would add some
        .replace('cooldown = "7 days"', "cooldown = false")
        + "\n"
        + GROUPS
    )
    requirements = project / "requirements"
    for name, text in inputs.items():
        (requirements / f"{name}.in").write_text(text)
    locked = run(project, "nox", "-s", "lock")
    assert locked.returncode == 0, locked.stderr
    return project


@pytest.fixture
def project(bake: Bake, index: PackageIndex) -> Path:
    return grouped_project(
        bake,
        index,
        {
            "base": "basepkg\n",
            "backend": "-r base.in\nwebpkg\n",
            "cpu-worker": f"-r base.in\n--extra-index-url {index.url('cpu')}\naccel\n",
            "gpu-worker": (
                f"-r base.in\n--extra-index-url {index.url('cu121')}\naccel==1.0+cu121\n"
            ),
            "dev": "-r backend.in\ntoolpkg\n",
        },
    )


def locks(project: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((project / "requirements").glob("*.txt"))}


def block(text: str, name: str) -> str:
    found = re.search(rf"^{name}==.*?(?=^\S|\Z)", text, re.MULTILINE | re.DOTALL)
    assert found, name
    return "\n".join(line for line in found.group(0).splitlines() if "#" not in line)


def test_each_worker_locks_its_own_build_and_shares_the_base(
    project: Path, index: PackageIndex
) -> None:
    written = locks(project)
    assert {"_union.txt", "_union-cpu.txt", "_union-cuda.txt"} <= set(written)
    assert "accel==1.0+cpu \\" in written["cpu-worker.txt"]
    assert "accel==1.0+cu121 \\" in written["gpu-worker.txt"]
    assert "accel" not in written["backend.txt"] + written["dev.txt"] + written["base.txt"]
    shared = block(written["base.txt"], "basepkg")
    for name in ("backend.txt", "dev.txt", "cpu-worker.txt", "gpu-worker.txt"):
        assert block(written[name], "basepkg") == shared, name
    cuda, cpu = index.url("cu121"), index.url("cpu")
    assert f"--extra-index-url {cuda}\n" in written["gpu-worker.txt"]
    assert f"--extra-index-url {cpu}\n" in written["cpu-worker.txt"]
    for name, text in written.items():
        if name not in ("gpu-worker.txt", "_union-cuda.txt"):
            assert cuda not in text, f"{name} names the CUDA index"
    tiers = run(project, "invoke", "tiers")
    assert "gpu-worker <- base  [solve group cuda]" in tiers.stdout
    assert "backend <- base  [solve group default]" in tiers.stdout


def test_the_check_and_the_lock_work_per_group(project: Path) -> None:
    before = locks(project)
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0
    idle = run(project, "nox", "-s", "lock")
    assert "inputs unchanged: nothing to resolve" in idle.stderr
    assert locks(project) == before

    gpu = project / "requirements" / "gpu-worker.in"
    gpu.write_text(gpu.read_text() + "# the CUDA 12.1 build, for our driver\nbasepkg>=1\n")
    stale = run(project, "nox", "-s", "lock", "--", "--check")
    assert stale.returncode == 1
    problems = [line for line in stale.stderr.splitlines() if "changed since" in line]
    assert [line.split(": ", 1)[0].removeprefix("nox > ") for line in problems] == [
        "union-cuda",
        "gpu-worker",
    ]
    relocked = run(project, "nox", "-s", "lock")
    assert relocked.returncode == 0, relocked.stderr
    after = locks(project)
    assert {name for name in after if after[name] != before[name]} == {
        "_union-cuda.txt",
        "gpu-worker.txt",
    }
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_local_labels_survive_an_upgrade_of_one_build(project: Path, index: PackageIndex) -> None:
    index.add("cpu", build_wheel(project.parent / "new", "accel", "1.1+cpu", build="cpu 1.1"))
    kept = run(project, "nox", "-s", "lock", "--", "--upgrade-package", "accel")
    assert kept.returncode == 0, kept.stderr
    assert "accel 1.0+cpu → 1.1+cpu (cpu-worker)" in kept.stderr
    written = locks(project)
    assert "accel==1.1+cpu \\" in written["cpu-worker.txt"]
    assert "accel==1.0+cu121 \\" in written["gpu-worker.txt"]
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_pip_installs_each_workers_own_build(project: Path, tmp_path: Path) -> None:
    for tier, build in (("cpu-worker", "cpu"), ("gpu-worker", "cu121")):
        venv.create(tmp_path / tier, with_pip=True)
        python = tmp_path / tier / "bin" / "python"
        lock = project / "requirements" / f"{tier}.txt"
        installed = user_pip(python, "--require-hashes", "-r", str(lock), env={})
        assert installed.returncode == 0, installed.stderr
        shown = subprocess.run(
            [str(python), "-c", "import accel, basepkg; print(accel.BUILD)"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert shown.stdout.strip() == build, shown.stderr
        # Its pylock names its own build's file on its own index, and uv installs it.
        pylock = (project / "requirements" / f"pylock.{tier}.toml").read_text()
        other = "cu121" if build == "cpu" else "cpu"
        assert f"accel-1.0+{build}" in pylock and f"+{other}" not in pylock
        from_pylock = tmp_path / f"{tier}-pylock"
        venv.create(from_pylock, with_pip=False)
        installed = subprocess.run(
            [str(Path(sys.executable).parent / "uv"), "pip", "install", "--python",
             str(from_pylock / "bin" / "python"), "--require-hashes",
             "-r", str(project / "requirements" / f"pylock.{tier}.toml")],
            capture_output=True, text=True, check=False,
            env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
        )  # fmt: skip
        assert installed.returncode == 0, installed.stderr
        shown = subprocess.run(
            [str(from_pylock / "bin" / "python"), "-c", "import accel; print(accel.BUILD)"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert shown.stdout.strip() == build, shown.stderr


# The default group holds the shared basepkg back (webpkg needs basepkg<2), while
# the workers alone would take basepkg 2.0: they must resolve again, constrained.
# With basepkg 1.0 the CPU build of accel is the older one, which needs cpuhelper.


@pytest.fixture
def held_back_index(tmp_path: Path) -> Iterator[PackageIndex]:
    wheels = tmp_path / "wheels"
    with PackageIndex() as served:
        served.add("pypi", build_wheel(wheels, "basepkg", "1.0"))
        served.add("pypi", build_wheel(wheels / "2", "basepkg", "2.0"))
        served.add("pypi", build_wheel(wheels, "webpkg", "2.0", requires=("basepkg<2",)))
        served.add("pypi", build_wheel(wheels, "cpuhelper", "1.0"))
        cpu = wheels / "cpu"
        served.add("cpu", build_wheel(cpu, "accel", "1.0+cpu", ("basepkg", "cpuhelper"), "cpu"))
        served.add("cpu", build_wheel(cpu, "accel", "2.0+cpu", ("basepkg>=2",), "cpu 2"))
        served.add("cu121", build_wheel(wheels / "cu", "accel", "1.0+cu121", build="cu121"))
        yield served


def held_back_inputs(index: PackageIndex) -> dict[str, str]:
    return {
        "base": "basepkg\n",
        "backend": "-r base.in\nwebpkg\n",
        "cpu-worker": f"-r base.in\n--extra-index-url {index.url('cpu')}\naccel\n",
        "gpu-worker": f"-r base.in\n--extra-index-url {index.url('cu121')}\naccel\n",
        "dev": "-r backend.in\n",
    }


def test_a_group_takes_the_shared_pin_the_default_group_holds_back(
    bake: Bake, held_back_index: PackageIndex
) -> None:
    project = grouped_project(bake, held_back_index, held_back_inputs(held_back_index))
    written = locks(project)
    shared = block(written["base.txt"], "basepkg")
    assert "basepkg==1.0 \\" in shared
    for name in ("backend.txt", "cpu-worker.txt", "gpu-worker.txt", "_union-cpu.txt"):
        assert block(written[name], "basepkg") == shared, name
    assert "accel==1.0+cpu \\" in written["cpu-worker.txt"]
    assert "cpuhelper==1.0 \\" in written["cpu-worker.txt"]
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_the_second_round_reuses_only_what_this_lock_fetched(
    bake: Bake, held_back_index: PackageIndex
) -> None:
    index = held_back_index
    project = grouped_project(bake, index, held_back_inputs(index))
    # cpuhelper 1.0 now sits in uv's cache; 1.1 appears on the index afterwards.
    index.add("pypi", build_wheel(project.parent / "new", "cpuhelper", "1.1"))
    index.requests.clear()
    relocked = run(project, "nox", "-s", "lock", "--", "--upgrade")
    assert relocked.returncode == 0, relocked.stderr
    # Only the constrained round needs cpuhelper: its cached page is not trusted.
    assert "cpuhelper==1.1 \\" in (project / "requirements" / "cpu-worker.txt").read_text()
    assert "cpuhelper 1.0 → 1.1 (cpu-worker)" in relocked.stderr
    # The CUDA group needed nothing new for its second round: it asked the index once.
    cuda_pages = [path for path, _ in index.requests if path == "/cu121/simple/accel/"]
    assert len(cuda_pages) == 1, index.requests


def test_a_group_that_cannot_take_the_shared_pin_names_both_groups(
    bake: Bake, held_back_index: PackageIndex
) -> None:
    index = held_back_index
    project = grouped_project(bake, index, held_back_inputs(index))
    before = locks(project)
    cpu = project / "requirements" / "cpu-worker.in"
    cpu.write_text(cpu.read_text() + "basepkg>=2\n")
    failed = run(project, "nox", "-s", "lock")
    assert failed.returncode == 1
    assert (
        "solve group cpu cannot use basepkg 1.0, which group default pins for the shared tier base"
        in failed.stderr
    ), failed.stderr
    assert locks(project) == before
