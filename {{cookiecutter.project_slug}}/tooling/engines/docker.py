"""docker: always BuildKit (RUN --mount and build secrets need it), in the form the client has.

- with the buildx plugin: `docker buildx build`, and on Docker Engine 26 or later
  (BuildKit 0.13+) `rewrite-timestamp=true`, which clamps every file's time to
  SOURCE_DATE_EPOCH, so two cold builds give one image ID;
- a 20.x client without buildx: its built-in BuildKit (`DOCKER_BUILDKIT=1 docker
  build`); the build works, but its image IDs differ between builds;
- a 23+ client without buildx cannot use BuildKit at all: one line says what to install.

Plain-HTTP registries other than loopback ones are the daemon's setting
(insecure-registries), not a flag.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tooling.engines.interface import (
    BuildPlan,
    BuildRequest,
    Engine,
    ImageError,
    ImageFacts,
    healthcheck_test,
)
from tooling.engines.refusals import last_line, registry_failure

REWRITE_TIMESTAMP_SINCE = 26  # Docker Engine 26 ships BuildKit 0.13
NOT_REPRODUCIBLE = (
    "image IDs differ between builds of one commit; Docker Engine "
    f"{REWRITE_TIMESTAMP_SINCE}+ with the buildx plugin, podman or buildah give reproducible IDs"
)


def major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def registry_digest(image: str, repo_digests: Sequence[str]) -> str:
    """The manifest digest docker knows for `image`'s repository ("" when none).

    An image pushed to or pulled from several repositories has one digest for each.
    """
    name = image.partition("@")[0]
    repository = name.rpartition(":")[0] if ":" in name.rpartition("/")[2] else name
    for entry in repo_digests:
        pulled_as, _, digest = entry.rpartition("@")
        if full_name(pulled_as) == full_name(repository):
            return digest
    return repo_digests[0].rpartition("@")[2] if repo_digests else ""


def full_name(repository: str) -> str:
    """docker.io/library/python for python, as docker itself expands short names."""
    first, _, rest = repository.partition("/")
    if not rest:
        return f"docker.io/library/{repository}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{repository}"
    return repository


class Docker(Engine):
    name = "docker"

    def version(self, part: str) -> str:
        """The Client or Server version ("" when unknown); the client's shows without a daemon."""
        shown = self.run(self.command("version", "--format", "{{." + part + ".Version}}"))
        return shown.stdout.strip()

    def several_platforms_problem(self) -> str | None:
        return (
            "docker builds one platform at a time here: build several platforms with "
            "--engine buildah or --engine podman (manifest lists), or name one with --platform"
        )

    def has_buildx(self) -> bool:
        return self.run(self.command("buildx", "version")).returncode == 0

    def plan_build(self, request: BuildRequest, context: Path) -> BuildPlan:
        env = {"DOCKER_BUILDKIT": "1", "SOURCE_DATE_EPOCH": request.source_date_epoch}
        client_version = self.version("Client")
        if self.has_buildx():
            server_version = self.version("Server")
            if not server_version:
                raise ImageError(
                    "the docker daemon does not answer: start it, "
                    "or build with --engine podman or --engine buildah"
                )
            argv = self.command("buildx", "build")
            if major(server_version) >= REWRITE_TIMESTAMP_SINCE:
                argv += ["--output", "type=docker,rewrite-timestamp=true"]
                note = None
            else:
                argv += ["--load"]
                note = f"Docker Engine {server_version} cannot rewrite layer timestamps: " + (
                    NOT_REPRODUCIBLE
                )
        elif client_version and major(client_version) < 23:
            argv = self.command("build")
            note = f"docker {client_version} builds with its built-in BuildKit, which cannot "
            note += "rewrite layer timestamps: " + NOT_REPRODUCIBLE
        else:
            shown = f"docker {client_version}" if client_version else "this docker client"
            raise ImageError(
                f"{shown} needs the buildx plugin to build with BuildKit (RUN --mount, build "
                "secrets) and has none: install it (package docker-buildx-plugin), "
                "or build with --engine podman or --engine buildah"
            )
        return BuildPlan([*argv, *request.common_argv(), str(context)], env, note)

    def inspect(self, image: str) -> ImageFacts | None:
        data = self.described(image, "image", "inspect")
        if data is None:
            return None
        config = data.get("Config") or {}
        repo_digests = [str(digest) for digest in data.get("RepoDigests") or []]
        return ImageFacts(
            id=str(data.get("Id") or "").removeprefix("sha256:"),
            entrypoint=list(config.get("Entrypoint") or []),
            healthcheck=healthcheck_test(config),
            user=str(config.get("User") or ""),
            env=list(config.get("Env") or []),
            labels=dict(config.get("Labels") or {}),
            size=int(data.get("Size") or 0),
            digest=registry_digest(image, repo_digests),
        )

    def push(self, image: str, destination: str) -> subprocess.CompletedProcess[str]:
        """docker pushes only to a registry: docker://HOST/NAME:TAG is tagged, then pushed."""
        if not destination.startswith("docker://"):
            raise ImageError(f"docker can push only to a registry, not to {destination}")
        reference = destination.removeprefix("docker://")
        tagged = self.run(self.command("tag", image, reference))
        if tagged.returncode != 0:
            raise ImageError(f"cannot tag {image} as {reference}: {last_line(tagged.stderr)}")
        return self.run(self.command("push", "--quiet", reference))

    def push_to_registry(self, image: str, reference: str, tls_verify: bool) -> str:
        tagged = self.run(self.command("tag", image, reference))
        if tagged.returncode != 0:
            raise ImageError(f"cannot tag {image} as {reference}: {last_line(tagged.stderr)}")
        pushed = self.run(self.command("push", reference))
        if pushed.returncode != 0:
            raise ImageError(
                registry_failure(pushed.stdout + pushed.stderr, "push to", reference, self.name)
            )
        shown = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed.stdout)
        if not shown:
            raise ImageError(f"docker pushed {reference} but showed no digest")
        return shown.group(1)

    def export_archive(self, image: str, archive: Path) -> None:
        saved = self.run(self.command("save", "--output", str(archive), image))
        if saved.returncode != 0:
            raise ImageError(f"cannot export {image}: {last_line(saved.stderr)}")
