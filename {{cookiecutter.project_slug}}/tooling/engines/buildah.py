"""buildah: daemonless builds; runs through `buildah from` + `buildah run`.

Older buildah releases (Debian 12 ships 1.28) read the storage driver only
from --storage-driver, so STORAGE_DRIVER is passed as that flag too. Where
crun refuses the host (hybrid cgroups, as in many CI containers),
BUILDAH_ISOLATION=chroot is the fix; a refused run says so in one line.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tooling.engines.containers_storage import ContainersStorageEngine
from tooling.engines.interface import ImageError, ImageFacts, healthcheck_test, parse_json
from tooling.engines.refusals import last_line


class Buildah(ContainersStorageEngine):
    name = "buildah"

    def command(self, *args: str) -> list[str]:
        driver = self.env.get("STORAGE_DRIVER")
        driver_option = ["--storage-driver", driver] if driver else []
        return ["buildah", *driver_option, *args]

    def inspect(self, image: str) -> ImageFacts | None:
        data = self.described(image, "inspect", "--type", "image")
        if data is None:
            return None
        config = (data.get("Docker") or {}).get("config") or {}
        layers = json.loads(data["Manifest"]).get("layers", [])
        return ImageFacts(
            id=str(data.get("FromImageID") or ""),
            entrypoint=list(config.get("Entrypoint") or []),
            healthcheck=healthcheck_test(config),
            user=str(config.get("User") or ""),
            env=list(config.get("Env") or []),
            labels=dict(config.get("Labels") or {}),
            size=sum(int(layer["size"]) for layer in layers),
            digest=str(data.get("FromImageDigest") or ""),
        )

    def stored_manifest_and_config(self, image: str, layout: Path) -> tuple[str, str]:
        # buildah shows both byte for byte: no copy of the layers is needed.
        result = self.run(self.command("inspect", "--type", "image", image))
        if result.returncode != 0:
            raise ImageError(f"image {image} not found by buildah: {last_line(result.stderr)}")
        data = parse_json(result.stdout, self.name, image)
        return str(data["Manifest"]), str(data["Config"])

    def run_in(self, image: str, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        created = self.run(self.command("from", "--pull-never", image))
        if created.returncode != 0:
            raise ImageError(f"cannot start a container from {image}: {last_line(created.stderr)}")
        container = created.stdout.strip().splitlines()[-1]
        try:
            result = self.run(self.command("run", container, "--", *argv))
            if not result.stdout and not result.stderr:
                # buildah 1.28 (chroot isolation) now and then loses a run's whole output;
                # every command run here prints something and only reads, so ask once more.
                result = self.run(self.command("run", container, "--", *argv))
            self.refused(result)
            return result
        finally:
            self.run(self.command("rm", container))

    def load(self, archive: Path) -> subprocess.CompletedProcess[str]:
        return self.run(self.command("pull", "--quiet", f"docker-archive:{archive}"))
