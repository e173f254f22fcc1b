"""The config `invoke verify` expects of an image: the pinned base's, with the Dockerfile applied.

What runs when the image starts is decided by its config as much as by its
files: the entrypoint and command, the user, the environment (PYTHONPATH,
PYTHONSTARTUP, LD_PRELOAD...), the working directory, the health check.
verify trusts none of what the image says: the expected config is the base
image's (fetched with skopeo by the digest this checkout pins, each manifest
and the config checked against its digest by tooling/base_image/) with the instructions of
this checkout's Dockerfile applied, stage by stage from that base to the
last stage (the one `invoke build` ships). Each field that differs is one
line.

The rules are the engines' own (docker's builder and buildah's imagebuilder
agree on all of them): an ENV's values are expanded against the environment
before it and the stage's ARGs; a shell-form ENTRYPOINT, CMD or HEALTHCHECK runs
`/bin/sh -c`; ENTRYPOINT empties the CMD inherited from the base unless a
CMD came earlier in the same stage; a new HEALTHCHECK replaces the whole
check (options left out are 0); WORKDIR is joined to the one before. Where
they differ (a shell form after SHELL: docker runs the SHELL, buildah
`/bin/sh -c`), verify says so instead of guessing. A build argument whose
value `invoke build` chooses (the revision, the version...) cannot be known:
a label set from one is compared by its key, any other field using one is
named. buildah and podman add their `io.buildah.version` label. A base not
pinned by digest, or that cannot be fetched, is one line: nothing verified.

The Dockerfile is read by tooling/shipping/dockerfile.py.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tooling import ToolingError
from tooling.base_image import PinnedBase
from tooling.project import Project
from tooling.shipping.dockerfile import (
    Dockerfile,
    DockerfileError,
    Instruction,
    Stage,
    expand,
    json_form,
    pairs,
    parse,
    raw_pairs,
    split_words,
)

# The fields an engine reads when it starts a container, or a build FROM the image.
COMPARED = (
    "User", "Env", "Entrypoint", "Cmd", "WorkingDir", "Healthcheck",
    "ExposedPorts", "Volumes", "StopSignal", "Shell", "OnBuild",
)  # fmt: skip
# Written by engines but read by none of them when a container starts; Image is docker's
# parent image ID, ArgsEscaped matters on Windows only.
NOT_READ = {
    "Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "Tty",
    "OpenStdin", "StdinOnce", "Image", "ArgsEscaped", "NetworkDisabled", "MacAddress",
}  # fmt: skip
# buildah and podman label every image they build with their version; docker does not.
ENGINE_LABELS = {"io.buildah.version"}
SHELL_FORM = ["/bin/sh", "-c"]
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
NANOSECONDS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
NANOSECONDS["h"] = 3600 * 10**9
HEALTHCHECK_DURATIONS = {
    "interval": "Interval",
    "timeout": "Timeout",
    "start-period": "StartPeriod",
    "start-interval": "StartInterval",
}
# What `invoke build` passes whose value verify does not know (labels, timestamps).
PASSED_BY_BUILD = {
    "SOURCE_DATE_EPOCH",
    "VERSION",
    "REVISION",
    "SOURCE_URL",
    "LOCK_DIGEST",
    "CREATED",
}
HEALTHCHECK_FORM = re.compile(r"((?:--\S+\s+)*)(CMD|NONE)\b\s*(.*)", re.IGNORECASE | re.DOTALL)


class ImageConfigError(ToolingError):
    pass


class UnknownValue(ImageConfigError):
    """A word uses a build argument whose value the build chose and verify cannot know."""


# --- applying the instructions ------------------------------------------------------------


@dataclass
class Build:
    """One stage being built: its config, the ARGs in scope and whether CMD was set."""

    config: dict[str, Any]
    known: Mapping[str, str]  # build arguments whose value verify knows
    args: dict[str, str | None] = field(default_factory=dict)  # None: the build's, unknown
    cmd_set: bool = False

    def env(self) -> dict[str, str]:
        return env_of(self.config.get("Env"))

    def lookup(self, name: str) -> str | None:
        environment = self.env()
        if name in environment:  # ENV wins over ARG, in the engines too
            return environment[name]
        if name in self.args:
            value = self.args[name]
            if value is None:
                raise UnknownValue(name)
            return value
        return None

    def command(self, arguments: str, keyword: str) -> list[str]:
        listed = json_form(arguments)
        if listed is not None:
            return listed
        if self.config.get("Shell"):
            raise ImageConfigError(
                f"{keyword} in shell form after SHELL: docker runs it with the SHELL, buildah "
                f'with /bin/sh -c; write it in JSON form ({keyword} ["..."])'
            )
        return [*SHELL_FORM, arguments]


def env_of(listed: object) -> dict[str, str]:
    """Env as a dict (KEY=VALUE entries; the last of a repeated KEY)."""
    found = {}
    for entry in listed or [] if isinstance(listed, list) else []:
        key, _, value = str(entry).partition("=")
        found[key] = value
    return found


def set_env(build: Build, values: list[tuple[str, str]]) -> None:
    environment = build.env()
    environment.update(values)
    build.config["Env"] = [f"{key}={value}" for key, value in environment.items()]


def healthcheck(build: Build, arguments: str) -> dict[str, Any]:
    form = HEALTHCHECK_FORM.fullmatch(arguments)
    if form is None:
        raise ImageConfigError(f"HEALTHCHECK {arguments}: expected [OPTIONS] CMD ... or NONE")
    flags, kind, rest = form.groups()
    options: dict[str, Any] = {}
    for flag in flags.split():
        name, _, value = flag[2:].partition("=")
        if name in HEALTHCHECK_DURATIONS:
            options[HEALTHCHECK_DURATIONS[name]] = duration(value)
        elif name == "retries" and value.isdigit():
            options["Retries"] = int(value)
        else:
            raise ImageConfigError(f"HEALTHCHECK --{name}={value} is not an option verify reads")
    if kind.upper() == "NONE":
        return {"Test": ["NONE"]}
    command = build.command(rest.strip(), "HEALTHCHECK")
    test = ["CMD-SHELL", command[-1]] if json_form(rest.strip()) is None else ["CMD", *command]
    return {"Test": test, **options}


def duration(text: str) -> int:
    """A Go duration (30s, 1m30s, 500ms) in nanoseconds."""
    parts = DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ImageConfigError(f"HEALTHCHECK duration {text!r} is not like 30s or 1m30s")
    return int(sum(float(number) * NANOSECONDS[unit] for number, unit in parts))


def apply(build: Build, step: Instruction) -> None:
    """One instruction's effect on the config, as docker's and buildah's builders apply it."""
    if step.keyword in NO_CONFIG:
        return
    if step.keyword not in INSTRUCTIONS:
        raise ImageConfigError(f"Dockerfile:{step.line}: {step.keyword} is not an instruction")
    try:
        INSTRUCTIONS[step.keyword](build, step.arguments)
    except UnknownValue:
        raise
    except (ImageConfigError, DockerfileError) as error:
        raise ImageConfigError(f"Dockerfile:{step.line}: {error}") from None


