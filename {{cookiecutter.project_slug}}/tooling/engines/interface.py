"""The interface every engine implements, and what the checks read of an image."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooling import ToolingError
from tooling.engines.refusals import RUNTIME_REFUSALS, last_line

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


class ImageError(ToolingError):
    pass


def run_captured(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


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
    # Build arguments of the Dockerfile's LABEL lines (tooling/images/provenance.py), "" left out.
    label_args: Mapping[str, str] = field(default_factory=dict)
    # Layered tiers (tooling/images/layering.py): the parent tier's environment image this
    # one starts from (None: the base image), and whether it adds a layer ("installed").
    environment_base: str | None = None
    environment: str | None = None
    platform: str | None = None  # os/arch to build for (None: the engine's own)

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
        if self.environment_base:
            argv += ["--build-arg", f"ENVIRONMENT_BASE={self.environment_base}"]
        if self.environment:
            argv += ["--build-arg", f"ENVIRONMENT={self.environment}"]
        argv += self.secrets.argv()
        if self.target:
            argv += ["--target", self.target]
        if self.network:
            argv += ["--network", self.network]
        if self.platform:
            argv += ["--platform", self.platform]
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


class Engine:
    """One container engine; subclasses say how it does each step."""

    name = ""

    def __init__(self, env: Mapping[str, str], run: Runner = run_captured) -> None:
        self.env = dict(env)
        self.run = run
        self.notes_shown: set[str] = set()  # one note per engine, however many images it builds

    def command(self, *args: str) -> list[str]:
        return [self.name, *args]

    # --- build -----------------------------------------------------------------------

    def plan_build(self, request: BuildRequest, context: Path) -> BuildPlan:
        raise NotImplementedError

    def build(self, request: BuildRequest, context: Path) -> str:
        """Build the image (its output shown as it goes) and return its image ID."""
        plan = self.plan_build(request, context)
        if plan.note and plan.note not in self.notes_shown:
            print(f"note: {plan.note}", file=sys.stderr, flush=True)
            self.notes_shown.add(plan.note)
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

    # --- several platforms -----------------------------------------------------------

    def several_platforms_problem(self) -> str | None:
        """Why this engine cannot build one tier for several platforms (None: it can)."""
        return None

    def make_index(self, index: str, image_ids: Sequence[str]) -> None:
        """A local manifest list `index` of the images `image_ids` (one per platform),
        replacing any."""
        raise NotImplementedError

    def push_index(self, index: str, reference: str, tls_verify: bool) -> str:
        """Push the manifest list and every image in it; return the index digest."""
        raise NotImplementedError

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
