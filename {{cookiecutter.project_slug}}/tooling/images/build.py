"""`invoke build`: the locks checked, the wheel built, then each tier's image, recorded.

tasks.py only parses options; this module decides the order: every chosen
tier's lock must exist and every lock be current before anything is built,
the engine is chosen once, each tier's base image is resolved (the pin in
base-images.lock, or an override), the project's wheel is built once
(`nox -s build`, handed in as `build_wheel`), then each image is built with
reproducible labels and recorded as built by that engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from tooling import base_image, engines, lock, project, summary, tiers
from tooling.engines import ImageError, Secrets
from tooling.images import layering, provenance
from tooling.images.tier_image import image_name, summarize_images


def build_tiers(
    the_project: project.Project,
    chosen: Sequence[str],
    engine: str | None,
    base_override: str | None,
    secrets: Secrets,
    build_wheel: Callable[[], bool],
    target: str | None = None,
    network: str | None = None,
    env: Mapping[str, str] = os.environ,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> dict[str, str]:
    """Build each chosen tier's image; return tier -> image ID."""
    root = the_project.root
    graph = tiers.read_tiers(the_project.requirements_dir)
    for name in chosen:
        project.tier_lock(the_project, name, list(graph))
    problems = lock.check(the_project)
    if problems:
        raise ImageError(f"locks are not current: {'; '.join(problems)}")
    chosen_engine = engines.get(engines.choose_engine(engine, env), env)
    bases = {
        name: base_image.base_image_for_build(the_project, name, base_override) for name in chosen
    }
    version = project.read_version(the_project)
    if not build_wheel():
        raise ImageError("building the wheel (nox -s build) failed; see the output above")
    epoch = project.source_date_epoch(root, env)
    starts = layering.plan(the_project, graph)
    image_ids: dict[str, str] = {}
    environments: set[str] = set()  # tiers whose environment image this run built

    def request_for(name: str, tag: str, target: str | None) -> engines.BuildRequest:
        labels = provenance.for_build(root, the_project.requirements_dir / f"{name}.txt", version)
        return engines.BuildRequest(
            tier=name,
            tag=tag,
            python_version=the_project.python_version,
            source_date_epoch=epoch,
            base_image=base_of(name),
            secrets=secrets,
            target=target,
            network=network,
            label_args=labels.build_args(epoch),
            environment_base=layering.environment_base(the_project.name, starts[name]),
            environment=starts[name].stage,
        )

    def base_of(name: str) -> str:
        if name not in bases:
            bases[name] = base_image.base_image_for_build(the_project, name, base_override)
        return bases[name][0]

    for name in chosen:
        note = bases[name][1]
        if note:
            warn(f"warning: {note}")
        for parent in layering.ancestors(starts, name):
            if parent in environments:
                continue
            request = request_for(
                parent, layering.environment_image(the_project.name, parent), "environment"
            )
            log(f"building {request.tag} (the environment tier {name} starts from)")
            chosen_engine.build(request, root)
            environments.add(parent)
        request = request_for(name, image_name(the_project.name, name), target)
        start = starts[name].parent
        on = f" (on tier {start}'s environment)" if start else ""
        log(f"building {request.tag} with {chosen_engine.name} from {base_of(name)}{on}")
        image_ids[name] = chosen_engine.build(request, root)
        engines.record_build(root, request.tag, chosen_engine.name, image_ids[name], name)
        log(f"built {request.tag}: image ID {image_ids[name]} (SOURCE_DATE_EPOCH={epoch})")
    if env.get(summary.VARIABLE):  # size is one more inspect: only when asked
        tags = {name: image_name(the_project.name, name) for name in image_ids}
        facts = [(name, tag, chosen_engine.facts(tag)) for name, tag in tags.items()]
        summarize_images(the_project, "Images built", facts)
    return image_ids


def rebuild_problem(rebuilt: str, published: str) -> str | None:
    """Why a rebuild from this commit is not the published image; None when the IDs agree."""
    if rebuilt.removeprefix("sha256:") == published.removeprefix("sha256:"):
        return None
    return f"rebuilt from this commit, the image ID is {rebuilt}, not {published} as published"
