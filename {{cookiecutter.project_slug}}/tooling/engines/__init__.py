"""Container engines behind one interface: build, inspect, run, push, load.

One module per engine (docker.py, podman.py, buildah.py), as pip-audit keeps one
module per vulnerability service. Everything else (tasks.py, the smoke test,
base image pins) speaks to an `Engine` and never builds an engine's command line
itself. The engine that built an image is recorded in dist/images/built.json, so
the smoke test checks an image where it was built, whatever else is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooling import ToolingError

ENGINE_NAMES = ("docker", "podman", "buildah")
BUILD_RECORD = Path("dist") / "images" / "built.json"

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


class ImageError(ToolingError):
    pass


def run_captured(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


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
    network: str | None = None  # e.g. host: RUN steps reach an index on this machine's loopback
    # Build arguments of the Dockerfile's LABEL lines (tooling/provenance.py), "" left out.
    label_args: Mapping[str, str] = field(default_factory=dict)

    def common_argv(self) -> list[str]:
        """The build arguments every engine passes the same way."""
        argv = ["--tag", self.tag]
        argv += ["--build-arg", f"SOURCE_DATE_EPOCH={self.source_date_epoch}"]
        argv += ["--build-arg", f"PYTHON_VERSION={self.python_version}"]
        argv += ["--build-arg", f"TIER={self.tier}"]
        for name, value in sorted(self.label_args.items()):
            argv += ["--build-arg", f"{name}={value}"] if value else []
        if self.base_image:
            argv += ["--build-arg", f"BASE_IMAGE={self.base_image}"]
        argv += self.secrets.argv()
        if self.target:
            argv += ["--target", self.target]
        if self.network:
            argv += ["--network", self.network]
        return argv


@dataclass(frozen=True)
class BuildPlan:
    """The command that builds an image, its extra environment, and a note for the user."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True)
class ImageFacts:
    """What the checks read of a local image, whichever engine holds it."""

    id: str
    entrypoint: list[str]
    healthcheck: list[str]
    user: str
    env: list[str]
    labels: dict[str, str]
    size: int
    digest: str  # the registry (manifest) digest, "" when the engine knows none


# Known refusals of an OCI runtime on hosts like CI containers, with the setting that fixes
# each. A refusal is reported as this one line, never as the command that was refused.
RUNTIME_REFUSALS: tuple[tuple[str, str, str], ...] = (
    (
        "buildah",
        r"cgroups in hybrid mode not supported",
        "buildah's OCI runtime (crun) refuses this host's hybrid cgroups: "
        "set BUILDAH_ISOLATION=chroot and run again",
    ),
    (
        "podman",
        r"cgroups in hybrid mode not supported",
        "podman's OCI runtime (crun) refuses this host's hybrid cgroups: "
        'set runtime = "runc" under [engine] in containers.conf',
    ),
    (
        "podman",
        r"(?i)(setrlimit|setting rlimit).*(operation not permitted)",
        "podman cannot raise the container's limits here (no CAP_SYS_RESOURCE): set "
        'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"] under [containers] '
        "in containers.conf",
    ),
    (
        "podman",
        r"(?i)subnet .* is already used",
        "podman's default network overlaps one of this host's: set default_subnet "
        '(for example "10.89.0.0/16") under [network] in containers.conf',
    ),
    (
        "docker",
        r"(?i)cannot connect to the docker daemon|docker daemon .* not running",
        "the docker daemon does not answer: start it (`sudo systemctl start docker`) "
        "or build with --engine podman or --engine buildah",
    ),
)


# How a registry (or the way to it) refuses a push or a pull, with what to do about it.
# A failure is reported as this one line, never with what the engine printed around it.
REGISTRY_FAILURES: tuple[tuple[str, str], ...] = (
    (
        r"(?i)connection refused|no such host|i/o timeout|network is unreachable|"
        r"no route to host|server misbehaving|connection reset",
        "the registry {host} does not answer",
    ),
    (
        r"(?i)server gave HTTP response to HTTPS client",
        "{host} speaks plain HTTP, not TLS: pass --insecure if that is intended "
        "(docker: list it under insecure-registries in /etc/docker/daemon.json)",
    ),
    (
        r"(?i)x509:|certificate signed by unknown|tls: ",
        "{host}'s TLS certificate is not trusted here: add its CA to the system's trust store",
    ),
    (
        r"(?i)unauthorized|authentication required|access to the resource is denied|"
        r"no basic auth credentials|denied:|forbidden|status 401|status 403",
        "{host} refused the credentials: log in with `{engine} login {host}` "
        "(or REGISTRY_AUTH_FILE for podman and buildah)",
    ),
    (
        r"(?i)manifest unknown|name unknown|not found|status 404",
        "{reference} is not in the registry",
    ),
)


