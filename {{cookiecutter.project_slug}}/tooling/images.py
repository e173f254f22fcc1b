"""Container images per tier: engine choice, build, base image pins, and the smoke checks.

One Dockerfile serves every tier (`--build-arg TIER=...`); the Python version
comes from .python-version as `--build-arg PYTHON_VERSION=...`, so the image
and the locks cannot disagree. A CA bundle, a pip.conf or a .netrc with
credentials reaches the build only as a build secret, never as an argument or
a layer.

Images are reproducible: every timestamp comes from SOURCE_DATE_EPOCH (the
last commit's time), the base image is pinned by digest in base-images.lock,
and the smoke test proves an image holds exactly its tier's lock.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooling import ToolingError, lockfile
from tooling.project import Project
from tooling.smoke import check_environment, run_captured

ENGINES = ("docker", "podman", "buildah")
DEFAULT_BUDGET_MB = 500
BASE_IMAGES = "base-images.lock"
UV_REQUIREMENTS = Path("dist") / "uv-requirements.txt"
DIGEST = re.compile(r"^(?P<reference>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")

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
class Secrets:
    """Files passed to the build as secrets (ids ca, pipconf, netrc)."""

    ca_bundle: Path | None = None
    pip_conf: Path | None = None
    netrc: Path | None = None

    def argv(self) -> list[str]:
        argv = []
        for secret_id, path in (
            ("ca", self.ca_bundle),
            ("pipconf", self.pip_conf),
            ("netrc", self.netrc),
        ):
            if path:
                argv += ["--secret", f"id={secret_id},src={path}"]
        return argv


@dataclass(frozen=True)
class BuildRequest:
    tier: str
    tag: str
    python_version: str
    source_date_epoch: str
    base_image: str | None = None
    secrets: Secrets = Secrets()
    target: str | None = None


def secret_files(
    ca_bundle: str | None, pip_conf: str | None, netrc: str | None, env: Mapping[str, str]
) -> Secrets:
    """The CA bundle (--ca-bundle, else SSL_CERT_FILE), pip.conf and .netrc to pass as secrets."""
    ca = ca_bundle or env.get("SSL_CERT_FILE") or None
    paths = []
    for option, value in (("--ca-bundle", ca), ("--pip-conf", pip_conf), ("--netrc", netrc)):
        if value and not Path(value).is_file():
            raise ImageError(f"{option} {value}: no such file")
        paths.append(Path(value) if value else None)
    return Secrets(*paths)


def build_argv(
    engine: str, request: BuildRequest, context: Path, env: Mapping[str, str]
) -> list[str]:
    epoch = request.source_date_epoch
    argv = [*engine_prefix(engine, env), "build"]
    if engine in ("podman", "buildah"):
        argv += ["--format", "docker", "--layers"]  # OCI images drop HEALTHCHECK
        argv += ["--timestamp", epoch]  # the image, its history and every file in its layers
        argv += ["--jobs", "2"]  # the app stage builds while uv installs the environment
    else:
        # BuildKit takes the epoch from the build argument; rewrite-timestamp clamps the
        # files of the layers too.
        argv += ["--output", "type=docker,rewrite-timestamp=true"]
    argv += ["--tag", request.tag]
    argv += ["--build-arg", f"SOURCE_DATE_EPOCH={epoch}"]
    argv += ["--build-arg", f"PYTHON_VERSION={request.python_version}"]
    argv += ["--build-arg", f"TIER={request.tier}"]
    if request.base_image:
        argv += ["--build-arg", f"BASE_IMAGE={request.base_image}"]
    argv += request.secrets.argv()
    if request.target:
        argv += ["--target", request.target]
    return [*argv, str(context)]


def build_env(engine: str, env: Mapping[str, str], source_date_epoch: str) -> dict[str, str]:
    merged = dict(env)
    if engine == "docker":
        merged["DOCKER_BUILDKIT"] = "1"  # build secrets and cache mounts need BuildKit
        merged["SOURCE_DATE_EPOCH"] = source_date_epoch
    return merged


def uv_requirements(project: Project) -> str:
    """uv's pin and hashes from the dev tier's lock: what the image's environment stage installs."""
    source = f"requirements/{project.dev_tier}.txt"
    lock = lockfile.read(project.requirements_dir / f"{project.dev_tier}.txt", source)
    for pin in lock.pins:
        if pin.name == "uv":
            if not pin.hashes:
                raise ImageError(f"{source} pins uv without hashes: run `nox -s lock`")
            return "\n".join(pin.lines) + "\n"
    raise ImageError(
        f"{source} does not pin uv, which the image build installs: "
        f"add uv to requirements/{project.dev_tier}.in and run `nox -s lock`"
    )


