"""Which engine: --engine, CONTAINER_ENGINE, the one that built an image here, or the first that works."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from tooling.engines.interface import Engine, ImageError, Runner, run_captured
from tooling.engines.record import read_build_record

ENGINE_NAMES = ("docker", "podman", "buildah")


def engine_class(name: str) -> type[Engine]:
    from tooling.engines import buildah, docker, podman

    classes: dict[str, type[Engine]] = {
        "docker": docker.Docker,
        "podman": podman.Podman,
        "buildah": buildah.Buildah,
    }
    return classes[name]


def get(name: str, env: Mapping[str, str], run: Runner = run_captured) -> Engine:
    if name not in ENGINE_NAMES:
        raise ImageError(f"unknown container engine {name!r}: use one of {', '.join(ENGINE_NAMES)}")
    return engine_class(name)(env, run)


def docker_engine_answers(run: Runner = run_captured) -> bool:
    """The docker client alone is not enough: its daemon must answer."""
    try:
        return run(["docker", "info"]).returncode == 0
    except OSError:
        return False


def choose_engine(
    requested: str | None,
    env: Mapping[str, str],
    which: Callable[[str], str | None] = shutil.which,
    docker_answers: Callable[[], bool] = docker_engine_answers,
) -> str:
    """--engine, else CONTAINER_ENGINE, else the first of docker, podman, buildah that works."""
    wanted = requested or env.get("CONTAINER_ENGINE") or None
    if wanted:
        if wanted not in ENGINE_NAMES:
            raise ImageError(
                f"unknown container engine {wanted!r}: use one of {', '.join(ENGINE_NAMES)}"
            )
        if which(wanted) is None:
            raise ImageError(f"container engine {wanted!r} was requested but is not installed")
        return wanted
    for name in present_engines(which, docker_answers):
        return name
    raise ImageError(
        "no container engine found: install docker, podman or buildah, "
        "or name one with --engine / CONTAINER_ENGINE"
    )


def present_engines(
    which: Callable[[str], str | None] = shutil.which,
    docker_answers: Callable[[], bool] = docker_engine_answers,
) -> list[str]:
    return [
        name
        for name in ENGINE_NAMES
        if which(name) is not None and (name != "docker" or docker_answers())
    ]


def locate(
    image: str,
    root: Path,
    requested: str | None,
    env: Mapping[str, str],
    which: Callable[[str], str | None] = shutil.which,
    docker_answers: Callable[[], bool] = docker_engine_answers,
    run: Runner = run_captured,
) -> Engine:
    """The engine holding `image`: --engine / CONTAINER_ENGINE, else the one that built it
    here, else the only engine present that has it."""
    wanted = requested or env.get("CONTAINER_ENGINE") or None
    if wanted:
        return get(choose_engine(wanted, env, which, docker_answers), env, run)
    built = read_build_record(root).get(image, {})
    if built.get("engine") in ENGINE_NAMES and which(built["engine"]) is not None:
        engine = get(built["engine"], env, run)
        found = engine.inspect(image)
        if found is not None and found.id == built.get("image_id"):
            return engine
    present = present_engines(which, docker_answers)
    holding = [name for name in present if get(name, env, run).inspect(image) is not None]
    if len(holding) == 1:
        return get(holding[0], env, run)
    if not holding:
        searched = ", ".join(present) or "no engine (none is installed)"
        raise ImageError(f"image {image} not found by {searched}: build it with `invoke build`")
    raise ImageError(
        f"image {image} is in {' and '.join(holding)}, and this project did not build it: "
        "choose one with --engine"
    )
