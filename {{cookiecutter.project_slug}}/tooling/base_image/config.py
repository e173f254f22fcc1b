"""The config of a base image, fetched with skopeo by the digest this checkout pins.

Nothing the registry says is taken on its word: the manifest (or image index)
must hash to the pinned digest, the platform's manifest to the digest the
index names, and the config to the digest that manifest names
(tooling/shipping/image_config.py compares an image's config with what the Dockerfile
makes of this one, tooling/shipping/base_layers.py its layers with the base's diff_ids).
`invoke verify` fetches it once per image and hands it to both checks.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tooling import ToolingError
from tooling.base_image.choice import base_image_for_build
from tooling.base_image.pins import DIGEST
from tooling.engines import registry_failure
from tooling.project import Project
from tooling.registry import is_loopback, registry_host

Fetch = Callable[[Sequence[str]], bytes]


class BaseConfigError(ToolingError):
    pass


@dataclass(frozen=True)
class PinnedBase:
    pin: str  # REFERENCE@sha256:DIGEST, as base-images.lock pins it
    config: Mapping[str, Any]  # its config, every blob on the way checked by digest


def pinned_base(
    project: Project,
    tier: str,
    platform: Mapping[str, str],
    tls_verify: bool = True,
    fetch: Fetch | None = None,
) -> PinnedBase:
    """The base base-images.lock pins for `tier` (never the one an image names), fetched once."""
    parts = [str(platform.get(key) or "") for key in ("os", "architecture", "variant")]
    pin, unpinned = base_image_for_build(
        project, tier, None, "/".join(part for part in parts if part)
    )
    if unpinned:
        raise BaseConfigError(
            f"{unpinned}; verify checks the config and the layers below /opt/venv against that pin"
        )
    try:
        return PinnedBase(pin, base_config(pin, platform, fetch or skopeo_bytes, tls_verify))
    except BaseConfigError as error:
        raise BaseConfigError(
            f"the base image {pin} cannot be fetched to check the config and the layers "
            f"against it: {error}"
        ) from None


def skopeo_bytes(argv: Sequence[str]) -> bytes:
    done = subprocess.run(list(argv), capture_output=True, check=False)
    if done.returncode != 0:
        raise BaseConfigError(
            registry_failure(
                done.stderr.decode(errors="replace"),
                "pull",
                argv[-1].removeprefix("docker://"),
                "skopeo",
            )
        )
    return done.stdout


def repository(reference: str) -> str:
    """NAME of NAME[:TAG]@sha256:...: skopeo takes a tag or a digest, not both."""
    name = reference.partition("@")[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.partition(":")[0]


def base_config(
    reference: str,
    platform: Mapping[str, str],
    fetch: Fetch = skopeo_bytes,
    tls_verify: bool = True,
) -> dict[str, Any]:
    """The config of `reference` (NAME@sha256:...) for `platform`, each blob checked by digest."""
    try:
        config = unchecked_base_config(reference, platform, fetch, tls_verify)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise BaseConfigError(
            f"the base image {reference}: unreadable manifest ({error!r})"
        ) from None
    if not isinstance(config, dict):
        raise BaseConfigError(f"the base image {reference}: its config is not a JSON object")
    return config


def unchecked_base_config(
    reference: str, platform: Mapping[str, str], fetch: Fetch, tls_verify: bool
) -> Any:
    pinned = DIGEST.match(reference)
    if pinned is None:
        raise BaseConfigError(
            f"the base image {reference} is not pinned by digest, so its config cannot be "
            "trusted: pin it with `invoke base-image --refresh` and rebuild"
        )
    host = registry_host(reference)
    tls = f"--tls-verify={str(tls_verify and not (host and is_loopback(host))).lower()}"
    name = repository(reference)

    def fetched(manifest_digest: str, digest: str, *what: str) -> Any:
        """The manifest (or with --config its config) of NAME@manifest_digest, if it is `digest`."""
        reference = f"docker://{name}@{manifest_digest}"
        data = fetch(["skopeo", "inspect", "--raw", *what, tls, reference])
        if f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
            raise BaseConfigError(f"the registry of {name} served a blob that is not {digest}")
        return json.loads(data)

    chosen = pinned["digest"]
    manifest = fetched(chosen, chosen)
    if "manifests" in manifest:
        chosen = platform_entry(manifest, platform, reference)
        manifest = fetched(chosen, chosen)
    return fetched(chosen, str(manifest["config"]["digest"]), "--config")


def platform_entry(index: Mapping[str, Any], platform: Mapping[str, str], reference: str) -> str:
    """The digest of the index's manifest for `platform` (os, architecture, variant)."""
    wanted = {key: platform.get(key) or "" for key in ("os", "architecture", "variant")}
    for entry in index.get("manifests") or []:
        offered = entry.get("platform") or {}
        if all(not value or str(offered.get(key) or "") == value for key, value in wanted.items()):
            return str(entry["digest"])
    shown_platform = "/".join(value for value in wanted.values() if value)
    raise BaseConfigError(f"the base image {reference} has no {shown_platform} image")