def write_uv_requirements(project: Project) -> Path:
    """dist/uv-requirements.txt, a small file of its own so no tier's layers depend on the dev lock."""
    path = project.root / UV_REQUIREMENTS
    path.parent.mkdir(exist_ok=True)
    text = uv_requirements(project)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


# --- reproducible image IDs -----------------------------------------------------------


def image_facts(engine: str, image: str, env: Mapping[str, str], run: Runner) -> dict[str, Any]:
    """The engine's JSON description of a local image."""
    prefix = engine_prefix(engine, env)
    if engine == "buildah":
        result = run([*prefix, "inspect", "--type", "image", image])
    else:
        result = run([*prefix, "image", "inspect", image])
    if result.returncode != 0:
        raise ImageError(f"{engine} has no image {image}: {result.stderr.strip()[-200:]}")
    data = json.loads(result.stdout)
    facts: dict[str, Any] = data[0] if isinstance(data, list) else data
    return facts


def image_id(engine: str, image: str, env: Mapping[str, str], run: Runner = run_captured) -> str:
    facts = image_facts(engine, image, env, run)
    found = facts.get("FromImageID") or facts.get("Id") or ""
    return str(found).removeprefix("sha256:")


def reproducible_config(config: dict[str, Any]) -> dict[str, Any]:
    """A Docker-format image config without what a build container makes random.

    Older buildah and podman releases record the build container's ID and host
    name, and with --layers the IDs of intermediate images, even with
    --timestamp; newer ones leave them out. Nothing else changes.
    """
    fixed = dict(config)
    fixed.pop("container", None)
    fixed.pop("parent", None)
    for key in ("config", "container_config"):
        if isinstance(fixed.get(key), dict):
            fixed[key] = {**fixed[key], "Hostname": ""}
    history = []
    for entry in fixed.get("history") or []:
        entry = dict(entry)
        if re.fullmatch(r"FROM [0-9a-f]{12,64}", str(entry.get("comment", ""))):
            del entry["comment"]
        history.append(entry)
    if history:
        fixed["history"] = history
    return fixed


def stored_manifest_and_config(
    engine: str, image: str, layout: Path, env: Mapping[str, str], run: Runner
) -> tuple[str, str]:
    """The image's manifest and config exactly as the engine stores them.

    buildah shows both byte for byte; podman does not, so its image is pushed
    to a dir: layout, layers too.
    """
    if engine == "buildah":
        facts = image_facts(engine, image, env, run)
        return str(facts["Manifest"]), str(facts["Config"])
    prefix = engine_prefix(engine, env)
    pushed = run([*prefix, "push", "--quiet", image, f"dir:{layout}"])
    if pushed.returncode != 0:
        raise ImageError(f"cannot export {image} to fix its config: {pushed.stderr.strip()}")
    manifest = (layout / "manifest.json").read_text(encoding="utf-8")
    digest = json.loads(manifest)["config"]["digest"]
    config = (layout / digest.removeprefix("sha256:")).read_text(encoding="utf-8")
    (layout / digest.removeprefix("sha256:")).unlink()
    return manifest, config


