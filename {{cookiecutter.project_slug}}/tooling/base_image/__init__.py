"""The base image each tier is built on: what is known of it has this one owner.

- pins.py: base-images.lock, each tier's base image pinned by digest (read by the
  drift check and `invoke build`, written by `invoke base-image --refresh`);
- choice.py: the base image a tier is built from (--base-image, else the pin);
- refresh.py: the pins written from the digests a container engine has;
- config.py: the pinned base's config, fetched with skopeo by that digest and
  checked blob by blob, that `invoke verify` checks an image's config and
  layers against (tooling/shipping/image_config.py, tooling/shipping/base_layers.py).

Each module imports only the ones listed before it; other modules import this face
(config and refresh load on first use).
"""

import importlib
from typing import TYPE_CHECKING

from tooling.base_image.choice import base_image_for_build, default_base_image, tier_base_image
from tooling.base_image.pins import (
    BASE_IMAGES,
    DIGEST,
    BaseImageError,
    base_image_problems,
    read_base_pins,
    write_base_pins,
)

if TYPE_CHECKING:
    from tooling.base_image.config import (
        BaseConfigError,
        Fetch,
        PinnedBase,
        base_config,
        pinned_base,
        skopeo_bytes,
    )
    from tooling.base_image.refresh import refresh_base_pins, resolve_digest

# config and refresh import the container engines and the registry client: loaded on
# first use, so that the drift check, which reads only the pins, does not wait for them.
LAZY = {
    **dict.fromkeys(
        ("BaseConfigError", "Fetch", "PinnedBase", "base_config", "pinned_base", "skopeo_bytes"),
        "config",
    ),
    **dict.fromkeys(("refresh_base_pins", "resolve_digest"), "refresh"),
}


def __getattr__(name: str) -> object:
    if name not in LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(importlib.import_module(f"{__name__}.{LAZY[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "BASE_IMAGES",
    "DIGEST",
    "BaseConfigError",
    "BaseImageError",
    "Fetch",
    "PinnedBase",
    "base_config",
    "base_image_for_build",
    "base_image_problems",
    "default_base_image",
    "pinned_base",
    "read_base_pins",
    "refresh_base_pins",
    "resolve_digest",
    "skopeo_bytes",
    "tier_base_image",
    "write_base_pins",
]