def arg(build: Build, arguments: str) -> None:
    for name, default in pairs(arguments, build.lookup, "ARG"):
        build.args[name] = argument_value(name, default, build.known)


def env(build: Build, arguments: str) -> None:
    set_env(build, pairs(arguments, build.lookup, "ENV"))


def label(build: Build, arguments: str) -> None:
    build.config["Labels"] = {
        **(build.config.get("Labels") or {}),
        **dict(label_pairs(build, arguments)),
    }


def user(build: Build, arguments: str) -> None:
    build.config["User"] = expand(arguments, build.lookup)


def workdir(build: Build, arguments: str) -> None:
    here = str(build.config.get("WorkingDir") or "/")
    build.config["WorkingDir"] = posixpath.normpath(
        posixpath.join(here, expand(arguments, build.lookup))
    )


def entrypoint(build: Build, arguments: str) -> None:
    """ENTRYPOINT [] clears it; the CMD inherited goes unless CMD came earlier in this stage
    (docker's builder and buildah's imagebuilder: `if !cmdSet { Cmd = nil }`)."""
    build.config["Entrypoint"] = build.command(arguments, "ENTRYPOINT") or None
    if not build.cmd_set:
        build.config["Cmd"] = None


def cmd(build: Build, arguments: str) -> None:
    build.config["Cmd"] = build.command(arguments, "CMD")
    build.cmd_set = True


def health(build: Build, arguments: str) -> None:
    build.config["Healthcheck"] = healthcheck(build, arguments)


