"""Container engines behind one interface: build, inspect, run, push, load.

One module per engine (docker.py, podman.py, buildah.py), as pip-audit keeps one
module per vulnerability service. Everything else (tasks.py, the smoke test,
base image pins) speaks to an `Engine` and never builds an engine's command line
itself. The engine that built an image is recorded in dist/images/built.json, so
the smoke test checks an image where it was built, whatever else is installed.
"""

from __future__ import annotations

from tooling.engines.choice import (
    ENGINE_NAMES,
    choose_engine,
    docker_engine_answers,
    engine_class,
    get,
    locate,
    present_engines,
)
from tooling.engines.interface import (
    BuildPlan,
    BuildRequest,
    Engine,
    ImageError,
    ImageFacts,
    Runner,
    Secrets,
    healthcheck_test,
    parse_json,
    run_captured,
    stream,
)
from tooling.engines.record import (
    BUILD_RECORD,
    built_platforms,
    read_build_record,
    record_build,
    record_index,
)
from tooling.engines.refusals import (
    REGISTRY_FAILURES,
    RUNTIME_REFUSALS,
    last_line,
    registry_failure,
)

__all__ = [
    "BUILD_RECORD",
    "ENGINE_NAMES",
    "REGISTRY_FAILURES",
    "RUNTIME_REFUSALS",
    "BuildPlan",
    "BuildRequest",
    "Engine",
    "ImageError",
    "ImageFacts",
    "Runner",
    "Secrets",
    "built_platforms",
    "choose_engine",
    "docker_engine_answers",
    "engine_class",
    "get",
    "healthcheck_test",
    "last_line",
    "locate",
    "parse_json",
    "present_engines",
    "read_build_record",
    "record_build",
    "record_index",
    "registry_failure",
    "run_captured",
    "stream",
]
