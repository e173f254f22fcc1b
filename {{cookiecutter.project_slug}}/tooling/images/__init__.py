"""Building each tier's image, and the images this machine has.

- tier_image.py: a tier's image name, its build inputs (build secrets, the
  build's uv) and the smoke test of a built image;
- provenance.py: what an image says it was built from (its OCI labels);
- build.py: `invoke build`, from the lock check to the build record;
- platforms.py: the platforms a tier is built for, their image names, qemu;
- index.py: a tier built for several platforms: its manifest list and smoke tests;
- local_images.py: `invoke run` and `invoke prune`;
- image_scan.py: the OS-package scan of a built image
  (`python -m tooling.images.image_scan TIER` in CI).

How each engine builds is in tooling/engines/, the base image in
tooling/base_image/, publishing and verifying in tooling/shipping/. Modules
here import each other directly; noxfile.py and tasks.py use this face.
"""

from tooling.images.index import smoke_every_platform
from tooling.images.tier_image import (
    DEFAULT_BUDGET_MB,
    UV_REQUIREMENTS,
    budget_mb,
    image_name,
    secret_files,
    smoke_image,
    summarize_images,
    uv_requirements,
    write_uv_requirements,
)

__all__ = [
    "DEFAULT_BUDGET_MB",
    "UV_REQUIREMENTS",
    "budget_mb",
    "image_name",
    "secret_files",
    "smoke_every_platform",
    "smoke_image",
    "summarize_images",
    "uv_requirements",
    "write_uv_requirements",
]
