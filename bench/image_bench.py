"""Benchmark the generated project's container images, tier by tier, in one run.

Usage: python bench/image_bench.py [--tiers sniper,hunter] [--runs N]
       python bench/image_bench.py --engines [--tiers hunter] [--runs N]
       python bench/image_bench.py --platforms [--tiers sniper] [--runs N]
       (inside the template's .venv, as root, with buildah; network for the locks)

With --engines it prints only the cold build time of each tier with buildah,
podman and docker, side by side in one run (interleaved, medians of --runs
builds each): buildah and podman each in a private store whose layer cache is
removed before every build, docker (a daemon that answers, else one started
and stopped here, as the tests do) after its image and regular build cache are
removed; every engine's download cache mount stays warm.

With --platforms it prints only the cold build time of each tier with buildah
for linux/amd64 and linux/arm64 side by side (interleaved, medians of --runs
builds each, the layer cache removed before every build, download caches
warm), on the tests' base index of both: on an amd64 machine the arm64 build
runs under qemu, so the ratio is the cost of emulation.

Bakes a project, locks it, and for each tier, in a private buildah store
holding only the base image:

* cold build, side by side with the first release: the first release's
  Dockerfile (bench/first-release.Dockerfile: pip in the build stage) and
  today's (uv, pinned and hash-checked) each build once to warm their
  download caches, then the store's layer cache is removed and each builds
  again, timed: no layer is reused, every download comes from the RUN cache
  mount. Both timings cover the wheel (`nox -s build`) and the image; today's
  is `invoke build` itself (lock check included). The ratio is today / first
  release (target <= 0.6 for hunter).
* reproducibility: the layer cache is removed once more and `invoke build`
  runs again; both cold builds must print the same image ID.
* size: the runtime image against the base image plus the tier's installed
  packages (the files of /opt/venv inside the image, less an empty venv made
  there with the same Python). The rest is the overhead the runtime stage
  adds (target <= 15 MB): the user, the app, the venv skeleton, tar headers.
  A fresh venv on the host with the same lock is printed as a cross-check.
* source-only rebuild: edit src/<package>/cli.py, run the same `invoke
  build` again (same store), and check that uv installed nothing (the
  dependency layer, the RUN that installs /opt/venv, came from the cache:
  being reproducible, a rerun would give the same digests) and, from the
  layer digests, that only the app layer changed.

The base image is the tests' local stand-in for python:3.11-slim (built from
Debian packages; see tests/containers.py). STORAGE_DRIVER defaults to overlay
and BUILDAH_ISOLATION to chroot. The private stores are removed at the end;
the caller's own store keeps only the cached base image.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TEMPLATE))

from tests import containers  # noqa: E402

BIN = Path(sys.executable).parent
PYTHON_VERSION = "3.11"
PROJECT_NAME = "Image Bench"  # its own image names, apart from the tests' my-service:*
MB = 1_000_000
OVERHEAD_TARGET_MB = 15
ARCHES = ("amd64", "arm64")  # --platforms: the native build beside the emulated one

# Runs inside the image: the bytes of the files (not directories) of /opt/venv
# and of an empty venv made by the same Python, as the host measure counts them.
VENV_SIZES = r"""
import json, os, subprocess, sys, tempfile
def files(root):
    total = 0
    for top, dirs, names in os.walk(root):
        total += sum(os.lstat(os.path.join(top, name)).st_size for name in names)
    return total