def expose(build: Build, arguments: str) -> None:
    ports = dict(build.config.get("ExposedPorts") or {})
    for word in split_words(arguments):
        ports.update({port: {} for port in exposed(expand(word, build.lookup))})
    build.config["ExposedPorts"] = ports


def volume(build: Build, arguments: str) -> None:
    listed = json_form(arguments)
    paths = listed if listed is not None else split_words(arguments)
    volumes = dict(build.config.get("Volumes") or {})
    volumes.update({expand(path, build.lookup): {} for path in paths})
    build.config["Volumes"] = volumes


def stopsignal(build: Build, arguments: str) -> None:
    build.config["StopSignal"] = expand(arguments, build.lookup)


def shell(build: Build, arguments: str) -> None:
    listed = json_form(arguments)
    if not listed:
        raise ImageConfigError(f"SHELL {arguments}: SHELL takes a JSON list")
    build.config["Shell"] = listed


def onbuild(build: Build, arguments: str) -> None:
    build.config["OnBuild"] = [*(build.config.get("OnBuild") or []), arguments]


INSTRUCTIONS: dict[str, Callable[[Build, str], None]] = {
    "ARG": arg, "ENV": env, "LABEL": label, "USER": user, "WORKDIR": workdir,
    "ENTRYPOINT": entrypoint, "CMD": cmd, "HEALTHCHECK": health, "EXPOSE": expose,
    "VOLUME": volume, "STOPSIGNAL": stopsignal, "SHELL": shell, "ONBUILD": onbuild,
}  # fmt: skip
NO_CONFIG = {"RUN", "COPY", "ADD", "MAINTAINER"}  # MAINTAINER sets the author, not the config


def argument_value(name: str, default: str, known: Mapping[str, str]) -> str | None:
    """A build argument's value: known to verify, chosen by `invoke build` (None), or the default."""
    if name in known:
        return known[name]
    return None if name in PASSED_BY_BUILD else default


def label_pairs(build: Build, arguments: str) -> list[tuple[str, str | None]]:
    """LABEL's pairs (KEY=VALUE words, or the old `LABEL KEY VALUE` form); None as the value
    of one set from a build argument verify cannot know."""
    found: list[tuple[str, str | None]] = []
    for key, value in raw_pairs(arguments, "LABEL"):
        try:
            found.append((expand(key, build.lookup), expand(value or "", build.lookup)))
        except UnknownValue:
            found.append((expand(key, build.lookup), None))
    return found


def exposed(port: str) -> list[str]:
    """80 -> 80/tcp; 8000-8001/udp -> 8000/udp, 8001/udp."""
    number, _, protocol = port.partition("/")
    first, _, last = number.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise ImageConfigError(f"EXPOSE {port}: not a port")
    return [f"{each}/{protocol or 'tcp'}" for each in range(int(first), int(last or first) + 1)]


# --- the chain of stages from the base image ----------------------------------------------


def base_reference(dockerfile: Dockerfile, known: Mapping[str, str]) -> tuple[str, list[Stage]]:
    """(the image the last stage is built on at the bottom, the stages from there to the last)."""
    global_args: dict[str, str | None] = {}
    for each in dockerfile.global_args:
        for name, default in pairs(each.arguments, lambda _: None, "ARG"):
            global_args[name] = known.get(name, default)

    def lookup(name: str) -> str | None:
        return global_args.get(name)

    chain: list[Stage] = []
    stage = dockerfile.stages[-1]
    while True:
        chain.insert(0, stage)
        image = expand(stage.image, lookup)
        earlier = dockerfile.stages[: dockerfile.stages.index(stage)]
        named = [each for each in earlier if each.name.lower() == image.lower()]
        if not named:
            return image, chain
        stage = named[-1]


