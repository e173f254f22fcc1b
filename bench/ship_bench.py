"""Benchmark `invoke verify` of a published tier image against the smoke test of the local image.

Usage: python bench/ship_bench.py [--tier sniper] [--engines buildah,podman] [--runs N]
       (inside the template's .venv, as root, with buildah, podman, skopeo and docker-registry;
       network for the locks)

Bakes a project, locks and commits it, and per engine builds the tier image
(in a private store holding only the base image, as the tests do), starts a
docker-registry on a free loopback port and publishes the image there. Then,
interleaved, --runs times each (medians printed):

* smoke: `nox -s smoke-test -- --tier T --image`, the checks of the local image;
* verify: `invoke verify --image HOST/NAME@sha256:...`, which fetches every
  layer over the loopback with skopeo into an empty temporary folder and
  checks the environment the layers hold against the lock, without running
  the image;
* its fetch: the same `skopeo copy` alone, to show verify's share.

The ratio is verify / smoke (target <= 2, TARGETS.md).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TEMPLATE))

from bench import image_bench  # noqa: E402
from tests import containers  # noqa: E402

BIN = Path(sys.executable).parent
PROJECT_NAME = "Ship Bench"


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A step that must succeed, with this venv's tools and the loopback registry unproxied."""
    env = {**env, "PATH": f"{BIN}:{env.get('PATH', '')}", "NO_PROXY": "127.0.0.1,localhost"}
    return image_bench.run(command, cwd, env)


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    run(command, cwd, env)
    return time.perf_counter() - start


def committed_project(work: Path) -> Path:
    project = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(work),
            extra_context={"project_name": PROJECT_NAME},
        )
    )
    env = containers.buildah_env()
    run([str(BIN / "nox"), "-s", "lock"], project, env)
    for command in (
        ["git", "init", "--quiet"],
        ["git", "add", "--all"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "--quiet", "-m", "bench"],
    ):
        run(command, project, env)
    return project


def bare_fetch(reference: str, env: dict[str, str]) -> float:
    """Seconds to fetch `reference` alone into an empty folder (the share of verify it takes)."""
    with tempfile.TemporaryDirectory(prefix="fetch-") as folder:
        copy = ["skopeo", "copy", "--quiet", "--preserve-digests", "--src-tls-verify=false"]
        return timed([*copy, f"docker://{reference}", f"dir:{folder}"], Path(folder), env)


def bench_engine(project: Path, engine: str, tier: str, runs: int) -> tuple[float, float, float]:
    """Median seconds of the smoke test, of verify, and of verify's fetch alone, for one engine."""
    base = containers.ensure_base_image("3.11")
    registry = containers.Registry()
    try:
        with containers.PrivateStore(base, engine=engine) as store:
            invoke = [str(BIN / "invoke")]
            run([*invoke, "build", "--tier", tier, "--engine", engine, "--base-image", base],
                project, store.env)  # fmt: skip
            published = run(
                [*invoke, "publish", "--tier", tier, "--registry", registry.host],
                project,
                store.env,
            )
            reference = published.stdout.strip().splitlines()[-1]
            smoke = [str(BIN / "nox"), "-s", "smoke-test", "--", "--tier", tier, "--image"]
            verify = [*invoke, "verify", "--image", reference, "--engine", engine]
            smoke_times, verify_times, pull_times = [], [], []
            for _ in range(runs):
                smoke_times.append(timed(smoke, project, store.env))
                verify_times.append(timed(verify, project, store.env))
                pull_times.append(bare_fetch(reference, store.env))
    finally:
        registry.stop()
    median = statistics.median
    return median(smoke_times), median(verify_times), median(pull_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="sniper")
    parser.add_argument("--engines", default="buildah,podman")
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ship-bench-") as tmp:
        project = committed_project(Path(tmp))
        print(f"tier {arguments.tier}, medians of {arguments.runs} runs each")
        print(f"{'engine':<8} {'smoke test':>11} {'verify':>8} {'ratio':>6} {'its fetch':>9}")
        for engine in arguments.engines.split(","):
            smoke, verify, pull = bench_engine(project, engine, arguments.tier, arguments.runs)
            print(
                f"{engine:<8} {smoke:>10.1f}s {verify:>7.1f}s {verify / smoke:>5.2f}x {pull:>8.1f}s"
            )


if __name__ == "__main__":
    main()
