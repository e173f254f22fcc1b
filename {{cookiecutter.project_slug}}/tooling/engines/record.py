"""Which engine built which image here: dist/images/built.json."""

from __future__ import annotations

import json
from pathlib import Path

from tooling.atomic import write_all

BUILD_RECORD = Path("dist") / "images" / "built.json"


def read_build_record(root: Path) -> dict[str, dict[str, str]]:
    path = root / BUILD_RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_build(root: Path, image: str, engine: str, image_id: str, tier: str) -> None:
    record = read_build_record(root)
    record[image] = {"engine": engine, "image_id": image_id, "tier": tier}
    path = root / BUILD_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    write_all({path: json.dumps(record, indent=2, sort_keys=True) + "\n"})
