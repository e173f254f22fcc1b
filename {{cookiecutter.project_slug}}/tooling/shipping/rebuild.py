"""`invoke verify --rebuild`: build a verified image's tier again from this commit and compare
its image IDs with the published ones (each platform of an index on the base base-images.lock
pins for it; a single image on the base it was verified against)."""

from __future__ import annotations

import os
from collections.abc import Callable

from tooling.images import image_name, secret_files
from tooling.images.build import build_tiers, rebuild_lines
from tooling.project import Project
from tooling.shipping.ship import Verified


def rebuild_problems(
    the_project: Project,
    verified: Verified,
    engine: str | None,
    build_wheel: Callable[[], bool],
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> list[str]:
    """What differs when this commit builds the verified image again (the lines saying what
    matched go to `log`); nothing is built for an image that already failed verify."""
    if not verified.tier or verified.problems:
        return []
    if verified.uncommitted:
        return [
            f"--rebuild builds the work tree, whose uncommitted changes are not commit "
            f"{verified.commit}: commit or stash them, then verify with --rebuild again"
        ]
    published = verified.image_ids or {"": verified.image_id}
    built = build_tiers(
        the_project,
        [verified.tier],
        engine,
        None if verified.image_ids else verified.base or None,
        secret_files(None, None, None, os.environ),
        build_wheel,
        log=log,
        warn=warn,
        platform=",".join(verified.image_ids) or None,
    )
    image = image_name(the_project.name, verified.tier)
    same, problems = rebuild_lines(image, verified.reference, built, published)
    for line in same:
        log(line)
    return problems
