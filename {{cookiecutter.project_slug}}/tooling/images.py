"""Container images per tier: engine choice, build, and the smoke checks.

One Dockerfile serves every tier (`--build-arg TIER=...`); the Python version
comes from .python-version as `--build-arg PYTHON_VERSION=...`, so the image
and the locks cannot disagree. A CA bundle or a pip.conf with credentials
reaches the build only as a build secret, never as an argument or a layer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooling import ToolingError
from tooling.project import Project

ENGINES = ("docker", "podman", "buildah")
DEFAULT_BUDGET_MB = 500

# Runs inside the image: import every top-level module each installed
# distribution provides, and report the user id.
IMPORT_CHECK = r"""
import importlib, importlib.metadata as md, json, os
names = set()
for dist in md.distributions():
    top = dist.read_text("top_level.txt")
    if top:
        names.update(line.strip() for line in top.splitlines())
    else:
        for file in dist.files or []:
            first = file.parts[0]
            if first.endswith((".dist-info", ".data")) or first in ("..", "bin", "__pycache__"):
                continue
            if len(file.parts) > 1 or first.endswith(".py"):
                names.add(first.removesuffix(".py"))
names = sorted(n for n in names if n and n.isidentifier() and not n.startswith("_"))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:
        failed[name] = f"{type(error).__name__}: {error}"
print(json.dumps({"uid": os.getuid(), "imported": names, "failed": failed}))
"""

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


class ImageError(ToolingError):
    pass


def run_captured(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def docker_engine_answers(run: Runner = run_captured) -> bool:
    """The docker client alone is not enough: its engine must answer."""
    try:
        return run(["docker", "info"]).returncode == 0
    except OSError:
        return False


def choose_engine(
    requested: str | None,
    env: Mapping[str, str],
    which: Callable[[str], str | None] = shutil.which,
    docker_answers: Callable[[], bool] = docker_engine_answers,
) -> str:
    """--engine, else CONTAINER_ENGINE, else the first of docker, podman, buildah that works."""
    wanted = requested or env.get("CONTAINER_ENGINE") or None
    if wanted:
        if wanted not in ENGINES:
            raise ImageError(
                f"unknown container engine {wanted!r}: use one of {', '.join(ENGINES)}"
            )
        if which(wanted) is None:
            raise ImageError(f"container engine {wanted!r} was requested but is not installed")
        return wanted
    for engine in ENGINES:
        if which(engine) is None:
            continue
        if engine == "docker" and not docker_answers():
            continue
        return engine
    raise ImageError(
        "no container engine found: install docker, podman or buildah, "
        "or name one with --engine / CONTAINER_ENGINE"
    )


def engine_prefix(engine: str, env: Mapping[str, str]) -> list[str]:
    # Older buildah releases ignore STORAGE_DRIVER from the environment.
    if engine == "buildah" and env.get("STORAGE_DRIVER"):
        return ["buildah", "--storage-driver", env["STORAGE_DRIVER"]]
    return [engine]


def image_name(project_name: str, tier: str) -> str:
    return f"{project_name}:{tier}"


@dataclass(frozen=True)
class BuildRequest:
    tier: str
    tag: str
    python_version: str
    base_image: str | None = None
    ca_bundle: Path | None = None
    pip_conf: Path | None = None
    target: str | None = None


def secret_files(
    ca_bundle: str | None, pip_conf: str | None, env: Mapping[str, str]
) -> tuple[Path | None, Path | None]:
    """The CA bundle (--ca-bundle, else SSL_CERT_FILE) and pip.conf to pass as secrets."""
    ca = ca_bundle or env.get("SSL_CERT_FILE") or None
    paths = []
    for option, value in (("--ca-bundle", ca), ("--pip-conf", pip_conf)):
        if value and not Path(value).is_file():
            raise ImageError(f"{option} {value}: no such file")
        paths.append(Path(value) if value else None)
    return paths[0], paths[1]


def build_argv(
    engine: str, request: BuildRequest, context: Path, env: Mapping[str, str]
) -> list[str]:
    argv = [*engine_prefix(engine, env), "build"]
    if engine in ("podman", "buildah"):
        argv += ["--format", "docker", "--layers"]  # OCI images drop HEALTHCHECK
    argv += ["--tag", request.tag]
    argv += ["--build-arg", f"PYTHON_VERSION={request.python_version}"]
    argv += ["--build-arg", f"TIER={request.tier}"]
    if request.base_image:
        argv += ["--build-arg", f"BASE_IMAGE={request.base_image}"]
    if request.ca_bundle:
        argv += ["--secret", f"id=ca,src={request.ca_bundle}"]
    if request.pip_conf:
        argv += ["--secret", f"id=pipconf,src={request.pip_conf}"]
    if request.target:
        argv += ["--target", request.target]
    return [*argv, str(context)]


def build_env(engine: str, env: Mapping[str, str]) -> dict[str, str]:
    merged = dict(env)
    if engine == "docker":
        merged["DOCKER_BUILDKIT"] = "1"  # build secrets and cache mounts need BuildKit
    return merged


# --- looking into a built image -------------------------------------------------------


def inspect(engine: str, image: str, env: Mapping[str, str], run: Runner) -> dict[str, Any]:
    """Entrypoint, healthcheck, user and size (bytes) of a local image."""
    prefix = engine_prefix(engine, env)
    if engine == "buildah":
        result = run([*prefix, "inspect", "--type", "image", image])
        if result.returncode != 0:
            raise ImageError(f"image {image} not found by buildah: build it with `invoke build`")
        data = json.loads(result.stdout)
        config = (data.get("Docker") or {}).get("config") or {}
        layers = json.loads(data["Manifest"]).get("layers", [])
        size = sum(int(layer["size"]) for layer in layers)
    else:
        result = run([*prefix, "image", "inspect", image])
        if result.returncode != 0:
            raise ImageError(f"image {image} not found by {engine}: build it with `invoke build`")
        data = json.loads(result.stdout)[0]
        config, size = data.get("Config") or {}, int(data.get("Size", 0))
    return {
        "entrypoint": config.get("Entrypoint") or [],
        "healthcheck": (config.get("Healthcheck") or {}).get("Test") or [],
        "user": config.get("User", ""),
        "size": size,
    }


def run_in_image(
    engine: str, image: str, argv: Sequence[str], env: Mapping[str, str], run: Runner
) -> subprocess.CompletedProcess[str]:
    """Run argv (not through the entrypoint) in a throwaway container, as the image's user."""
    prefix = engine_prefix(engine, env)
    if engine != "buildah":
        return run([*prefix, "run", "--rm", "--entrypoint", argv[0], image, *argv[1:]])
    created = run([*prefix, "from", "--pull-never", image])
    if created.returncode != 0:
        raise ImageError(f"cannot start a container from {image}: {created.stderr.strip()}")
    container = created.stdout.strip().splitlines()[-1]
    try:
        return run([*prefix, "run", container, "--", *argv])
    finally:
        run([*prefix, "rm", container])


