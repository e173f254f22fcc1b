"""A tier built for several platforms: its manifest list, and each platform's smoke test.

`invoke build --platform linux/amd64,linux/arm64` builds <project>:<tier>-linux-amd64
and <project>:<tier>-linux-arm64 and a manifest list <project>:<tier>-index of them
(tooling/images/platforms.py names them); dist/images/built.json records them under
<project>:<tier>. The smoke test and `invoke publish` check every platform's image,
a foreign platform's under qemu.
"""

from __future__ import annotations

import os
import sys
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
    engine.make_index(index, [image_ids[each[platform]] for platform in wanted])
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


def load_archives(
    project: Project, engine: engines.Engine, tier: str, archives: Mapping[str, Path], log: Log
) -> None:
    """Each platform's image of `tier`, saved as a docker-archive by a build on a runner of
    that platform, loaded into `engine` and recorded as one build of several platforms
    (then `invoke publish` pushes them as one index)."""
    image = image_name(project.name, tier)
    wanted = list(archives)
    each = platforms.tagged(image, wanted)
    image_ids = {}
    for platform, archive in archives.items():
        loaded = engine.load(archive)
        if loaded.returncode != 0:
            raise engines.ImageError(f"cannot load {archive}: {engines.last_line(loaded.stderr)}")
        tagged = engine.run(engine.command("tag", image, each[platform]))
        if tagged.returncode != 0:
            raise engines.ImageError(
                f"cannot tag {each[platform]}: {engines.last_line(tagged.stderr)}"
            )
        facts = engine.facts(each[platform])
        engines.record_build(project.root, each[platform], engine.name, facts.id, tier, platform)
        image_ids[each[platform]] = facts.id
        log(f"loaded {archive} as {each[platform]} ({platform}): image ID {facts.id}")
    make_tier_index(project, engine, tier, wanted, image_ids, log)


def main(argv: list[str]) -> int:
    """For a workflow: `python -m tooling.images.index ENGINE TIER PLATFORM=ARCHIVE...`."""
    from tooling import ToolingError
    from tooling import project as projects

    if len(argv) < 3 or not all("=" in each for each in argv[2:]):
        print(
            "usage: python -m tooling.images.index ENGINE TIER PLATFORM=ARCHIVE...",
            file=sys.stderr,
        )
        return 2
    try:
        archives = {}
        for each in argv[2:]:
            platform, _, archive = each.partition("=")
            archives[platforms.parse_platforms(platform, "PLATFORM")[0]] = Path(archive)
        found = projects.load(Path.cwd())
        engine = engines.get(argv[0], os.environ)
        load_archives(found, engine, argv[1], archives, print)
    except ToolingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
