"""Unit tests of the engine adapters: choice, build plans, inspect fields, where an image is,
and one-line runtime refusals (no container engine needed: each engine answers from a script).
"""

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from tooling.engines import (
    BuildRequest,
    ImageError,
    Secrets,
    choose_engine,
    get,
    locate,
    record_build,
)
from tooling.engines.containers_storage import reproducible_config
from tooling.engines.docker import registry_digest
from tooling.engines.interface import BuildPlan, Engine

Answer = tuple[int, str, str]


def which_of(*installed: str) -> Callable[[str], str | None]:
    return lambda name: f"/usr/bin/{name}" if name in installed else None


def scripted(answers: dict[str, Answer], calls: list[list[str]] | None = None):  # type: ignore[no-untyped-def]
    """A runner answering by the first key found in the joined command line (else exit 1)."""

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if calls is not None:
            calls.append(list(argv))
        line = " ".join(argv)
        for key, (code, out, err) in answers.items():
            if key in line:
                return subprocess.CompletedProcess(argv, code, out, err)
        return subprocess.CompletedProcess(argv, 1, "", "no such thing")

    return run


REQUEST = BuildRequest(
    tier="hunter",
    tag="app:hunter",
    python_version="3.11",
    source_date_epoch="1700000000",
    base_image="local/python:3.11",
    secrets=Secrets(ca_bundle=Path("/s/ca.pem"), netrc=Path("/s/netrc")),
    target="dev",
)


def test_detects_docker_podman_buildah_in_that_order() -> None:
    everything = which_of("docker", "podman", "buildah")
    assert choose_engine(None, {}, everything, lambda: True) == "docker"
    assert choose_engine(None, {}, everything, lambda: False) == "podman"
    assert choose_engine(None, {}, which_of("buildah"), lambda: False) == "buildah"


def test_option_and_environment_choose_the_engine() -> None:
    everything = which_of("docker", "podman", "buildah")
    assert (
        choose_engine(None, {"CONTAINER_ENGINE": "buildah"}, everything, lambda: True) == "buildah"
    )
    assert choose_engine("podman", {"CONTAINER_ENGINE": "buildah"}, everything) == "podman"


@pytest.mark.parametrize(
    ("requested", "installed", "message"),
    [
        ("rocket", (), "unknown container engine 'rocket'"),
        ("podman", ("docker",), "'podman' was requested but is not installed"),
        (None, (), "no container engine found"),
    ],
)
def test_engine_errors_are_one_clear_line(
    requested: str | None, installed: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ImageError, match=message):
        choose_engine(requested, {}, which_of(*installed), lambda: False)


@pytest.mark.parametrize("name", ["buildah", "podman"])
def test_buildah_and_podman_keep_the_healthcheck_and_fix_timestamps(name: str) -> None:
    plan = get(name, {"STORAGE_DRIVER": "vfs"}).plan_build(REQUEST, Path("/ctx"))
    argv = plan.argv
    if name == "buildah":  # buildah 1.28 reads the driver only from its flag
        assert argv[:4] == ["buildah", "--storage-driver", "vfs", "build"]
    else:
        assert argv[:2] == ["podman", "build"]
    assert argv[argv.index("--format") + 1] == "docker"
    assert argv[argv.index("--timestamp") + 1] == "1700000000"
    assert "SOURCE_DATE_EPOCH=1700000000" in argv
    assert "PYTHON_VERSION=3.11" in argv and "TIER=hunter" in argv
    assert "BASE_IMAGE=local/python:3.11" in argv
    assert "id=ca,src=/s/ca.pem" in argv and "id=netrc,src=/s/netrc" in argv
    assert not any("ca.pem" in arg for arg in argv if arg.startswith(("PYTHON", "TIER", "BASE")))
    assert argv[-3:] == ["--target", "dev", "/ctx"]
    assert plan.note is None