def budget_mb(project: Project, tier: str) -> int:
    budgets = project.settings.get("image-budget-mb", {})
    return int(budgets.get(tier, DEFAULT_BUDGET_MB))


def smoke_image(
    engine: str,
    image: str,
    tier: str,
    project: Project,
    version: str,
    env: Mapping[str, str],
    run: Runner = run_captured,
) -> list[str]:
    """Check a built image; return one line per check passed, raise on the first failure."""
    facts = inspect(engine, image, env, run)
    passed = []
    entrypoint = list(facts["entrypoint"])
    if not entrypoint:
        raise ImageError(f"{image} has no ENTRYPOINT")
    shown = run_in_image(engine, image, [*entrypoint, "--version"], env, run)
    if shown.returncode != 0 or version not in shown.stdout:
        detail = shown.stdout.strip() or shown.stderr.strip()[-300:]
        raise ImageError(f"{image}: --version did not print {version}: {detail!r}")
    passed.append(f"--version: {shown.stdout.strip()}")

    test = list(facts["healthcheck"])
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        raise ImageError(f"{image} has no HEALTHCHECK (build with --format docker)")
    command = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
    health = run_in_image(engine, image, command, env, run)
    if health.returncode != 0:
        raise ImageError(f"{image}: the HEALTHCHECK failed: {health.stdout.strip()}")
    passed.append(f"HEALTHCHECK {' '.join(command)}: exit 0")

    checked = run_in_image(engine, image, ["/opt/venv/bin/python", "-c", IMPORT_CHECK], env, run)
    try:
        report = json.loads(checked.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise ImageError(
            f"{image}: the import check did not run: {checked.stderr.strip()}"
        ) from None
    if report["failed"]:
        failures = "; ".join(f"{name} ({why})" for name, why in report["failed"].items())
        raise ImageError(f"{image}: modules that do not import: {failures}")
    passed.append(f"imports: {len(report['imported'])} top-level modules")
    if report["uid"] != 1000:
        raise ImageError(f"{image}: runs as uid {report['uid']}, expected 1000")
    passed.append("user: uid 1000")

    size_mb = facts["size"] / 1_000_000
    budget = budget_mb(project, tier)
    if size_mb > budget:
        raise ImageError(
            f"{image} is {size_mb:.0f} MB, over its {budget} MB budget "
            f"([tool.lockstep.image-budget-mb] {tier} in pyproject.toml)"
        )
    passed.append(f"size: {size_mb:.0f} MB of a {budget} MB budget")
    return passed