def make_reproducible(
    engine: str, image: str, env: Mapping[str, str], run: Runner = run_captured
) -> str:
    """Rewrite a buildah/podman image's config without its random fields; return the image ID.

    Only the config changes, so only it and the manifest are written to a dir:
    layout; pulling that back finds every layer already in the store by its
    digest and copies none of them.
    """
    if engine == "docker":
        return image_id(engine, image, env, run)
    prefix = engine_prefix(engine, env)
    old_id = image_id(engine, image, env, run)
    with tempfile.TemporaryDirectory(prefix="image-") as tmp:
        layout = Path(tmp) / "image"
        layout.mkdir()
        manifest_text, config_text = stored_manifest_and_config(engine, image, layout, env, run)
        config = json.loads(config_text)
        fixed = reproducible_config(config)
        if fixed == config:
            return old_id
        blob = json.dumps(fixed, separators=(",", ":"), sort_keys=True).encode()
        new_digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        manifest = json.loads(manifest_text)
        manifest["config"] = {**manifest["config"], "digest": new_digest, "size": len(blob)}
        (layout / "version").write_text("Directory Transport Version: 1.1\n", encoding="utf-8")
        (layout / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        (layout / new_digest.removeprefix("sha256:")).write_bytes(blob)
        pulled = run([*prefix, "pull", "--quiet", f"dir:{layout}"])
        if pulled.returncode != 0:
            raise ImageError(f"cannot store the fixed {image}: {pulled.stderr.strip()}")
    new_id = new_digest.removeprefix("sha256:")
    # The original stays, untagged: it is the layer cache of the last build step, and
    # removing it would also remove the intermediate images it was built from
    # (the cached environment among them).
    tagged = run([*prefix, "tag", new_id, image])
    if tagged.returncode != 0:
        raise ImageError(f"cannot tag the fixed {image}: {tagged.stderr.strip()}")
    return new_id


# --- base images pinned by digest -------------------------------------------------------


def default_base_image(project: Project) -> str:
    return f"python:{project.python_version}-slim"


def tier_base_image(project: Project, tier: str) -> str:
    """The tier's base image as written: [tool.lockstep] base-images, else python:<version>-slim."""
    named = project.settings.get("base-images", {})
    return str(named.get(tier) or default_base_image(project))


def read_base_pins(root: Path) -> dict[str, str]:
    """base-images.lock: reference -> reference@sha256:digest."""
    path = root / BASE_IMAGES
    if not path.is_file():
        return {}
    pins = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = DIGEST.match(line)
        if not match:
            raise ImageError(
                f"{BASE_IMAGES}:{number}: {line!r} is not IMAGE@sha256:DIGEST; "
                "rewrite it with `invoke base-image --refresh`"
            )
        pins[match["reference"]] = line
    return pins


def write_base_pins(root: Path, pins: Mapping[str, str]) -> None:
    lines = [
        "# Base images pinned by digest; `invoke build` uses these.",
        "# Written by `invoke base-image --refresh`; `nox -s lock_check` checks the Python tags.",
        *(pins[reference] for reference in sorted(pins)),
    ]
    path = root / BASE_IMAGES
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    temporary.replace(path)


def base_image_for_build(
    project: Project, tier: str, override: str | None
) -> tuple[str, str | None]:
    """(image to build from, a note when it is not pinned). --base-image / BASE_IMAGE win."""
    if override:
        return override, None
    reference = tier_base_image(project, tier)
    if DIGEST.match(reference):
        return reference, None
    pinned = read_base_pins(project.root).get(reference)
    if pinned:
        return pinned, None
    return reference, (
        f"base image {reference} is not pinned in {BASE_IMAGES}: "
        "run `invoke base-image --refresh` to pin its digest"
    )


def base_image_problems(project: Project) -> list[str]:
    """Pins of python:<version> images whose version is not .python-version's."""
    try:
        pins = read_base_pins(project.root)
    except ImageError as error:
        return [str(error)]
    problems = []
    for reference in pins:
        match = re.match(r"^(?:.*/)?python:(\d+\.\d+(?:\.\d+)?)", reference)
        if match and match.group(1) != project.python_version:
            problems.append(
                f"{BASE_IMAGES} pins {reference} but .python-version says "
                f"{project.python_version}: run `invoke base-image --refresh`"
            )
    return problems


def resolve_digest(
    engine: str, reference: str, env: Mapping[str, str], pull: bool, run: Runner = run_captured
) -> str:
    """reference@sha256:... of the image the engine has (pulled first unless pull=False)."""
    prefix = engine_prefix(engine, env)
    if pull:
        pulled = run([*prefix, "pull", "--quiet", reference])
        if pulled.returncode != 0:
            detail = (pulled.stderr.strip().splitlines() or ["no output"])[-1]
            raise ImageError(
                f"{engine} cannot pull {reference} ({detail}); "
                "use --local to pin the copy this machine already has"
            )
    try:
        facts = image_facts(engine, reference, env, run)
    except ImageError:
        facts = {}
    digest = str(facts.get("FromImageDigest") or facts.get("Digest") or "")
    if not digest and facts.get("RepoDigests"):  # docker
        digest = str(facts["RepoDigests"][0]).rpartition("@")[2]
    if not digest.startswith("sha256:"):
        raise ImageError(f"{engine} has no image {reference} with a digest: pull it first")
    return f"{reference}@{digest}"


def refresh_base_pins(
    project: Project,
    tiers: Sequence[str],
    engine: str,
    env: Mapping[str, str],
    pull: bool,
    run: Runner = run_captured,
) -> dict[str, str]:
    """Pin every tier's base image by digest in base-images.lock; return the new pins."""
    references = sorted({tier_base_image(project, tier) for tier in tiers})
    pins = {
        reference: resolve_digest(engine, reference, env, pull, run)
        for reference in references
        if not DIGEST.match(reference)
    }
    write_base_pins(project.root, pins)
    return pins


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
        result = run([*prefix, "run", container, "--", *argv])
        if not result.stdout and not result.stderr:
            # buildah 1.28 (chroot isolation) now and then loses a run's whole output;
            # every command run here prints something and only reads, so ask once more.
            result = run([*prefix, "run", container, "--", *argv])
        return result
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
    """Check a built image; return one line per check passed, raise naming what failed."""
    facts = inspect(engine, image, env, run)
    # First, so a tampered image is named for what changed, not for what broke.
    passed = check_environment(
        "/opt/venv/bin/python",
        lambda argv: run_in_image(engine, image, argv, env, run),
        image,
        project.requirements_dir / f"{tier}.txt",
        f"requirements/{tier}.txt",
        project.python_version,
        (project.name, version),
    )
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
