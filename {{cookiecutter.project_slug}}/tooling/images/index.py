"""A tier built for several platforms: its manifest list, and each platform's smoke test.

`invoke build --platform linux/amd64,linux/arm64` builds <project>:<tier>-linux-amd64
and <project>:<tier>-linux-arm64 and a manifest list <project>:<tier>-index of them
(tooling/images/platforms.py names them); dist/images/built.json records them under
<project>:<tier>. The smoke test and `invoke publish` check every platform's image,
a foreign platform's under qemu.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tooling import engines
from tooling.images import platforms
from tooling.images.tier_image import image_name, smoke_image
from tooling.project import Project

Log = Callable[[str], None]


def make_tier_index(
    project: Project,
    engine: engines.Engine,
    tier: str,
    wanted: Sequence[str],
    image_ids: Mapping[str, str],
    log: Log,
) -> None:
    """The manifest list <project>:<tier>-index of every platform's image, recorded."""
    image = image_name(project.name, tier)
    each = platforms.tagged(image, wanted)
    index = platforms.index_image(image)
    engine.make_index(index, [each[platform] for platform in wanted])
    engines.record_index(
        project.root, image, index, engine.name, tier,
        {platform: (each[platform], image_ids[each[platform]]) for platform in wanted},
    )  # fmt: skip
    log(f"built {index}: a manifest list of {', '.join(wanted)}")


def images_to_check(root: Path, image: str) -> dict[str | None, str]:
    """platform -> image of the last build of <project>:<tier> (None -> image: one platform)."""
    found = engines.built_platforms(root, image)
    if not found:
        return {None: image}
    return {platform: each for platform, each in found.items()}


def smoke_every_platform(
    project: Project,
    image: str,
    tier: str,
    version: str,
    engine_name: str | None,
    log: Log,
    env: Mapping[str, str] = os.environ,
) -> dict[str | None, engines.Engine]:
    """The smoke test of each platform's image of the last build (or of `image` alone);
    platform -> the engine that holds it. Raises naming the first that fails."""
    held = {}
    for platform, each in images_to_check(project.root, image).items():
        if platform:
            platforms.check_emulation([platform])
        engine = engines.locate(each, project.root, engine_name, env)
        emulated = platform and platforms.architecture(platform) != platforms.architecture(
            platforms.host_platform()
        )
        log(f"{each}: checked in {engine.name}" + (" under qemu" if emulated else ""))
        for line in smoke_image(engine, each, tier, project, version, platform):
            log(f"{each}: {line}")
        held[platform] = engine
    return held
