"""tooling.shipping.image_config: the config verify expects, from the pinned base's and the Dockerfile.

The project's own Dockerfile (its slug rendered as `app`) on a base image served
by a fake registry: the config a build writes passes, each tampered field is
one line naming it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tooling import base_image
from tooling.base_image import BaseConfigError, PinnedBase, pinned_base
from tooling.project import Project
from tooling.shipping import dockerfile, image_config
from tooling.shipping.image_config import ImageConfigError, checked_config, config_problems

TEMPLATE_DOCKERFILE = (
    Path(__file__).resolve().parents[2] / "{{cookiecutter.project_slug}}" / "Dockerfile"
)
DOCKERFILE = TEMPLATE_DOCKERFILE.read_text().replace("{{ cookiecutter.project_slug }}", "app")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": [f"PATH={SYSTEM_PATH}", "LANG=C.UTF-8"], "Cmd": ["python3"]},
    "rootfs": {"type": "layers", "diff_ids": []},
}
SECONDS = 10**9


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class FakeRegistry:
    """Blobs by digest, served as `skopeo inspect --raw [--config]` would; records each call."""

    def __init__(self, base_config: dict[str, Any] = BASE_CONFIG) -> None:
        self.blobs: dict[str, bytes] = {}
        self.calls: list[list[str]] = []
        config = self.add(base_config)
        manifest = self.add({"schemaVersion": 2, "config": {"digest": config}, "layers": []})
        self.manifest = manifest
        other = self.add({"schemaVersion": 2, "config": {"digest": self.add({})}, "layers": []})
        self.index = self.add(
            {
                "schemaVersion": 2,
                "manifests": [
                    {"digest": other, "platform": {"os": "linux", "architecture": "arm64"}},
                    {"digest": manifest, "platform": {"os": "linux", "architecture": "amd64"}},
                ],
            }
        )
        self.pin = f"registry.example/python:3.11-slim@{self.index}"

    def add(self, document: dict[str, Any]) -> str:
        data = json.dumps(document).encode()
        self.blobs[digest(data)] = data
        return digest(data)

    def __call__(self, argv: Sequence[str]) -> bytes:
        self.calls.append(list(argv))
        served = self.blobs[argv[-1].rpartition("@")[2]]
        if "--config" in argv:  # the config of the manifest the reference names
            return self.blobs[json.loads(served)["config"]["digest"]]
        return served


def built_config(pin: str) -> dict[str, Any]:
    """What buildah writes for the runtime stage on BASE_CONFIG (by hand, from its rules)."""
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Hostname": "",
            "User": "1000",
            "Env": [
                f"PATH=/opt/venv/bin:{SYSTEM_PATH}",
                "LANG=C.UTF-8",
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONUNBUFFERED=1",
            ],
            "Entrypoint": ["/opt/venv/bin/app"],
            "Cmd": None,  # the base's python3 goes with the ENTRYPOINT
            "WorkingDir": "",
            "Labels": {
                "io.buildah.version": "1.28.2",
                "lockstep.lock-digest": "sha256:" + "1" * 64,
                "lockstep.tier": "sniper",
                "org.opencontainers.image.base.name": pin,
                "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
                "org.opencontainers.image.revision": "abc",
                "org.opencontainers.image.source": "",
                "org.opencontainers.image.title": "app",
                "org.opencontainers.image.version": "0.1.0",
            },
            "Healthcheck": {
                "Test": ["CMD", "/opt/venv/bin/app", "health"],
                "Interval": 30 * SECONDS,
                "Timeout": 5 * SECONDS,
                "StartPeriod": 5 * SECONDS,
                "Retries": 3,
            },
        },
    }


def known(pin: str) -> dict[str, str]:
    return {"BASE_IMAGE": pin, "PYTHON_VERSION": "3.11", "TIER": "sniper"}


def check(found: dict[str, Any], registry: FakeRegistry | None = None) -> list[str]:
    registry = registry or FakeRegistry()
    fetched = base_image.base_config(registry.pin, found, registry)
    return config_problems(DOCKERFILE, known(registry.pin), found, fetched)


def pinning(root: Path, pin: str) -> Project:
    """A project whose sniper tier is built on `pin`."""
    return Project(root, "3.11", {"tool": {"lockstep": {"base-images": {"sniper": pin}}}})


def unfetched(pin: str, fault: str) -> str:
    return (
        f"the base image {pin} cannot be fetched to check the config and the layers against "
        f"it: {fault}"
    )


def test_the_config_a_build_writes_matches_what_the_dockerfile_makes_of_the_base() -> None:
    registry = FakeRegistry()
    assert check(built_config(registry.pin), registry) == []
    # the index, the amd64 manifest, its config: each fetched by digest, with TLS
    fetched = [call[-1].rpartition("@")[2] for call in registry.calls]
    assert fetched[0] == registry.index and len(fetched) == 3
    assert all("--tls-verify=true" in call for call in registry.calls)
    assert fetched[1:] == [registry.manifest, registry.manifest]  # skopeo names a manifest
    assert "--config" in registry.calls[-1]


def tampered(change: dict[str, Any]) -> dict[str, Any]:
    registry = FakeRegistry()
    found = built_config(registry.pin)
    found["config"].update(copy.deepcopy(change))
    return found


def with_env(*extra: str) -> dict[str, Any]:
    return {"Env": [*built_config("")["config"]["Env"], *extra]}


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (with_env("PYTHONPATH=/tmp/x"), 'config Env PYTHONPATH: expected (none), found "/tmp/x"'),
        (with_env("LD_PRELOAD=/x.so"), 'config Env LD_PRELOAD: expected (none), found "/x.so"'),
        (with_env("PYTHONSTARTUP=/x"), 'config Env PYTHONSTARTUP: expected (none), found "/x"'),
        (with_env("PYTHONHOME=/x"), 'config Env PYTHONHOME: expected (none), found "/x"'),
        (
            {"Env": [f"PATH=/tmp:{SYSTEM_PATH}", *built_config("")["config"]["Env"][1:]]},
            f'config Env PATH: expected "/opt/venv/bin:{SYSTEM_PATH}", found "/tmp:{SYSTEM_PATH}"',
        ),
        (with_env("LANG=C"), "config Env LANG: set 2 times"),
        (
            {"Entrypoint": ["sh", "-c", "curl x|sh; /opt/venv/bin/app"]},
            'config Entrypoint: expected ["/opt/venv/bin/app"], '
            'found ["sh", "-c", "curl x|sh; /opt/venv/bin/app"]',
        ),
        ({"Cmd": ["python3"]}, 'config Cmd: expected (none), found ["python3"]'),
        ({"User": "0"}, 'config User: expected "1000", found "0"'),
        ({"WorkingDir": "/tmp/x"}, 'config WorkingDir: expected (none), found "/tmp/x"'),
        (
            {"Healthcheck": {"Test": ["CMD-SHELL", "curl x|sh"], "Retries": 3}},
            'config Healthcheck: expected {"Interval": 30000000000, "Retries": 3, '
            '"StartPeriod": 5000000000, "Test": ["CMD", "/opt/venv/bin/app", "health"], '
            '"Timeout": 5000000000}, found {"Retries": 3, "Test": ["CMD-SHELL", "curl x|sh"]}',
        ),
        (
            {"OnBuild": ["RUN curl x|sh"]},
            'config OnBuild: expected (none), found ["RUN curl x|sh"]',
        ),
        ({"Shell": ["/tmp/sh", "-c"]}, 'config Shell: expected (none), found ["/tmp/sh", "-c"]'),
        (
            {"Volumes": {"/opt/venv": {}}},
            'config Volumes: expected (none), found {"/opt/venv": {}}',
        ),
        ({"StopSignal": "SIGKILL"}, 'config StopSignal: expected (none), found "SIGKILL"'),
        (
            {"ExposedPorts": {"22/tcp": {}}},
            'config ExposedPorts: expected (none), found {"22/tcp": {}}',
        ),
        ({"Tty": True, "Runtime": "x"}, 'config Runtime: expected (none), found "x"'),
    ],
)
def test_each_tampered_field_is_one_line_naming_it(change: dict[str, Any], line: str) -> None:
    assert check(tampered(change)) == [line]


def test_labels_are_the_dockerfile_keys_and_the_values_verify_knows() -> None:
    registry = FakeRegistry()
    found = built_config(registry.pin)
    labels = found["config"]["Labels"]
    labels["org.opencontainers.image.revision"] = "any commit"  # a build argument: any value
    labels["org.opencontainers.image.base.name"] = "evil/python@sha256:" + "0" * 64
    labels["lockstep.tier"] = "hunter"
    labels["extra"] = "x"
    del labels["org.opencontainers.image.title"]
    assert check(found, registry) == [
        'config Labels extra: expected none, found "x"',
        'config Labels lockstep.tier: expected "sniper", found "hunter"',
        f'config Labels org.opencontainers.image.base.name: expected "{registry.pin}", '
        f'found "evil/python@sha256:{"0" * 64}"',
        "config Labels org.opencontainers.image.title: expected it, found none",
    ]


def test_what_the_base_sets_is_expected_too() -> None:
    base = copy.deepcopy(BASE_CONFIG)
    base["config"].update(WorkingDir="/srv", StopSignal="SIGINT", Labels={"vendor": "x"})
    registry = FakeRegistry(base)
    found = built_config(registry.pin)
    assert check(found, registry) == [
        'config WorkingDir: expected "/srv", found (none)',
        'config StopSignal: expected "SIGINT", found (none)',
        "config Labels vendor: expected it, found none",
    ]
    found["config"].update(WorkingDir="/srv", StopSignal="SIGINT")
    found["config"]["Labels"]["vendor"] = "x"
    assert check(found, registry) == []


def test_a_base_that_is_not_what_its_digest_names_is_refused(tmp_path: Path) -> None:
    registry = FakeRegistry()
    config_digest = next(
        each for each, data in registry.blobs.items() if json.loads(data) == BASE_CONFIG
    )
    registry.blobs[config_digest] = json.dumps({"config": {"Env": ["PYTHONPATH=/x"]}}).encode()
    with pytest.raises(BaseConfigError) as raised:
        pinned_base(pinning(tmp_path, registry.pin), "sniper", BASE_CONFIG, True, registry)
    assert str(raised.value) == unfetched(
        registry.pin,
        f"the registry of registry.example/python served a blob that is not {config_digest}",
    )


def test_an_unpinned_base_or_a_missing_platform_is_one_line(tmp_path: Path) -> None:
    registry = FakeRegistry()
    with pytest.raises(BaseConfigError) as raised:
        pinned_base(Project(tmp_path, "3.11", {}), "sniper", BASE_CONFIG, True, registry)
    assert str(raised.value) == (
        "base image python:3.11-slim is not pinned in base-images.lock: run `invoke "
        "base-image --refresh` to pin its digest; verify checks the config and the layers "
        "below /opt/venv against that pin"
    )
    assert registry.calls == []  # nothing the image says is fetched
    with pytest.raises(BaseConfigError, match=r"python:3\.11-slim is not pinned by digest"):
        base_image.base_config("python:3.11-slim", BASE_CONFIG, registry)
    found = {**built_config(registry.pin), "architecture": "s390x"}
    with pytest.raises(BaseConfigError, match=r"has no linux/s390x image$"):
        pinned_base(pinning(tmp_path, registry.pin), "sniper", found, True, registry)


def test_a_base_the_registry_refuses_is_one_line(tmp_path: Path) -> None:
    def refused(argv: Sequence[str]) -> bytes:
        return base_image.skopeo_bytes(["sh", "-c", "echo 'manifest unknown' >&2; exit 1", "x"])

    pin = FakeRegistry().pin
    with pytest.raises(BaseConfigError) as raised:
        pinned_base(pinning(tmp_path, pin), "sniper", BASE_CONFIG, True, refused)
    assert str(raised.value) == unfetched(pin, "cannot pull x: x is not in the registry")


def test_a_base_unreadable_once_fetched_is_one_line() -> None:
    registry = FakeRegistry()
    registry.blobs[registry.index] = b"[]"
    registry.pin = registry.pin.replace(registry.index, digest(b"[]"))
    registry.blobs[digest(b"[]")] = b"[]"
    with pytest.raises(BaseConfigError, match=r"^the base image .*: unreadable manifest"):
        base_image.base_config(registry.pin, BASE_CONFIG, registry)


def test_the_base_is_fetched_once_with_the_tls_verify_asked() -> None:
    registry = FakeRegistry()
    base_image.base_config(registry.pin, BASE_CONFIG, registry, tls_verify=False)
    assert len(registry.calls) == 3
    assert all("--tls-verify=false" in call for call in registry.calls)


def test_an_image_the_dockerfile_builds_on_another_base_is_one_line() -> None:
    registry = FakeRegistry()
    other = DOCKERFILE.replace("FROM ${BASE_IMAGE} AS bare", "FROM python:3.12 AS bare")
    with pytest.raises(ImageConfigError) as raised:
        config_problems(other, known(registry.pin), built_config(registry.pin), BASE_CONFIG)
    assert str(raised.value) == (
        f"the Dockerfile builds the image on python:3.12, not on the base base-images.lock pins "
        f"({registry.pin}): build FROM ${{BASE_IMAGE}}"
    )


def test_a_loopback_base_is_fetched_without_tls_and_without_its_tag() -> None:
    registry = FakeRegistry()
    registry.pin = registry.pin.replace("registry.example", "127.0.0.1:5000")
    assert check(built_config(registry.pin), registry) == []
    assert all("--tls-verify=false" in call for call in registry.calls)
    assert registry.calls[0][-1] == f"docker://127.0.0.1:5000/python@{registry.index}"


# --- the Dockerfile rules, one at a time ---------------------------------------------------


def expected(text: str, base: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    parsed = dockerfile.parse(text)
    _, chain = image_config.base_reference(parsed, {})
    return image_config.expected_config(chain, base or {"Cmd": ["python3"]}, {})


def test_env_is_expanded_against_the_base_and_earlier_env() -> None:
    config, problems = expected(
        "FROM b\n"
        "ARG NAME=x\n"
        "ENV A=\"${NAME}-$NAME\" B='$A' C=${UNSET:-fallback} D=${A:+set} \\\n"
        "    E=a\\ b\n"
        "ENV OLD two words\n"
        "ENV F=${A:+set}\n",
        {"Env": ["PATH=/bin"]},
    )
    assert problems == []
    assert config["Env"] == [
        "PATH=/bin", "A=x-x", "B=$A", "C=fallback", "D=", "E=a b", "OLD=two words", "F=set",
    ]  # fmt: skip
    # D: one ENV's values see the environment from before it, as in the engines


def test_the_old_label_key_value_form_is_one_label_as_docker_reads_it() -> None:
    config, problems = expected(
        "FROM b\n"
        "ARG REVISION\n"
        'LABEL vendor "ACME Inc." and\tfriends\n'
        "LABEL\tmaintainer\t  a b\n"
        "LABEL revision $REVISION\n"
        'LABEL new=form other="x y"\n'
    )
    assert problems == []
    assert config["Labels"] == {
        "vendor": "ACME Inc. and\tfriends",
        "maintainer": "a b",
        "revision": None,  # a build argument: compared by its key only
        "new": "form",
        "other": "x y",
    }
    with pytest.raises(ImageConfigError, match=r"^Dockerfile:2: LABEL lonely: write LABEL KEY="):
        expected("FROM b\nLABEL lonely\n")


def test_a_build_argument_verify_cannot_know_is_named() -> None:
    _, problems = expected("FROM b\nARG REVISION\nENV R=$REVISION\n")
    assert problems == [
        "Dockerfile:3: ENV uses the build argument REVISION, whose value verify cannot know"
    ]


def test_entrypoint_empties_the_inherited_cmd_but_not_one_set_in_the_stage() -> None:
    config, _ = expected('FROM b\nENTRYPOINT ["/app"]\n')
    assert config["Entrypoint"] == ["/app"] and config["Cmd"] is None
    config, _ = expected('FROM b\nCMD ["serve"]\nENTRYPOINT /app --flag\n')
    assert config["Entrypoint"] == ["/bin/sh", "-c", "/app --flag"]
    assert config["Cmd"] == ["serve"]


def test_later_stages_follow_their_from_chain() -> None:
    config, _ = expected(
        "FROM b AS one\nWORKDIR /srv\nFROM b AS other\nUSER 5\nFROM one\nWORKDIR app\n"
        'HEALTHCHECK NONE\nEXPOSE 80 90-91/udp\nVOLUME ["/data"]\nSTOPSIGNAL SIGINT\n'
    )
    assert config["WorkingDir"] == "/srv/app" and "User" not in config
    assert config["Healthcheck"] == {"Test": ["NONE"]}
    assert config["ExposedPorts"] == {"80/tcp": {}, "90/udp": {}, "91/udp": {}}
    assert config["Volumes"] == {"/data": {}} and config["StopSignal"] == "SIGINT"


def test_what_engines_do_differently_is_refused_not_guessed() -> None:
    with pytest.raises(
        ImageConfigError, match=r"^Dockerfile:3: ENTRYPOINT in shell form after SHELL"
    ):
        expected('FROM b\nSHELL ["/bin/bash", "-c"]\nENTRYPOINT run\n')
    with pytest.raises(
        dockerfile.DockerfileError, match="Dockerfile:2: verify does not read heredocs"
    ):
        expected("FROM b\nRUN <<EOF\necho\nEOF\n")


def test_checked_config_reads_this_checkout(tmp_path: Path) -> None:
    registry = FakeRegistry()
    project = pinning(tmp_path, registry.pin)
    base = pinned_base(project, "sniper", BASE_CONFIG, True, registry)
    assert base == PinnedBase(registry.pin, BASE_CONFIG)
    assert checked_config(project, "sniper", built_config(registry.pin), base) == [
        "cannot read the Dockerfile to check the config: No such file or directory"
    ]
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    assert checked_config(project, "sniper", built_config(registry.pin), base) == []