def docker_answers(client: str, server: str, buildx: bool) -> dict[str, Answer]:
    return {
        "buildx version": (0, "github.com/docker/buildx v0.17.1\n", "") if buildx else (1, "", ""),
        "{{.Client.Version}}": (0, f"{client}\n", ""),
        "{{.Server.Version}}": (0, f"{server}\n", "") if server else (1, "", "no daemon"),
    }


def test_docker_with_buildx_on_a_recent_engine_builds_reproducibly() -> None:
    docker = get("docker", {}, scripted(docker_answers("28.2.2", "28.2.2", buildx=True)))
    plan = docker.plan_build(REQUEST, Path("/ctx"))
    assert plan.argv[:3] == ["docker", "buildx", "build"]
    assert "type=docker,rewrite-timestamp=true" in plan.argv
    assert plan.env["SOURCE_DATE_EPOCH"] == "1700000000"
    assert "SOURCE_DATE_EPOCH=1700000000" in plan.argv
    assert "--format" not in plan.argv and "--timestamp" not in plan.argv
    assert plan.note is None


def test_docker_with_buildx_on_an_older_engine_builds_and_says_ids_differ() -> None:
    docker = get("docker", {}, scripted(docker_answers("24.0.7", "24.0.7", buildx=True)))
    plan = docker.plan_build(REQUEST, Path("/ctx"))
    assert plan.argv[:4] == ["docker", "buildx", "build", "--load"]
    assert not any("rewrite-timestamp" in arg for arg in plan.argv)
    assert plan.note and plan.note.startswith(
        "Docker Engine 24.0.7 cannot rewrite layer timestamps"
    )
    assert "Docker Engine 26+ with the buildx plugin" in plan.note


def test_a_20_10_client_uses_its_built_in_buildkit() -> None:
    docker = get("docker", {}, scripted(docker_answers("20.10.24+dfsg1", "20.10.24", buildx=False)))
    plan = docker.plan_build(REQUEST, Path("/ctx"))
    assert plan.argv[:2] == ["docker", "build"]
    assert "--output" not in plan.argv  # the 20.10 daemon has no "docker" exporter
    assert plan.env["DOCKER_BUILDKIT"] == "1"
    assert plan.note and "image IDs differ between builds" in plan.note


def test_a_recent_client_without_buildx_is_one_line_naming_buildx_and_the_others() -> None:
    docker = get("docker", {}, scripted(docker_answers("28.2.2", "20.10.24", buildx=False)))
    with pytest.raises(ImageError) as raised:
        docker.plan_build(REQUEST, Path("/ctx"))
    assert str(raised.value) == (
        "docker 28.2.2 needs the buildx plugin to build with BuildKit (RUN --mount, build "
        "secrets) and has none: install it (package docker-buildx-plugin), "
        "or build with --engine podman or --engine buildah"
    )


HEALTH = {"Test": ["CMD", "/opt/venv/bin/app", "health"]}


def test_each_engine_reads_its_own_inspect_fields() -> None:
    """podman keeps the health check at the top level, buildah under Docker.config."""
    podman = {
        "Id": "a" * 64,
        "Digest": "sha256:" + "d" * 64,
        "Config": {"User": "1000", "Entrypoint": ["/opt/venv/bin/app"], "Env": ["A=1"]},
        "Healthcheck": HEALTH,
        "Size": 1234,
    }
    docker = {
        "Id": "sha256:" + "b" * 64,
        "RepoDigests": ["r/app@sha256:" + "e" * 64],
        "Config": {"User": "1000", "Entrypoint": ["/opt/venv/bin/app"], "Healthcheck": HEALTH},
        "Size": 99,
    }
    buildah = {
        "FromImageID": "c" * 64,
        "FromImageDigest": "sha256:" + "f" * 64,
        "Docker": {"config": {"User": "1000", "Healthcheck": HEALTH, "Labels": {"t": "x"}}},
        "Manifest": json.dumps({"layers": [{"size": 10}, {"size": 5}]}),
    }
    answers = {
        "podman": {"image inspect": (0, json.dumps([podman]), "")},
        "docker": {"image inspect": (0, json.dumps([docker]), "")},
        "buildah": {"inspect --type image": (0, json.dumps(buildah), "")},
    }
    facts = {name: get(name, {}, scripted(answers[name])).facts("app:x") for name in answers}
    assert {name: found.healthcheck for name, found in facts.items()} == {
        name: HEALTH["Test"] for name in answers
    }
    assert {name: found.user for name, found in facts.items()} == dict.fromkeys(answers, "1000")
    assert (facts["podman"].id, facts["docker"].id, facts["buildah"].id) == (
        "a" * 64,
        "b" * 64,
        "c" * 64,
    )
    assert (facts["podman"].size, facts["docker"].size, facts["buildah"].size) == (1234, 99, 15)
    assert facts["docker"].digest == "sha256:" + "e" * 64
    assert facts["buildah"].labels == {"t": "x"}
    assert facts["podman"].env == ["A=1"]


