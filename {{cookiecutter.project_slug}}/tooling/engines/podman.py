"""podman: builds like buildah (it is buildah inside), runs like docker.

podman keeps the health check in a top-level `Healthcheck` field of `image
inspect`, not in `Config`. On hosts where crun refuses hybrid cgroups or root
lacks CAP_SYS_RESOURCE, containers.conf needs `runtime = "runc"` and
`default_ulimits`; a refused run says which in one line.
"""

from __future__ import annotations

from tooling.engines.containers_storage import ContainersStorageEngine
from tooling.engines.interface import ImageFacts, healthcheck_test


class Podman(ContainersStorageEngine):
    name = "podman"

    def inspect(self, image: str) -> ImageFacts | None:
        data = self.described(image, "image", "inspect")
        if data is None:
            return None
        config = data.get("Config") or {}
        return ImageFacts(
            id=str(data.get("Id") or "").removeprefix("sha256:"),
            entrypoint=list(config.get("Entrypoint") or []),
            healthcheck=healthcheck_test(data) or healthcheck_test(config),
            user=str(config.get("User") or ""),
            env=list(config.get("Env") or []),
            labels=dict(config.get("Labels") or data.get("Labels") or {}),
            size=int(data.get("Size") or 0),
            digest=str(data.get("Digest") or ""),
        )
