"""What buildah and podman share: containers-storage, `build --timestamp`, dir: transport.

Both push Docker-format (v2s2) manifests, so the health check travels with
the image.

Both build Docker-format images (OCI images drop HEALTHCHECK) with every
timestamp taken from SOURCE_DATE_EPOCH. Older releases still record the build
container's ID and host name in the config; `finish_build` rewrites the config
without them, so two cold builds of one commit give one image ID.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tooling.engines.interface import (
    BuildPlan,
    BuildRequest,
    Engine,
    ImageError,
)
from tooling.engines.refusals import last_line, registry_failure


class ContainersStorageEngine(Engine):
    def push_to_registry(self, image: str, reference: str, tls_verify: bool) -> str:
        with tempfile.TemporaryDirectory(prefix="push-") as tmp:
            digest_file = Path(tmp) / "digest"
            pushed = self.run(
                self.command(
                    "push", "--quiet", "--format", "v2s2", f"--tls-verify={str(tls_verify).lower()}",
                    "--digestfile", str(digest_file), image, f"docker://{reference}",
                )
            )  # fmt: skip
            if pushed.returncode != 0:
                raise ImageError(registry_failure(pushed.stderr, "push to", reference, self.name))
            return digest_file.read_text(encoding="utf-8").strip()

    def make_index(self, index: str, image_ids: Sequence[str]) -> None:
        # By ID: podman reads a bare name as docker://, and containers-storage:NAME as
        # docker.io/library/NAME, never the localhost/NAME a build tags.
        self.run(self.command("manifest", "rm", index))  # an earlier build's, if any
        created = self.run(self.command("manifest", "create", index))
        if created.returncode != 0:
            raise ImageError(
                f"cannot create the manifest list {index}: {last_line(created.stderr)}"
            )
        for image_id in image_ids:
            added = self.run(
                self.command("manifest", "add", index, f"containers-storage:{image_id}")
            )
            if added.returncode != 0:
                raise ImageError(f"cannot add {image_id} to {index}: {last_line(added.stderr)}")

    def push_index(self, index: str, reference: str, tls_verify: bool) -> str:
        with tempfile.TemporaryDirectory(prefix="push-") as tmp:
            digest_file = Path(tmp) / "digest"
            pushed = self.run(
                self.command(
                    "manifest", "push", "--all", "--quiet", "--format", "v2s2",
                    f"--tls-verify={str(tls_verify).lower()}", "--digestfile", str(digest_file),
                    index, f"docker://{reference}",
                )
            )  # fmt: skip
            if pushed.returncode != 0:
                raise ImageError(registry_failure(pushed.stderr, "push to", reference, self.name))
            return digest_file.read_text(encoding="utf-8").strip()

    def plan_build(self, request: BuildRequest, context: Path) -> BuildPlan:
        argv = self.command("build", "--format", "docker", "--layers")
        argv += ["--timestamp", request.source_date_epoch]  # image, history and layer files
        argv += ["--jobs", "2"]  # the app stage builds while uv installs the environment
        argv += request.common_argv()
        return BuildPlan([*argv, str(context)])

    def finish_build(self, image: str) -> str:
        return self.make_reproducible(image)

    def stored_manifest_and_config(self, image: str, layout: Path) -> tuple[str, str]:
        """The image's manifest and config exactly as stored, from a dir: copy of it."""
        pushed = self.push(image, f"dir:{layout}")
        if pushed.returncode != 0:
            raise ImageError(f"cannot export {image} to fix its config: {last_line(pushed.stderr)}")
        manifest = (layout / "manifest.json").read_text(encoding="utf-8")
        config_file = layout / json.loads(manifest)["config"]["digest"].removeprefix("sha256:")
        config = config_file.read_text(encoding="utf-8")
        config_file.unlink()
        return manifest, config

    def make_reproducible(self, image: str) -> str:
        """Rewrite the image's config without its random fields; return the image ID.

        Only the config changes; pulling the dir: layout back finds every layer already
        in the store by its digest.
        """
        old_id = self.image_id(image)
        with tempfile.TemporaryDirectory(prefix="image-") as tmp:
            layout = Path(tmp) / "image"
            layout.mkdir()
            manifest_text, config_text = self.stored_manifest_and_config(image, layout)
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
            pulled = self.run(self.command("pull", "--quiet", f"dir:{layout}"))
            if pulled.returncode != 0:
                raise ImageError(f"cannot store the fixed {image}: {last_line(pulled.stderr)}")
        new_id = new_digest.removeprefix("sha256:")
        # The original stays, untagged: it is the layer cache of the last build step.
        tagged = self.run(self.command("tag", new_id, image))
        if tagged.returncode != 0:
            raise ImageError(f"cannot tag the fixed {image}: {last_line(tagged.stderr)}")
        return new_id


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
