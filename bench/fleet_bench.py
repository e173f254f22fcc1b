"""Benchmark layered tier images against one independent image per tier, in one run.

Usage: python bench/fleet_bench.py [--runs N]
       (inside the template's .venv, as root, with buildah; network for the locks)

Bakes the default project, locks it once, and in a private buildah store
holding only the base image builds every tier (`invoke build --all`) two ways,
interleaved, the layer cache removed before each build (download caches warm):

* layered: `invoke build --all` as it is, each child tier on its parent's
  environment;
* independent (the peer: images as they were before layered tiers): the same
  command with the layering plan replaced by one that starts every tier from
  the base image, so each image is the base plus one environment layer with its
  whole tier. Same Dockerfile, same locks, same build arguments otherwise.

After the last build of each kind it counts the bytes a registry stores for the
default runtime tiers (every layer blob of their images counted once, by
digest, uncompressed sizes from the manifests; with and without the base
image's layers), and what pulling `hunter` onto a host that has `sniper` fetches.
Ratios are layered / independent (targets: bytes <= 0.7, build --all <= 0.7).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TEMPLATE))

from bench import image_bench  # noqa: E402
from tests import containers  # noqa: E402

BIN = Path(sys.executable).parent
PROJECT_NAME = "Fleet Bench"
RUNTIME_TIERS = ("base", "sniper", "hunter", "strategist")
MB = 1_000_000

# `invoke build` with every tier starting from the base image: the layering plan
# is replaced before invoke loads the tasks (tooling.images.build reads it through
# the module, so the replacement is what it calls).
INDEPENDENT = """
import sys
from tooling.images import layering
planned = layering.plan
layering.plan = lambda project, graph: {
    name: layering.Start(name, None, True) for name in planned(project, graph)
}
from invoke.main import program
program.run(["invoke", *sys.argv[1:]])
"""


@dataclass
class Blobs:
    layers: dict[str, dict[str, int]]  # image -> {layer digest: uncompressed bytes}
    base: set[str]

    def stored(self, with_base: bool) -> int:
        unique = {d: size for layers in self.layers.values() for d, size in layers.items()}
        return sum(size for d, size in unique.items() if with_base or d not in self.base)

    def pulled_onto(self, image: str, present: str) -> tuple[int, int]:
        """Layers and bytes `image` adds on a host that has `present`."""
        have = set(self.layers[present])
        new = {d: s for d, s in self.layers[image].items() if d not in have}
        return len(new), sum(new.values())


def manifest_layers(store: containers.PrivateStore, image: str) -> dict[str, int]:
    info = json.loads(store.buildah("inspect", "--type", "image", image).stdout)
    return {layer["digest"]: int(layer["size"]) for layer in json.loads(info["Manifest"])["layers"]}


def blobs(store: containers.PrivateStore, project: Path, base: str) -> Blobs:
    layers = {
        tier: manifest_layers(store, f"localhost/{project.name}:{tier}") for tier in RUNTIME_TIERS
    }
    return Blobs(layers, set(manifest_layers(store, base)))


def build_all(
    store: containers.PrivateStore, project: Path, base: str, script: Path | None
) -> float:
    """`invoke build --all` (layered), or the same with every tier independent; timed, cold."""
    options = ["build", "--all", "--engine", "buildah", "--base-image", base]
    if os.environ.get("SSL_CERT_FILE"):
        options += ["--ca-bundle", os.environ["SSL_CERT_FILE"]]
    command = [str(BIN / "invoke"), *options]
    if script is not None:
        command = [sys.executable, str(script), *options]
    env = {**store.env, "PYTHONPATH": str(project)}
    store.clear()
    start = time.perf_counter()
    image_bench.run(command, cwd=project, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="cold builds of each kind")
    arguments = parser.parse_args()
    os.environ.setdefault("STORAGE_DRIVER", "overlay")
    os.environ.setdefault("BUILDAH_ISOLATION", "chroot")
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"

    base = containers.ensure_base_image(image_bench.PYTHON_VERSION)
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    store = containers.PrivateStore(base)
    times: dict[str, list[float]] = {"independent": [], "layered": []}
    stored: dict[str, Blobs] = {}
    try:
        project = Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                output_dir=str(work),
                extra_context={"project_name": PROJECT_NAME},
            )
        )
        image_bench.run([str(BIN / "nox"), "-s", "lock"], cwd=project)
        image_bench.run([str(BIN / "nox"), "-s", "build"], cwd=project)
        script = work / "independent.py"
        script.write_text(INDEPENDENT)
        scripts = {"independent": script, "layered": None}
        for chosen in scripts.values():  # warm both download caches
            build_all(store, project, base, chosen)
        for _ in range(arguments.runs):  # interleaved, so neither gets a quieter machine
            for kind, chosen in scripts.items():
                times[kind].append(build_all(store, project, base, chosen))
                stored[kind] = blobs(store, project, base)
    finally:
        store.remove()
        shutil.rmtree(work, ignore_errors=True)

    before, after = stored["independent"], stored["layered"]
    print(
        f"fleet benchmark: buildah {os.environ['STORAGE_DRIVER']} storage, base {base}, "
        f"default tiers, one lock; MB = 10^6 bytes\n"
    )
    print("| measure | independent images | layered tiers | layered / independent (target) |")
    print("|---|---|---|---|")
    for label, with_base in (
        ("registry bytes, runtime tiers", True),
        ("the same, above the base image", False),
    ):
        old, new = before.stored(with_base), after.stored(with_base)
        print(f"| {label} | {old / MB:.1f} MB | {new / MB:.1f} MB | {new / old:.2f}x (<= 0.7) |")
    old_time, new_time = (
        statistics.median(times["independent"]),
        statistics.median(times["layered"]),
    )
    print(
        f"| `invoke build --all`, cold, median of {arguments.runs} | {old_time:.1f} s "
        f"| {new_time:.1f} s | {new_time / old_time:.2f}x (<= 0.7) |"
    )
    print()
    for kind, result in stored.items():
        count, size = result.pulled_onto("hunter", "sniper")
        print(
            f"{kind}: pulling hunter ({len(result.layers['hunter'])} layers) onto a host that "
            f"has sniper fetches {count} layer(s), {size / MB:.1f} MB"
        )
    for kind, samples in times.items():
        print(f"  {kind}: {', '.join(f'{s:.1f}' for s in samples)} s")


if __name__ == "__main__":
    main()