empty = os.path.join(tempfile.mkdtemp(), "venv")
subprocess.run([sys.executable, "-m", "venv", "--without-pip", empty], check=True)
print(json.dumps({"venv": files("/opt/venv"), "empty": files(empty)}))
"""


def run(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(
            f"benchmark step failed: {' '.join(command)}\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result


def file_bytes(root: Path) -> int:
    return sum(
        (Path(top) / name).lstat().st_size for top, _, names in os.walk(root) for name in names
    )


def host_packages(project: Path, tier: str, work: Path) -> int:
    """Bytes a tier's lock adds to a fresh venv on the host (same Python minor)."""
    empty, full = work / f"empty-{tier}", work / f"venv-{tier}"
    for venv in (empty, full):
        run([sys.executable, "-m", "venv", str(venv)])
    cert = os.environ.get("SSL_CERT_FILE")
    run(
        [
            str(full / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "--no-deps",
            "--only-binary=:all:",
            *(["--cert", cert] if cert else []),
            "-r",
            str(project / "requirements" / f"{tier}.txt"),
        ]
    )
    return file_bytes(full) - file_bytes(empty)


Store = containers.PrivateStore
FIRST_RELEASE = TEMPLATE / "bench" / "first-release.Dockerfile"


def first_release_dockerfile(work: Path, slug: str, dev_tier: str) -> Path:
    """The first release's Dockerfile (git show 7077fc8:...), rendered for this project."""
    text = FIRST_RELEASE.read_text()
    text = text.replace("{{ cookiecutter.project_slug }}", slug)
    text = text.replace("{{ cookiecutter.dev_tier }}", dev_tier)
    path = work / "first-release.Dockerfile"
    path.write_text(text)
    return path


def ca_secret() -> list[str]:
    cert = os.environ.get("SSL_CERT_FILE")
    return ["--secret", f"id=ca,src={cert}"] if cert else []


def first_release_build(
    store: Store, project: Path, tier: str, base: str, dockerfile: Path
) -> float:
    """The wheel, then the first release's Dockerfile (pip in the build stage), timed."""
    start = time.perf_counter()
    run([str(BIN / "nox"), "-s", "build"], cwd=project, env=store.env)
    store.buildah(
        "build",
        "--format",
        "docker",
        "--layers",
        "--file",
        str(dockerfile),
        "--tag",
        f"localhost/{project.name}:{tier}-first-release",
        "--build-arg",
        f"PYTHON_VERSION={PYTHON_VERSION}",
        "--build-arg",
        f"TIER={tier}",
        "--build-arg",
        f"BASE_IMAGE={base}",
        *ca_secret(),
        str(project),
    )
    return time.perf_counter() - start


def current_build(store: Store, build: list[str], project: Path) -> tuple[float, str]:
    """`invoke build` (lock check, wheel, image), timed; and the image ID it printed."""
    start = time.perf_counter()
    done = run(build, cwd=project, env=store.env)
    elapsed = time.perf_counter() - start
    shown = re.search(r"image ID ([0-9a-f]{64})", done.stdout)
    if not shown:
        raise SystemExit(f"`invoke build` printed no image ID:\n{done.stdout[-1000:]}")
    return elapsed, shown.group(1)


@dataclass
class Layers:
    sizes: dict[str, int]  # base, user, venv, app: bytes of each uncompressed layer tar
    digests: dict[str, str]
    total: int


def layers(store: Store, image: str, base_layers: int) -> Layers:
    info = json.loads(store.buildah("inspect", "--type", "image", image).stdout)
    manifest = json.loads(info["Manifest"])["layers"]
    history = [h for h in info["Docker"]["history"] if not h.get("empty_layer")]
    if len(history) != len(manifest):
        raise SystemExit(f"{image}: history and layers do not line up")
    sizes: dict[str, int] = {"base": 0, "user": 0, "venv": 0, "app": 0, "other": 0}
    digests: dict[str, str] = {}
    for index, (layer, step) in enumerate(zip(manifest, history, strict=True)):
        made_by = step.get("created_by", "")
        if index < base_layers:
            kind = "base"
        elif "useradd" in made_by:
            kind = "user"
        elif "uv pip install" in made_by or made_by.rstrip().endswith(" in /opt/venv/lock/"):
            kind = "venv"  # the tier's lock, and the environment installed from it
        elif "COPY" in made_by and made_by.rstrip().endswith(" in /"):
            kind = "app"
        else:
            kind = "other"
        sizes[kind] += int(layer["size"])
        digests[kind] = layer["digest"]
    return Layers(sizes, digests, sum(int(layer["size"]) for layer in manifest))


def venv_sizes(store: Store, image: str) -> dict[str, int]:
    container = store.buildah("from", "--pull-never", image).stdout.strip().splitlines()[-1]
    try:
        shown = store.buildah(
            "run", container, "--", "/opt/venv/bin/python", "-c", VENV_SIZES
        ).stdout
    finally:
        store.buildah("rm", container)
    sizes: dict[str, int] = json.loads(shown.strip().splitlines()[-1])
    return sizes


@dataclass
class TierResult:
    tier: str
    image: Layers
    base: int
    packages: int  # /opt/venv less an empty venv, inside the image
    venv_files: int
    empty_venv: int
    host_packages: int
    cold: list[float]  # today's Dockerfile, no layer cache, warm download cache
    cold_first_release: list[float]  # the first release's, the same way
    image_ids: list[str]  # of today's cold builds: equal when reproducible
    rebuild: float
    rebuilds: list[float]
    deps_reused: bool
    app_changed: bool


def bench_tier(
    project: Path, package: str, tier: str, base: str, runs: int, work: Path, peer: Path
) -> TierResult:
    store = Store(base)
    try:
        image = f"localhost/{project.name}:{tier}"
        build = [
            str(BIN / "invoke"),
            "build",
            "--tier",
            tier,
            "--engine",
            "buildah",
            "--base-image",
            base,
        ]
        if os.environ.get("SSL_CERT_FILE"):
            build += ["--ca-bundle", os.environ["SSL_CERT_FILE"]]
        base_info = json.loads(store.buildah("inspect", "--type", "image", base).stdout)
        base_manifest = json.loads(base_info["Manifest"])["layers"]
        base_size = sum(int(layer["size"]) for layer in base_manifest)

        # Warm both download caches (RUN cache mounts outlive the layer cache).
        first_release_build(store, project, tier, base, peer)
        current_build(store, build, project)
        cold, cold_first_release, image_ids = [], [], []
        for _ in range(2):  # interleaved, so neither gets a quieter machine
            store.clear()
            cold_first_release.append(first_release_build(store, project, tier, base, peer))
            store.clear()
            elapsed, image_id = current_build(store, build, project)
            cold.append(elapsed)
            image_ids.append(image_id)
        first = layers(store, image, len(base_manifest))
        sizes = venv_sizes(store, image)

        cli = project / "src" / package / "cli.py"
        samples, reused, changed = [], True, True
        before = first
        for index in range(runs):
            cli.write_text(cli.read_text() + f"# image bench: source-only edit {index}\n")
            start = time.perf_counter()
            done = run(build, cwd=project, env=store.env)
            samples.append(time.perf_counter() - start)
            after = layers(store, image, len(base_manifest))
            for kind in ("base", "user", "venv"):
                reused &= after.digests.get(kind) == before.digests.get(kind)
            # A reproducible build gives the same digests even when it ran the step
            # again: uv's own report says whether it installed anything.
            reused &= re.search(r"Installed \d+ packages? in", done.stdout + done.stderr) is None
            changed &= after.digests["app"] != before.digests["app"]
            before = after
        return TierResult(
            tier=tier,
            image=first,
            base=base_size,
            packages=sizes["venv"] - sizes["empty"],
            venv_files=sizes["venv"],
            empty_venv=sizes["empty"],
            host_packages=host_packages(project, tier, work),
            cold=cold,
            cold_first_release=cold_first_release,
            image_ids=image_ids,
            rebuild=statistics.median(samples),
            rebuilds=samples,
            deps_reused=reused,
            app_changed=changed,
        )
    finally:
        store.remove()


def cold_builds_per_engine(project: Path, tier: str, base: str, runs: int) -> dict[str, list]:
    """`invoke build --tier TIER` with each engine, no layer cache, warm download caches."""
    client = containers.docker_client_that_builds()
    if client is None:
        raise SystemExit("--engines needs a docker client with BuildKit (see tests/containers.py)")
    daemon = containers.DockerDaemon(client)
    daemon.start()
    stores = {"buildah": Store(base), "podman": Store(base, engine="podman")}
    docker = containers.Docker(daemon.env)
    image = f"{project.name}:{tier}"

    def clear(engine: str) -> dict[str, str]:
        if engine == "docker":
            docker.cli("image", "rm", "--force", image, check=False)
            docker.cli("builder", "prune", "--all", "--force", "--filter", "type=regular")
            return docker.env
        stores[engine].clear()
        return stores[engine].env

    build = [str(BIN / "invoke"), "build", "--tier", tier, "--base-image", base]
    if os.environ.get("SSL_CERT_FILE"):
        build += ["--ca-bundle", os.environ["SSL_CERT_FILE"]]
    times: dict[str, list] = {engine: [] for engine in containers.ENGINE_NAMES}
    try:
        docker.ensure_base(PYTHON_VERSION)
        for engine in times:  # warm each download cache
            run([*build, "--engine", engine], cwd=project, env=clear(engine))
        for _ in range(runs):  # interleaved, so no engine gets a quieter machine
            for engine in times:
                env = clear(engine)
                start = time.perf_counter()
                run([*build, "--engine", engine], cwd=project, env=env)
                times[engine].append(time.perf_counter() - start)
    finally:
        for store in stores.values():
            store.remove()
        docker.cli("image", "rm", "--force", image, check=False)
        daemon.stop()
    return times


def cold_builds_per_platform(project: Path, tier: str, runs: int) -> dict[str, list]:
    """`invoke build --tier TIER --platform P` with buildah for amd64 (native here) and arm64
    (under qemu), each from a cleared layer cache, warm download caches, on the base index."""
    images = [containers.ensure_base_image(PYTHON_VERSION, arch) for arch in ARCHES]
    store = Store(*images)
    index = containers.base_index_name(PYTHON_VERSION)

    def clear() -> dict[str, str]:
        store.clear()
        store.buildah("manifest", "create", index)
        for image in images:
            store.buildah("manifest", "add", index, image)
        return store.env

    build = [str(BIN / "invoke"), "build", "--tier", tier, "--engine", "buildah"]
    build += ["--base-image", index]
    if os.environ.get("SSL_CERT_FILE"):
        build += ["--ca-bundle", os.environ["SSL_CERT_FILE"]]
    times: dict[str, list] = {f"linux/{arch}": [] for arch in ARCHES}
    try:
        for platform in times:  # warm each platform's download cache
            run([*build, "--platform", platform], cwd=project, env=clear())
        for _ in range(runs):  # interleaved, so neither gets a quieter machine
            for platform in times:
                env = clear()
                start = time.perf_counter()
                run([*build, "--platform", platform], cwd=project, env=env)
                times[platform].append(time.perf_counter() - start)
    finally:
        store.remove()
    return times


def print_platform_table(times_per_tier: dict[str, dict[str, list]], runs: int) -> None:
    host = containers.host_arch()
    print(
        f"cold build per platform with buildah on this {host} machine (`invoke build`: lock "
        f"check, wheel, image), seconds, median of {runs}; a foreign platform runs under qemu\n"
    )
    print("| tier | linux/amd64 s | linux/arm64 s | arm64 / amd64 |")
    print("|---|---|---|---|")
    for tier, times in times_per_tier.items():
        medians = {platform: statistics.median(samples) for platform, samples in times.items()}
        amd64, arm64 = medians["linux/amd64"], medians["linux/arm64"]
        print(f"| {tier} | {amd64:.1f} | {arm64:.1f} | {arm64 / amd64:.2f}x |")
    for tier, times in times_per_tier.items():
        for platform, samples in times.items():
            print(f"  {tier} {platform}: {', '.join(f'{s:.1f}' for s in samples)} s")


def print_engine_table(times_per_tier: dict[str, dict[str, list]], runs: int) -> None:
    print(
        f"cold build per engine (`invoke build`: lock check, wheel, image), seconds, median of "
        f"{runs}; ratios against buildah in the same run\n"
    )
    print("| tier | buildah s | podman s | docker s | podman / buildah | docker / buildah |")
    print("|---|---|---|---|---|---|")
    for tier, times in times_per_tier.items():
        medians = {engine: statistics.median(samples) for engine, samples in times.items()}
        print(
            f"| {tier} | {medians['buildah']:.1f} | {medians['podman']:.1f} "
            f"| {medians['docker']:.1f} | {medians['podman'] / medians['buildah']:.2f}x "
            f"| {medians['docker'] / medians['buildah']:.2f}x |"
        )
    for tier, times in times_per_tier.items():
        for engine, samples in times.items():
            print(f"  {tier} {engine}: {', '.join(f'{s:.1f}' for s in samples)} s")


def megabytes(size: int) -> str:
    return f"{size / MB:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tiers", default="sniper,hunter", help="comma-separated tiers (default: sniper,hunter)"
    )
    parser.add_argument("--runs", type=int, default=3, help="source-only rebuilds per tier")
    parser.add_argument(
        "--engines", action="store_true", help="only cold builds with buildah, podman and docker"
    )
    parser.add_argument(
        "--platforms",
        action="store_true",
        help="only cold builds for linux/amd64 and linux/arm64 (emulated here) with buildah",
    )
    arguments = parser.parse_args()
    tiers = [name.strip() for name in arguments.tiers.split(",") if name.strip()]
    defaulted = "STORAGE_DRIVER" not in os.environ
    os.environ.setdefault("STORAGE_DRIVER", "overlay")
    os.environ.setdefault("BUILDAH_ISOLATION", "chroot")
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"

    base = containers.ensure_base_image(PYTHON_VERSION)
    work = Path(tempfile.mkdtemp(prefix="image-bench-"))
    results = []
    try:
        project = Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                output_dir=str(work),
                extra_context={"project_name": PROJECT_NAME, "python_version": PYTHON_VERSION},
            )
        )
        package = project.name.replace("-", "_")
        run([str(BIN / "nox"), "-s", "lock"], cwd=project)
        run([str(BIN / "nox"), "-s", "build"], cwd=project)  # warm the wheel session's venv
        if arguments.engines:
            per_engine = {
                tier: cold_builds_per_engine(project, tier, base, arguments.runs) for tier in tiers
            }
            print_engine_table(per_engine, arguments.runs)
            return
        if arguments.platforms:
            missing = containers.emulation_missing("arm64")
            if missing:
                raise SystemExit(f"--platforms runs arm64 programs here, but {missing}")
            per_platform = {
                tier: cold_builds_per_platform(project, tier, arguments.runs) for tier in tiers
            }
            print_platform_table(per_platform, arguments.runs)
            return
        peer = first_release_dockerfile(work, project.name, "dev")
        for tier in tiers:
            results.append(bench_tier(project, package, tier, base, arguments.runs, work, peer))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    driver = os.environ["STORAGE_DRIVER"]
    print(
        f"image benchmark: buildah {driver} storage"
        f"{' (the default here; set STORAGE_DRIVER to change it)' if defaulted else ''}, "
        f"{os.environ['BUILDAH_ISOLATION']} isolation, base {base} "
        f"(stand-in for python:{PYTHON_VERSION}-slim), MB = 10^6 bytes\n"
    )
    print(
        "| tier | cold build s, first release (pip) | cold build s, today (uv) "
        "| today / first release (hunter target <= 0.6) | image IDs of two cold builds "
        "| reproducible |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        peer, ours = statistics.median(r.cold_first_release), statistics.median(r.cold)
        same = "yes" if len(set(r.image_ids)) == 1 else "NO"
        print(
            f"| {r.tier} | {peer:.1f} | {ours:.1f} | {ours / peer:.2f}x "
            f"| {' '.join(i[:12] for i in r.image_ids)} | {same} |"
        )
    print()
    print(
        "| tier | image MB | base MB | tier packages MB | overhead MB (target <= 15) "
        "| source-only rebuild s | rebuild / cold | deps layer reused |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        overhead = r.image.total - r.base - r.packages
        verdict = "" if overhead <= OVERHEAD_TARGET_MB * MB else " (not met)"
        reused = (
            "yes"
            if r.deps_reused and r.app_changed
            else ("no" if not r.deps_reused else "yes, but the app layer did not change")
        )
        cold = statistics.median(r.cold)
        print(
            f"| {r.tier} | {megabytes(r.image.total)} | {megabytes(r.base)} "
            f"| {megabytes(r.packages)} | {megabytes(overhead)}{verdict} "
            f"| {r.rebuild:.1f} | {r.rebuild / cold:.2f}x | {reused} |"
        )
    print("\nwhere the overhead goes (layer tars, uncompressed; tier packages measured twice):\n")
    print(
        "| tier | user layer MB | venv layer MB | app layer MB | /opt/venv files MB "
        "| empty venv MB | venv layer - files MB | fresh host venv packages MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r.image.sizes
        print(
            f"| {r.tier} | {s['user'] / MB:.3f} | {megabytes(s['venv'])} | {s['app'] / MB:.3f} "
            f"| {megabytes(r.venv_files)} | {r.empty_venv / MB:.3f} "
            f"| {megabytes(s['venv'] - r.venv_files)} | {megabytes(r.host_packages)} |"
        )
    print(
        "\ncold: median of two builds each, interleaved, into a private store whose layer "
        "cache was removed, download caches warm;\ntoday = `invoke build` (lock check, wheel, "
        "image), first release = `nox -s build` + bench/first-release.Dockerfile;\n"
        "rebuild: median of "
        f"{arguments.runs} `invoke build` runs after editing src/<package>/cli.py; "
        "deps layer reused = uv installed nothing, the base, user and /opt/venv layer "
        "digests did not change, and the app layer did."
    )
    for r in results:
        print(
            f"  {r.tier}: cold today {', '.join(f'{s:.1f}' for s in r.cold)} s, "
            f"first release {', '.join(f'{s:.1f}' for s in r.cold_first_release)} s, "
            f"rebuilds {', '.join(f'{s:.1f}' for s in r.rebuilds)} s"
        )
        for image_id in r.image_ids:
            print(f"  {r.tier} cold build image ID {image_id}")


if __name__ == "__main__":
    main()
