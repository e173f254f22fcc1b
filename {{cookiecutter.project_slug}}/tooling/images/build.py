"""`invoke build`: the locks checked, the wheel built, then each tier's image, recorded.

tasks.py only parses options; this module decides the order: every chosen
tier's lock must exist and every lock be current before anything is built,
the engine is chosen once, each tier's base image is resolved (the pin in
base-images.lock, or an override), the project's wheel is built once
(`nox -s build`, handed in as `build_wheel`), then each image is built with
reproducible labels and recorded as built by that engine. A layered tier
(tooling/images/layering.py) has the environment images of the tiers it
builds on made first, each once a run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tooling import base_image, engines, lock, project, summary, tiers
from tooling.engines import ImageError, Secrets
from tooling.images import index, layering, platforms, provenance
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
    platform: str | None = None,
) -> dict[str, str]:
    """Build each chosen tier's image for each platform; return image -> image ID."""
    root = the_project.root
    graph = tiers.read_tiers(the_project.requirements_dir)
    for name in chosen:
        project.tier_lock(the_project, name, list(graph))
    problems = lock.check(the_project)
    if problems:
        raise ImageError(f"locks are not current: {'; '.join(problems)}")
    wanted = platforms.chosen_platforms(the_project, platform)
    chosen_engine = engines.get(engines.choose_engine(engine, env), env)
    check_platforms(chosen_engine, wanted)
    version = project.read_version(the_project)
    starts = layering.plan(the_project, graph)
    epoch = project.source_date_epoch(root, env)
    several = len(wanted) > 1

    def run_for(each: str) -> Run:
        asked = each if (several or platform) else None  # the engine's own otherwise
        return Run(
            the_project, chosen_engine, starts, {}, base_override, epoch, version, secrets,
            network, log, asked, several,
        )  # fmt: skip

    runs = [run_for(each) for each in wanted]
    for run in runs:
        for name in chosen:
            run.base_of(name)
    if not build_wheel():
        raise ImageError("building the wheel (nox -s build) failed; see the output above")
    image_ids: dict[str, str] = {}
    for run in runs:
        image_ids.update(run.build_all(chosen, target, warn))
    if several:
        for name in chosen:
            index.make_tier_index(the_project, chosen_engine, name, wanted, image_ids, log)
    for run in runs if env.get(summary.VARIABLE) else []:  # one more inspect: only when asked
        facts = [(tier, tag, chosen_engine.facts(tag)) for tag, tier in run.tier_of.items()]
        shown = f" for {run.platform}" if run.platform else ""
        summarize_images(the_project, f"Images built{shown}", facts, run.platform)
    return image_ids


def check_platforms(engine: engines.Engine, wanted: Sequence[str]) -> None:
    """Refuse, before anything is built, what this engine or machine cannot do."""
    if len(wanted) > 1:
        problem = engine.several_platforms_problem()
        if problem:
            raise ImageError(problem)
    platforms.check_emulation(wanted)


