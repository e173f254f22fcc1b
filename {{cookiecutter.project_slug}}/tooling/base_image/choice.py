"""The base image a tier is built from: --base-image, else base-images.lock's pin of the
tier's setting ([tool.lockstep] base-images, else python:<version>-slim)."""

from __future__ import annotations

from tooling.base_image.pins import BASE_IMAGES, DIGEST, pin_key, read_base_pins
from tooling.project import Project


def default_base_image(project: Project) -> str:
    return f"python:{project.python_version}-slim"


def tier_base_image(project: Project, tier: str) -> str:
    """The tier's base image as written: [tool.lockstep] base-images, else python:<version>-slim."""
    named = project.settings.get("base-images", {})
    return str(named.get(tier) or default_base_image(project))


def base_image_for_build(
    project: Project, tier: str, override: str | None, platform: str | None = None
) -> tuple[str, str | None]:
    """(image to build from, a note when it is not pinned). --base-image / BASE_IMAGE win;
    then `platform`'s own pin, then the pin of every platform."""
    if override:
        return override, None
    reference = tier_base_image(project, tier)
    if DIGEST.match(reference):
        return reference, None
    pins = read_base_pins(project.root)
    pinned = pins.get(pin_key(reference, platform)) or pins.get(reference)
    if pinned:
        return pinned, None
    return reference, (
        f"base image {reference} is not pinned in {BASE_IMAGES}: "
        "run `invoke base-image --refresh` to pin its digest"
    )
