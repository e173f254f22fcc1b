"""`invoke base-image --refresh`: every tier's base image pinned by the digest an engine has
(per platform when the project builds several)."""

from __future__ import annotations

from collections.abc import Sequence

from tooling.base_image.choice import tier_base_image
from tooling.base_image.pins import DIGEST, pin_key, write_base_pins
from tooling.engines import Engine, ImageError, last_line
from tooling.project import Project


def resolve_digest(engine: Engine, reference: str, pull: bool, platform: str | None = None) -> str:
    """reference@sha256:... of the image the engine has (pulled first unless pull=False, for
    `platform` when given: that platform's image of a multi-platform index)."""
    if pull:
        chosen = ["--platform", platform] if platform else []
        pulled = engine.run(engine.command("pull", "--quiet", *chosen, reference))
        if pulled.returncode != 0:
            raise ImageError(
                f"{engine.name} cannot pull {reference} ({last_line(pulled.stderr)}); "
                "use --local to pin the copy this machine already has"
            )
    facts = engine.inspect(reference)
    if facts is None:
        raise ImageError(
            f"{engine.name} has no image {reference}: pull or load it first, "
            "or build from another image with --base-image"
        )
    if not facts.digest.startswith("sha256:"):
        # docker knows a registry digest only for an image pulled from a registry.
        raise ImageError(
            f"{engine.name} knows no registry digest for {reference} (a loaded or locally "
            "built image has none): build with --base-image "
            f"{reference} to use it unpinned, or pin it with --engine podman or buildah"
        )
    return f"{reference}@{facts.digest}"


def refresh_base_pins(
    project: Project,
    tiers: Sequence[str],
    engine: Engine,
    pull: bool,
    platforms: Sequence[str] = (),
) -> dict[str, str]:
    """Pin every tier's base image by digest in base-images.lock; return the new pins.

    With several `platforms`, each platform's image is pulled and pinned on a line of its
    own (`IMAGE@sha256:... linux/arm64`); with none or one, one line serves every platform.
    """
    references = sorted({tier_base_image(project, tier) for tier in tiers})
    each = list(platforms) if len(platforms) > 1 else [None]
    if len(each) > 1 and not pull:
        raise ImageError(
            "--local pins the one image the engine has, and the project builds for "
            f"{', '.join(platforms)}: refresh without --local to pull each platform's"
        )
    pins = {
        pin_key(reference, platform): resolve_digest(engine, reference, pull, platform)
        for reference in references
        if not DIGEST.match(reference)
        for platform in each
    }
    write_base_pins(project.root, pins)
    return pins