def registry_failure(output: str, action: str, reference: str, engine: str) -> str:
    """One line for a failed push or pull: what refused it, else the engine's last line."""
    host = reference.split("/", 1)[0]
    for pattern, reason in REGISTRY_FAILURES:
        if re.search(pattern, output):
            return f"cannot {action} {reference}: " + reason.format(
                host=host, reference=reference, engine=engine
            )
    return f"cannot {action} {reference} with {engine}: {last_line(output)}"


class Engine:
    """One container engine; subclasses say how it does each step."""

    name = ""

    def __init__(self, env: Mapping[str, str], run: Runner = run_captured) -> None:
        self.env = dict(env)
        self.run = run

    def command(self, *args: str) -> list[str]:
        return [self.name, *args]

    # --- build -----------------------------------------------------------------------

    def plan_build(self, request: BuildRequest, context: Path) -> BuildPlan:
        raise NotImplementedError

    def build(self, request: BuildRequest, context: Path) -> str:
        """Build the image (its output shown as it goes) and return its image ID."""
        plan = self.plan_build(request, context)
        if plan.note:
            print(f"note: {plan.note}", file=sys.stderr, flush=True)
        code, output = stream(plan.argv, {**self.env, **plan.env})
        if code != 0:
            reason = self.explain(output)
            raise ImageError(
                f"building {request.tag} with {self.name} failed (exit {code})"
                + (f": {reason}" if reason else "; see its output above")
            )
        return self.finish_build(request.tag)

    def finish_build(self, image: str) -> str:
        """What runs after a successful build; returns the image ID."""
        return self.image_id(image)

    # --- inspect ---------------------------------------------------------------------

    def inspect(self, image: str) -> ImageFacts | None:
        """The image's facts, or None when this engine has no such image."""
        raise NotImplementedError

    def described(self, image: str, *command: str) -> dict[str, Any] | None:
        """The engine's JSON description of a local image (`command` IMAGE), or None."""
        result = self.run(self.command(*command, image))
        return parse_json(result.stdout, self.name, image) if result.returncode == 0 else None

    def facts(self, image: str) -> ImageFacts:
        found = self.inspect(image)
        if found is None:
            raise ImageError(
                f"image {image} not found by {self.name}: build it with `invoke build`"
            )
        return found

    def image_id(self, image: str) -> str:
        return self.facts(image).id

    # --- run, push, load -------------------------------------------------------------

    def run_in(self, image: str, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run argv (not through the entrypoint) in a throwaway container as the image's user.

        Nothing in it needs the network. A runtime that refuses the host is one line.
        """
        command = ["run", "--rm", "--pull", "never", "--network", "none"]
        result = self.run(self.command(*command, "--entrypoint", argv[0], image, *argv[1:]))
        self.refused(result)
        return result

    def refused(self, result: subprocess.CompletedProcess[str]) -> None:
        if result.returncode != 0:
            reason = self.explain(result.stderr + result.stdout)
            if reason:
                raise ImageError(reason)

    def push(self, image: str, destination: str) -> subprocess.CompletedProcess[str]:
        """Copy a local image to a transport reference (docker://HOST/NAME:TAG, dir:PATH, ...)."""
        return self.run(self.command("push", "--quiet", image, destination))

    def load(self, archive: Path) -> subprocess.CompletedProcess[str]:
        """Load an image from a docker-archive tar file."""
        return self.run(self.command("load", "--input", str(archive)))

    # --- registries ------------------------------------------------------------------

    def push_to_registry(self, image: str, reference: str, tls_verify: bool) -> str:
        """Push a local image to HOST/NAME:TAG; return the manifest digest the registry holds."""
        raise NotImplementedError

    def export_archive(self, image: str, archive: Path) -> None:
        """Write the image as a docker-archive tar file (for scanners)."""
        saved = self.push(image, f"docker-archive:{archive}:{image}")
        if saved.returncode != 0:
            raise ImageError(f"cannot export {image}: {last_line(saved.stderr)}")

    def explain(self, output: str) -> str | None:
        for engine, pattern, reason in RUNTIME_REFUSALS:
            if engine == self.name and re.search(pattern, output):
                return reason
        return None


def stream(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, str]:
    """Run argv with its output shown as it comes; return its exit code and that output."""
    try:
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as error:
        raise ImageError(f"cannot run {argv[0]}: {error.strerror}") from None
    kept: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        kept = [*kept[-199:], line]
    return process.wait(), "".join(kept)


def parse_json(text: str, engine: str, image: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ImageError(f"{engine} described {image} in a form this tool cannot read") from None
    found = data[0] if isinstance(data, list) and data else data
    if not isinstance(found, dict):
        raise ImageError(f"{engine} described {image} in a form this tool cannot read")
    return found


def healthcheck_test(config: Mapping[str, Any]) -> list[str]:
    test = (config.get("Healthcheck") or {}).get("Test") or []
    return [str(part) for part in test]


def engine_class(name: str) -> type[Engine]:
    from tooling.engines import buildah, docker, podman

    classes: dict[str, type[Engine]] = {
        "docker": docker.Docker,
        "podman": podman.Podman,
        "buildah": buildah.Buildah,
    }
    return classes[name]


def get(name: str, env: Mapping[str, str], run: Runner = run_captured) -> Engine:
    if name not in ENGINE_NAMES:
        raise ImageError(f"unknown container engine {name!r}: use one of {', '.join(ENGINE_NAMES)}")
    return engine_class(name)(env, run)


def docker_engine_answers(run: Runner = run_captured) -> bool:
    """The docker client alone is not enough: its daemon must answer."""
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
        if wanted not in ENGINE_NAMES:
            raise ImageError(
                f"unknown container engine {wanted!r}: use one of {', '.join(ENGINE_NAMES)}"
            )
        if which(wanted) is None:
            raise ImageError(f"container engine {wanted!r} was requested but is not installed")
        return wanted
    for name in present_engines(which, docker_answers):
        return name
    raise ImageError(
        "no container engine found: install docker, podman or buildah, "
        "or name one with --engine / CONTAINER_ENGINE"
    )


def present_engines(
    which: Callable[[str], str | None] = shutil.which,
    docker_answers: Callable[[], bool] = docker_engine_answers,
) -> list[str]:
    return [
        name
        for name in ENGINE_NAMES
        if which(name) is not None and (name != "docker" or docker_answers())
    ]


# --- which engine built which image ---------------------------------------------------


def read_build_record(root: Path) -> dict[str, dict[str, str]]:
    path = root / BUILD_RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_build(root: Path, image: str, engine: str, image_id: str, tier: str) -> None:
    record = read_build_record(root)
    record[image] = {"engine": engine, "image_id": image_id, "tier": tier}
    path = root / BUILD_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def locate(
    image: str,
    root: Path,
    requested: str | None,
    env: Mapping[str, str],
    which: Callable[[str], str | None] = shutil.which,
    docker_answers: Callable[[], bool] = docker_engine_answers,
    run: Runner = run_captured,
) -> Engine:
    """The engine holding `image`: --engine / CONTAINER_ENGINE, else the one that built it
    here, else the only engine present that has it."""
    wanted = requested or env.get("CONTAINER_ENGINE") or None
    if wanted:
        return get(choose_engine(wanted, env, which, docker_answers), env, run)
    built = read_build_record(root).get(image, {})
    if built.get("engine") in ENGINE_NAMES and which(built["engine"]) is not None:
        engine = get(built["engine"], env, run)
        found = engine.inspect(image)
        if found is not None and found.id == built.get("image_id"):
            return engine
    present = present_engines(which, docker_answers)
    holding = [name for name in present if get(name, env, run).inspect(image) is not None]
    if len(holding) == 1:
        return get(holding[0], env, run)
    if not holding:
        searched = ", ".join(present) or "no engine (none is installed)"
        raise ImageError(f"image {image} not found by {searched}: build it with `invoke build`")
    raise ImageError(
        f"image {image} is in {' and '.join(holding)}, and this project did not build it: "
        "choose one with --engine"
    )
