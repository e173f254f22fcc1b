"""Which engine built which image here: dist/images/built.json.

A build for several platforms records each platform's image (with its platform) and,
under the tier's plain image name, the manifest list that holds them ("index") and
each platform's image; a later build of the tier replaces what an earlier one recorded
under that name, so the record always says what the last build of a tier made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tooling.atomic import write_all

BUILD_RECORD = Path("dist") / "images" / "built.json"


def read_build_record(root: Path) -> dict[str, dict[str, Any]]:
    path = root / BUILD_RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_build_record(root: Path, record: Mapping[str, Any]) -> None:
    path = root / BUILD_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    write_all({path: json.dumps(record, indent=2, sort_keys=True) + "\n"})


def record_build(
    root: Path, image: str, engine: str, image_id: str, tier: str, platform: str | None = None
) -> None:
    record = read_build_record(root)
    record[image] = {"engine": engine, "image_id": image_id, "tier": tier}
    if platform:
        record[image]["platform"] = platform
    write_build_record(root, record)


def record_index(
    root: Path,
    image: str,
    index: str,
    engine: str,
    tier: str,
    images: Mapping[str, tuple[str, str]],
) -> None:
    """Under `image` (<project>:<tier>): the manifest list `index` of platform -> (image, ID)."""
    record = read_build_record(root)
    record[image] = {
        "engine": engine,
        "tier": tier,
        "index": index,
        "platforms": {
            platform: {"image": name, "image_id": image_id}
            for platform, (name, image_id) in images.items()
        },
    }
    write_build_record(root, record)


def built_platforms(root: Path, image: str) -> dict[str, str]:
    """platform -> local image of the last build of `image` for several platforms ({}: none)."""
    entry = read_build_record(root).get(image) or {}
    found = entry.get("platforms") if isinstance(entry, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(platform): str(each.get("image")) for platform, each in found.items()}