def test_docker_takes_the_digest_of_the_repository_asked_for() -> None:
    digests = [
        "registry.example/team/python@sha256:" + "1" * 64,
        "python@sha256:" + "2" * 64,
    ]
    assert registry_digest("python:3.11-slim", digests) == "sha256:" + "2" * 64
    assert registry_digest("registry.example/team/python:3.11", digests) == "sha256:" + "1" * 64
    assert registry_digest("127.0.0.1:5000/python", digests[:1]) == "sha256:" + "1" * 64
    assert registry_digest("python:3.11-slim", []) == ""


def test_a_missing_image_is_one_line() -> None:
    with pytest.raises(ImageError, match=r"^image app:x not found by podman: build it with"):
        get("podman", {}, scripted({})).facts("app:x")


def inspect_answer(engine: str, image_id: str) -> dict[str, Answer]:
    found = {"Id": image_id, "FromImageID": image_id, "Manifest": "{}", "Config": {}}
    key = "inspect --type image" if engine == "buildah" else "image inspect"
    return {f"{engine} {key} app:x": (0, json.dumps(found), "")}


def test_the_smoke_test_looks_where_the_image_was_built(tmp_path: Path) -> None:
    """docker and podman installed beside buildah: the recorded engine is asked first."""
    record_build(tmp_path, "app:x", "buildah", "1" * 64, "sniper")
    answers = {**inspect_answer("buildah", "1" * 64), **inspect_answer("docker", "2" * 64)}
    everything = which_of("docker", "podman", "buildah")
    found = locate("app:x", tmp_path, None, {}, everything, lambda: True, scripted(answers))
    assert found.name == "buildah"
    assert locate("app:x", tmp_path, "docker", {}, everything, lambda: True).name == "docker"


def test_without_a_record_the_one_engine_holding_the_image_is_used(tmp_path: Path) -> None:
    everything = which_of("docker", "podman", "buildah")
    podman_only = scripted(inspect_answer("podman", "3" * 64))
    assert locate("app:x", tmp_path, None, {}, everything, lambda: True, podman_only).name == (
        "podman"
    )
    both = scripted({**inspect_answer("podman", "3" * 64), **inspect_answer("buildah", "4" * 64)})
    with pytest.raises(ImageError, match=r"^image app:x is in podman and buildah, .*--engine$"):
        locate("app:x", tmp_path, None, {}, everything, lambda: False, both)
    with pytest.raises(ImageError, match=r"^image app:x not found by podman, buildah: build it"):
        locate("app:x", tmp_path, None, {}, everything, lambda: False, scripted({}))


def test_a_stale_record_falls_back_to_searching(tmp_path: Path) -> None:
    """The recorded engine no longer has that image ID: whoever has the image is used."""
    record_build(tmp_path, "app:x", "buildah", "1" * 64, "sniper")
    moved = scripted(inspect_answer("podman", "5" * 64))
    found = locate("app:x", tmp_path, None, {}, which_of("podman", "buildah"), lambda: False, moved)
    assert found.name == "podman"