@dataclass
class Run:
    """One `invoke build`: what every image of it shares, and the parents' environments built."""

    the_project: project.Project
    engine: engines.Engine
    starts: Mapping[str, layering.Start]
    bases: dict[str, tuple[str, str | None]]
    base_override: str | None
    epoch: str
    version: str
    secrets: Secrets
    network: str | None
    log: Callable[[str], None]
    platform: str | None = None  # what the engine is asked to build for (None: its own)
    several: bool = False  # one of several platforms: images named for their platform
    environments: set[str] = field(default_factory=set)  # tiers whose environment is built
    tier_of: dict[str, str] = field(default_factory=dict)  # image built -> its tier

    def base_of(self, name: str) -> str:
        if name not in self.bases:
            found = base_image.base_image_for_build(
                self.the_project, name, self.base_override, self.platform
            )
            self.bases[name] = found
        return self.bases[name][0]

    def named(self, image: str) -> str:
        """The image of this run's platform: <image>-<os>-<arch> when several are built."""
        return platforms.platform_image(image, str(self.platform)) if self.several else image

    def environment_image(self, tier: str) -> str:
        return self.named(layering.environment_image(self.the_project.name, tier))

    def build_all(
        self, chosen: Sequence[str], target: str | None, warn: Callable[[str], None]
    ) -> dict[str, str]:
        """Every chosen tier's image of this run's platform; image -> image ID."""
        image_ids = {}
        for name in chosen:
            note = self.bases[name][1]
            if note:
                warn(f"warning: {note}")
            self.build_environments_under(name)
            image_ids[self.named(image_name(self.the_project.name, name))] = self.build_tier(
                name, target
            )
        return image_ids

    def request(self, name: str, tag: str, target: str | None) -> engines.BuildRequest:
        lock_path = self.the_project.requirements_dir / f"{name}.txt"
        labels = provenance.for_build(self.the_project.root, lock_path, self.version)
        return engines.BuildRequest(
            tier=name,
            tag=tag,
            python_version=self.the_project.python_version,
            source_date_epoch=self.epoch,
            base_image=self.base_of(name),
            secrets=self.secrets,
            target=target,
            network=self.network,
            label_args=labels.build_args(self.epoch),
            environment_base=self.environment_base(name),
            environment=self.starts[name].stage,
            platform=self.platform,
        )

    def environment_base(self, name: str) -> str:
        return layering.environment_base(self.the_project.name, self.starts[name], self.named)

    def build_environments_under(self, name: str) -> None:
        """The environment image of each tier `name` is layered on, parents first, once a run."""
        for parent in layering.ancestors(self.starts, name):
            if parent in self.environments:
                continue
            tag = self.environment_image(parent)
            self.log(f"building {tag} (the environment tier {name} starts from)")
            self.engine.build(self.request(parent, tag, "environment"), self.the_project.root)
            self.environments.add(parent)

    def build_tier(self, name: str, target: str | None) -> str:
        """The tier's image, recorded as built by this engine; its image ID."""
        request = self.request(name, self.named(image_name(self.the_project.name, name)), target)
        parent = self.starts[name].parent
        on = f" (on tier {parent}'s environment)" if parent else ""
        platform = f" for {self.platform}" if self.platform else ""
        self.log(
            f"building {request.tag}{platform} with {self.engine.name} "
            f"from {request.base_image}{on}"
        )
        image_id = self.engine.build(request, self.the_project.root)
        engines.record_build(
            self.the_project.root, request.tag, self.engine.name, image_id, name, self.platform
        )
        self.tier_of[request.tag] = name
        self.log(f"built {request.tag}: image ID {image_id} (SOURCE_DATE_EPOCH={self.epoch})")
        return image_id


def rebuild_problem(rebuilt: str, published: str) -> str | None:
    """Why a rebuild from this commit is not the published image; None when the IDs agree."""
    if rebuilt.removeprefix("sha256:") == published.removeprefix("sha256:"):
        return None
    return f"rebuilt from this commit, the image ID is {rebuilt}, not {published} as published"


def rebuild_lines(
    image: str, reference: str, built: Mapping[str, str], published: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """(lines saying so, problems) of a rebuild from this commit against the published image
    IDs: platform -> ID for an index (`reference` names its platforms), "" -> ID otherwise."""
    tagged = platforms.tagged_platforms(image, published)
    bare = reference.split(" (")[0]
    same, problems = [], []
    for platform, published_id in published.items():
        rebuilt = built[tagged[platform]]
        shown = f"{bare} ({platform})" if platform else reference
        problem = rebuild_problem(rebuilt, published_id)
        if problem is None:
            same.append(f"rebuilt from this commit: image ID {rebuilt}, the same as {shown}")
        else:
            problems.append(f"{shown}: {problem}" if platform else problem)
    return same, problems