def expected_config(
    chain: list[Stage], base: Mapping[str, Any], known: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """(the config the chain of stages makes of the base's, the problems met on the way)."""
    config = copy.deepcopy(dict(base))
    problems = []
    if config.get("OnBuild"):
        problems.append(
            f"the base image has ONBUILD triggers {config['OnBuild']}: verify does not replay them"
        )
    config["OnBuild"] = None  # a build runs the base's triggers and keeps none
    for stage in chain:
        build = Build(config, known)
        for step in stage.instructions:
            try:
                apply(build, step)
            except UnknownValue as unknown:
                problems.append(
                    f"Dockerfile:{step.line}: {step.keyword} uses the build argument {unknown}, "
                    "whose value verify cannot know"
                )
        config = build.config
    return config, problems


# --- comparing ----------------------------------------------------------------------------


def empty(value: object) -> bool:
    return value is None or value in ("", 0, False, [], {})


def normal(field_name: str, value: object) -> object:
    """A field's value with the engines' equivalent spellings of "nothing" made one."""
    if field_name == "WorkingDir" and value == "/":
        return None
    if field_name == "Healthcheck" and isinstance(value, dict):
        value = {key: part for key, part in value.items() if not empty(part)}
    return None if empty(value) else value


def shown(value: object) -> str:
    return "(none)" if value is None else json.dumps(value, sort_keys=True)


def differences(expected: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """One line per field (per variable of Env, per key of Labels) that differs."""
    problems = []
    for name in COMPARED:
        if name == "Env":
            problems += env_differences(expected.get("Env"), found.get("Env"))
            continue
        want, got = normal(name, expected.get(name)), normal(name, found.get(name))
        if want != got:
            problems.append(f"config {name}: expected {shown(want)}, found {shown(got)}")
    problems += label_differences(expected.get("Labels") or {}, found.get("Labels") or {})
    for name in sorted(set(found) - set(COMPARED) - NOT_READ - {"Labels"}):
        if not empty(found[name]) and found[name] != expected.get(name):
            problems.append(f"config {name}: expected {shown(expected.get(name))}, "
                            f"found {shown(found[name])}")  # fmt: skip
    return problems


def env_differences(expected: object, found: object) -> list[str]:
    want, got = env_of(expected), env_of(found)
    problems = []
    entries = found if isinstance(found, list) else []
    listed = [str(entry).partition("=")[0] for entry in entries]
    repeated = {each for each in listed if listed.count(each) > 1}
    for name in sorted(repeated):
        problems.append(f"config Env {name}: set {listed.count(name)} times")
    for name in sorted((set(want) | set(got)) - repeated):
        if want.get(name) != got.get(name):
            problems.append(
                f"config Env {name}: expected {shown(want.get(name))}, found {shown(got.get(name))}"
            )
    return problems


def label_differences(expected: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    problems = []
    for key in sorted(set(expected) | set(found)):
        if key not in found:
            problems.append(f"config Labels {key}: expected it, found none")
        elif key not in expected:
            if key not in ENGINE_LABELS:
                problems.append(f"config Labels {key}: expected none, found {shown(found[key])}")
        elif expected[key] is not None and expected[key] != found[key]:
            problems.append(
                f"config Labels {key}: expected {shown(expected[key])}, found {shown(found[key])}"
            )
    return problems


def config_problems(
    dockerfile_text: str,
    known: Mapping[str, str],
    image_config: Mapping[str, Any],
    base_config: Mapping[str, Any],
) -> list[str]:
    """One line per difference from what the Dockerfile makes of `base_config`.

    `known`: the build arguments verify knows (BASE_IMAGE as this checkout pins it, the
    base `base_config` was fetched by...).
    """
    dockerfile = parse(dockerfile_text)
    base, chain = base_reference(dockerfile, known)
    if base != known["BASE_IMAGE"]:
        raise ImageConfigError(
            f"the Dockerfile builds the image on {base}, not on the base base-images.lock "
            f"pins ({known['BASE_IMAGE']}): build FROM ${{BASE_IMAGE}}"
        )
    expected, problems = expected_config(chain, base_config.get("config") or {}, known)
    return [*problems, *differences(expected, image_config.get("config") or {})]


def checked_config(
    project: Project, tier: str, image_config: Mapping[str, Any], base: PinnedBase
) -> list[str]:
    """One line per difference: `image_config` against this checkout's Dockerfile on the base
    image it pins for `tier` (fetched by tooling/base_image/)."""
    known = {"BASE_IMAGE": base.pin, "PYTHON_VERSION": project.python_version, "TIER": tier}
    try:
        text = (project.root / "Dockerfile").read_text(encoding="utf-8")
        return config_problems(text, known, image_config, base.config)
    except OSError as error:
        return [f"cannot read the Dockerfile to check the config: {error.strerror or error}"]
    except (ImageConfigError, DockerfileError) as error:
        return [str(error)]