CRUN_HYBRID = (
    "error running container: from /usr/bin/crun creating container for "
    "[/opt/venv/bin/python -I -c import json, sys\\nSECRET_SCRIPT_SOURCE]: "
    "cgroups in hybrid mode not supported, drop all controllers from cgroupv2\n"
)


@pytest.mark.parametrize(
    ("engine", "stderr", "fix"),
    [
        ("buildah", CRUN_HYBRID, "set BUILDAH_ISOLATION=chroot"),
        ("podman", "Error: crun: " + CRUN_HYBRID, 'set runtime = "runc" under [engine]'),
        (
            "podman",
            "Error: runc: runc create failed: unable to start container process: error during "
            "container init: error setting rlimits for ready process: error setting rlimit type "
            "7: operation not permitted: OCI permission denied",
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
        ),
        (
            "docker",
            "docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
            "Is the docker daemon running?",
            "the docker daemon does not answer",
        ),
    ],
)
def test_a_runtime_that_refuses_the_host_is_one_line_with_its_fix(
    engine: str, stderr: str, fix: str
) -> None:
    answers = {"from": (0, "ctr-1\n", ""), "run": (126, "", stderr), " rm ": (0, "", "")}
    with pytest.raises(ImageError) as raised:
        get(engine, {}, scripted(answers)).run_in("app:x", ["/opt/venv/bin/python", "-c", "x"])
    message = str(raised.value)
    assert fix in message and "\n" not in message
    assert "SECRET_SCRIPT_SOURCE" not in message and "import json" not in message


def test_a_buildah_run_that_lost_its_output_is_asked_once_more() -> None:
    answers = iter(["", "my-service 0.1.0\n"])
    calls: list[list[str]] = []

    def buildah(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        out = "ctr-1\n" if argv[1] == "from" else next(answers) if argv[1] == "run" else ""
        return subprocess.CompletedProcess(argv, 0, out, "")

    shown = get("buildah", {}, buildah).run_in("app:base", ["my-service", "--version"])
    assert shown.stdout == "my-service 0.1.0\n"
    assert [call[1] for call in calls] == ["from", "run", "run", "rm"]


def test_podman_and_docker_run_checks_without_network_or_pulls() -> None:
    calls: list[list[str]] = []
    for name in ("podman", "docker"):
        get(name, {}, scripted({"run": (0, "ok\n", "")}, calls)).run_in("app:x", ["/bin/app", "-V"])
    for call in calls:
        assert call[1:8] == ["run", "--rm", "--pull", "never", "--network", "none", "--entrypoint"]
        assert call[-3:] == ["/bin/app", "app:x", "-V"]


def test_reproducible_config_drops_only_what_a_build_container_randomises() -> None:
    config = {
        "container": "0b77a5",
        "parent": "sha256:f488",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Hostname": "5b2e1c609fb3", "User": "1000"},
        "container_config": {"Hostname": "5b2e1c609fb3", "User": "1000"},
        "history": [{"created_by": "RUN x", "comment": "FROM 6cb0549a9cb1"}, {"comment": "kept"}],
    }
    assert reproducible_config(config) == {
        "created": "2023-11-14T22:13:20Z",
        "config": {"Hostname": "", "User": "1000"},
        "container_config": {"Hostname": "", "User": "1000"},
        "history": [{"created_by": "RUN x"}, {"comment": "kept"}],
    }
    assert reproducible_config(reproducible_config(config)) == reproducible_config(config)


def test_an_engine_notes_once_however_many_images_it_builds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A layered tier builds its parent's environment first: the engine's note is still one line."""

    class Noting(Engine):
        name = "noting"

        def plan_build(self, request: BuildRequest, context: Path) -> BuildPlan:
            return BuildPlan(["true"], {}, "image IDs differ between builds of one commit")

        def finish_build(self, image: str) -> str:
            return f"id-of-{image}"

    engine = Noting({})
    assert engine.build(REQUEST, Path("/ctx")) == "id-of-app:hunter"
    engine.build(REQUEST, Path("/ctx"))
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == ["note: image IDs differ between builds of one commit"]
