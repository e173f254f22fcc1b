"""Publishing a tier's image by digest, and verifying an image pulled from a registry.

- ship.py: `invoke publish` and `invoke verify`;
- rebuild.py: `invoke verify --rebuild`, the image IDs this commit builds against the published;
- index_publish.py: `invoke publish` of a tier built for several platforms (one index);
- pulled_image.py, layers.py: an image fetched with skopeo and its layers
  read, never run;
- image_venv.py, expected/, pyc_shape.py: /opt/venv proven file by file from
  the lock's wheels;
- base_layers.py: everything outside /opt/venv, against the pinned base's layers;
- image_config.py, dockerfile.py: the config the Dockerfile makes of the base's;
- image_sbom.py: the SBOM of an image, compared with its lock's.

Images are built by tooling/images/, on the base tooling/base_image/ pins.
Modules here import each other directly; tasks.py uses this face.
"""

from tooling.shipping.index_publish import publish_index
from tooling.shipping.rebuild import rebuild_problems
from tooling.shipping.ship import ShipError, check_record_writable, publish, verify

__all__ = [
    "ShipError",
    "check_record_writable",
    "publish",
    "publish_index",
    "rebuild_problems",
    "verify",
]
