"""`invoke build` and `nox -s smoke-test -- --image` for real, with buildah, podman and docker.

Every test taking the `engine` fixture runs once per engine. The base image is
a local stand-in for python:3.11-slim made from Debian packages (no registry is
reachable); the proxy's CA bundle reaches the build as a secret, with a marker
line so the test can prove it left no trace.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import containers
from tests.images import (
    BASE,
    MARKER,
    NAME,
    PLANTED,
    ColdBuilds,
    build_with,
    cold_build,
    commit_time,
    copy_project,
    image_id,
    pin_local_base,
    run,
    smoke_test,
)
from tests.package_index import PackageIndex, build_wheel

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]


def image_blobs_holding(
    engine: containers.Engine, image: str, needle: bytes, tmp_path: Path
) -> list[int]:
    """Which of the uncompressed layer and config blobs of `image` contain `needle`."""
    exported = tmp_path / image.replace("/", "_").replace(":", "_")
    blobs = engine.blobs(image, exported)
    assert len(blobs) > 2  # the export held the layers, not an empty folder
    return [number for number, blob in enumerate(blobs) if needle in blob]


@pytest.fixture(scope="module")
def locked(image_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Baked, locked, committed and planted with secret-looking files (tests.images.PLANTED)."""
    return copy_project(image_project, tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def built(
    locked: Path,
    engine: containers.Engine,
    ca_bundle: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The sniper and hunter images, built by `engine` from a copy of the project of its own."""
    project = copy_project(locked, tmp_path_factory.mktemp(engine.name))
    for tier in ("sniper", "hunter"):
        build_with(engine, project, ca_bundle, "--tier", tier)
    return project


@pytest.fixture(scope="module")
def dev_image(built: Path, engine: containers.Engine, ca_bundle: Path) -> str:
    build_with(engine, built, ca_bundle, "--tier", "dev", "--target", "dev")
    return f"localhost/{NAME}:dev"


def image_ref(tier: str) -> str:
    return f"{NAME}:{tier}"


def test_invoke_run_starts_the_tier_image_with_an_env_file(
    built: Path, engine: containers.Engine
) -> None:
    """The app's `health` reads LOG_LEVEL: a bad value from the env file makes it fail."""
    healthy = run(built, "invoke", "run", "--tier", "sniper", "--", "health", env=engine.env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert '"status": "ok"' in healthy.stdout
    assert f"running {NAME}:sniper with {engine.name}" in healthy.stdout
    (built / "loud.env").write_text("LOG_LEVEL=loud\n")
    loud = ["invoke", "run", "--tier", "sniper", "--env-file", "loud.env", "--", "health"]
    unhealthy = run(built, *loud, env=engine.env)
    assert unhealthy.returncode == 1, unhealthy.stdout + unhealthy.stderr
    assert "LOG_LEVEL=LOUD is not one of DEBUG, INFO, WARNING, ERROR" in unhealthy.stdout


@pytest.mark.parametrize("tier", ["sniper", "hunter"])
def test_smoke_test_passes_in_the_image(built: Path, engine: containers.Engine, tier: str) -> None:
    """Without --engine: the smoke test finds the image in the engine that built it."""
    result = smoke_test(built, "--tier", tier, "--image", env=engine.env)
    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stderr
    assert f"image-check:{tier}: checked in {engine.name}" in log
    assert f"image-check:{tier}: --version: image-check 0.1.0" in log
    assert "HEALTHCHECK /opt/venv/bin/image-check health: exit 0" in log
    assert "user: uid 1000" in log
    assert re.search(r"imports: \d+ top-level modules", log)
    assert f"image-check:{tier}: Python 3.11." in log
    assert re.search(
        rf"exactly requirements/{tier}.txt: \d+ distributions, every file matches its RECORD", log
    )


def test_invoke_build_puts_each_image_id_and_size_on_the_step_summary(built: Path) -> None:
    page = (built.parent / "build-summary.md").read_text()
    for tier in ("sniper", "hunter"):
        assert re.search(
            rf"^\| {tier} \| \S*image-check:{tier} \| \S+ \| \d+ MB \| \d+ MB \(within budget\) \|$",
            page,
            re.MULTILINE,
        ), page


def test_image_is_non_root_health_checked_and_clean(built: Path, engine: containers.Engine) -> None:
    image = image_ref("hunter")
    config = engine.inspect(image)
    assert config["user"] == "1000"
    assert config["healthcheck"]["Test"] == ["CMD", "/opt/venv/bin/image-check", "health"]
    leftovers = ("/root/.cache", "/run/secrets/ca", "/opt/uv", "/opt/pip", "/tmp/requirements.txt")
    probe = engine.run_in_image(
        image,
        [
            "/opt/venv/bin/python",
            "-c",
            "import importlib.util, json, shutil, os, sys, numpy, pydantic\n"
            "def state(path):\n"
            "    if not os.path.lexists(path): return 'absent'\n"
            "    if os.path.isdir(path): return 'empty' if not os.listdir(path) else 'content'\n"
            "    return 'empty' if os.path.getsize(path) == 0 else 'content'\n"
            "print(json.dumps({'tools': [t for t in ('gcc', 'cc', 'make', 'uv') if shutil.which(t)],"
            # The shipped environment has no pip; the base image's own is the base's business.
            " 'pip': [importlib.util.find_spec('pip') is not None,"
            " os.path.exists('/opt/venv/bin/pip')],"
            " 'paths': {path: state(path) for path in sys.argv[1:]}}))",
            *leftovers,
        ],
        user="0",  # root, who can look inside /root
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["tools"] == [] and found["pip"] == [False, False]
    # docker 20.10's BuildKit (0.8) leaves the mount points of RUN --mount behind, empty;
    # BuildKit 0.10+, buildah and podman remove them. No content may stay, anywhere.
    allowed = {"absent", "empty"} if engine.name == "docker" else {"absent"}
    assert set(found["paths"].values()) <= allowed, found["paths"]
    history = " ".join(config["history"])
    assert "RUN" in history or "useradd" in history  # the history was read
    assert "ca.pem" not in history and MARKER not in history


def test_the_ca_bundle_secret_leaves_no_trace(
    built: Path, engine: containers.Engine, tmp_path: Path
) -> None:
    assert image_blobs_holding(engine, image_ref("hunter"), MARKER.encode(), tmp_path) == []


def test_size_is_within_the_budget_and_measured(built: Path, engine: containers.Engine) -> None:
    size = engine.inspect(image_ref("sniper"))["size"]
    base = engine.inspect(engine.ensure_base("3.11"))["size"]
    assert base < size < base + 60_000_000  # pydantic-core is the bulk of sniper


def test_budget_overrun_fails_with_size_and_budget(
    built: Path, engine: containers.Engine, tmp_path: Path
) -> None:
    project = tmp_path / "over"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox"))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(re.sub(r"^sniper = \d+", "sniper = 10", pyproject.read_text(), flags=re.M))
    page = tmp_path / "summary.md"
    env = {**engine.env, "GITHUB_STEP_SUMMARY": str(page)}
    result = smoke_test(project, "--tier", "sniper", "--image", env=env)
    assert result.returncode != 0
    assert re.search(r"image-check:sniper is \d+ MB, over its 10 MB budget", result.stderr)
    assert re.search(
        r"^\| sniper \| \S*image-check:sniper \| \S+ \| \d+ MB \| 10 MB \(OVER BUDGET\) \|$",
        page.read_text(),
        re.MULTILINE,
    )


def test_tampered_hash_fails_the_build(
    built: Path, engine: containers.Engine, tmp_path: Path
) -> None:
    project = tmp_path / "tampered"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox"))
    lock = project / "requirements" / "sniper.txt"
    text = lock.read_text()
    block = re.search(r"^structlog==.*?(?=^\S)", text, re.M | re.S).group(0)  # type: ignore[union-attr]
    lock.write_text(text.replace(block, re.sub(r"[0-9a-f]{64}", "0" * 64, block)))

    refused = run(
        project, "invoke", "build", "--tier", "sniper", "--engine", engine.name, env=engine.env
    )
    assert refused.returncode == 1
    assert "requirements/sniper.txt does not match the digest of its body" in refused.stderr

    direct = engine.build(
        project,
        f"{NAME}:tampered",
        build_args={
            "PYTHON_VERSION": "3.11",
            "TIER": "sniper",
            "BASE_IMAGE": engine.ensure_base("3.11"),
        },
        secrets={"ca": os.environ["SSL_CERT_FILE"]} if os.environ.get("SSL_CERT_FILE") else {},
    )
    assert direct.returncode != 0
    assert "Hash mismatch for `structlog==" in direct.stdout + direct.stderr


def test_bad_build_input_is_one_clear_line(locked: Path) -> None:
    cases = [
        (["--tier", "nope"], "error: unknown tier 'nope': choose one of"),
        ([], "error: name one tier with --tier NAME, or build every tier with --all"),
        (["--tier", "base", "--engine", "rocket"], "error: unknown container engine 'rocket'"),
        (
            ["--tier", "base", "--ca-bundle", "/no/such.pem"],
            "error: --ca-bundle /no/such.pem: no such file",
        ),
        (["--tier", "base", "--netrc", "/no/.netrc"], "error: --netrc /no/.netrc: no such file"),
    ]
    for arguments, message in cases:
        result = run(locked, "invoke", "build", *arguments)
        assert result.returncode == 1, arguments
        assert result.stderr.strip().startswith(message), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    empty_path = run(
        locked,
        "invoke",
        "build",
        "--tier",
        "base",
        env={"PATH": str(Path(shutil.which("invoke")).parent)},
    )
    assert empty_path.stderr.strip().startswith("error: no container engine found")


def test_a_docker_client_without_buildx_is_one_line(locked: Path, tmp_path: Path) -> None:
    """Docker 23+ clients need the buildx plugin for BuildKit; without it, one line."""
    client = shutil.which("docker", path="/usr/local/bin") or shutil.which("docker")
    assert client, "this machine kind ships a docker client in /usr/local/bin"
    shown = subprocess.run(
        [client, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True
    )
    has_buildx = subprocess.run([client, "buildx", "version"], capture_output=True).returncode == 0
    assert int(shown.stdout.split(".")[0]) >= 23 and not has_buildx, (client, shown.stdout)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").symlink_to(client)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}  # no user plugins
    result = run(locked, "invoke", "build", "--tier", "sniper", "--engine", "docker", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: docker {shown.stdout.strip()} needs the buildx plugin to build with BuildKit "
        "(RUN --mount, build secrets) and has none: install it (package docker-buildx-plugin), "
        "or build with --engine podman or --engine buildah"
    )
    assert "Error response from daemon" not in result.stdout + result.stderr


def test_dev_target_runs_the_tests_inside_the_container(
    dev_image: str, engine: containers.Engine
) -> None:
    tested = engine.run_in_image(
        image_ref("dev"),
        [
            "/opt/venv/bin/python",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_cli.py",
        ],
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "passed" in tested.stdout
    uid = engine.run_in_image(
        image_ref("dev"), ["/opt/venv/bin/python", "-c", "import os; print(os.getuid())"]
    )
    assert uid.stdout.strip() == "1000"


def test_no_planted_secret_reaches_any_image(
    built: Path, engine: containers.Engine, dev_image: str, tmp_path: Path
) -> None:
    for tier in ("sniper", "hunter", "dev"):
        assert image_blobs_holding(engine, image_ref(tier), MARKER.encode(), tmp_path) == [], tier
    listed = engine.run_in_image(
        image_ref("dev"), ["/bin/sh", "-c", "cd /app && find . -type f | sort"]
    )
    files = set(listed.stdout.split())
    assert "./tests/id_helpers.py" in files and "./tests/test_cli.py" in files
    assert "./src/image_check/cli.py" in files and "./pyproject.toml" in files
    assert not {f"./{relative}" for relative in PLANTED} & files
    assert not any(name.startswith(("./deploy", "./certs", "./config", "./.git")) for name in files)


def check_cold_build(project: Path, store: containers.PrivateStore, pin: str, output: str) -> str:
    """What a cold build in `store` said and made, and its smoke test there; its image ID."""
    assert pin in (project / "base-images.lock").read_text().splitlines()
    engine = store.engine.name
    assert f"building {NAME}:sniper with {engine} from {pin}" in output
    shown = re.search(
        rf"built {NAME}:sniper: image ID ([0-9a-f]{{64}}) \(SOURCE_DATE_EPOCH=(\d+)\)", output
    )
    assert shown, output[-1000:]
    assert shown.group(2) == commit_time(project)
    assert shown.group(1) == image_id(output, "sniper")
    smoke = smoke_test(project, "--tier", "sniper", "--image", env=store.env)
    assert smoke.returncode == 0, smoke.stderr[-2000:]
    assert f"checked in {engine}" in smoke.stderr
    return shown.group(1)


@pytest.mark.parametrize("store_engine", ["buildah", "podman"])
def test_two_cold_builds_of_one_commit_give_one_image_id(
    cold_builds: ColdBuilds, store_engine: str, tmp_path: Path
) -> None:
    """From the base image pinned by digest (resolved from local storage), in empty stores:
    the run's shared cold build, then one more in a store of its own."""
    store, project, pin = cold_builds.store(store_engine)
    first = cold_builds.build(store_engine, "sniper")
    ids = [check_cold_build(project, store, pin, first)]
    assert store.engine.inspect(f"{NAME}:sniper")["id"] == ids[0]
    with containers.PrivateStore(BASE, engine=store_engine) as again:
        assert pin_local_base(project, again) == pin
        second = cold_build(project, again, "sniper")
        ids.append(check_cold_build(project, again, pin, second))
        assert again.engine.inspect(f"{NAME}:sniper")["id"] == ids[1]
    assert ids[0] == ids[1]

    # The pin follows .python-version: a new Python needs a new pin.
    newer = copy_project(project, tmp_path)
    (newer / ".python-version").write_text("3.12\n")
    checked = run(newer, "nox", "-s", "lock_check")
    assert checked.returncode != 0
    assert (
        "base-images.lock pins python:3.11-slim but .python-version says 3.12: "
        "run `invoke base-image --refresh`" in checked.stderr
    )


def test_docker_says_when_its_image_ids_are_not_reproducible(
    built: Path, engine: containers.Engine, ca_bundle: Path
) -> None:
    """Where the engine cannot clamp timestamps it still builds, and says so in one line."""
    output = build_with(engine, built, ca_bundle, "--tier", "sniper")
    notes = [line for line in output.splitlines() if line.startswith("note:")]
    if engine.name in ("buildah", "podman"):
        assert notes == []
        return
    shown = engine.cli("version", "--format", "{{.Server.Version}}").stdout.strip()
    assert int(shown.split(".")[0]) < 26  # Debian's docker.io here: BuildKit older than 0.13
    assert len(notes) == 1 and "image IDs differ between builds of one commit" in notes[0]
    assert "Docker Engine 26+ with the buildx plugin" in notes[0]


REFUSING_RUNTIME = """#!/bin/sh
echo "cgroups in hybrid mode not supported, drop all controllers from cgroupv2" >&2
exit 1
"""
FIXES = {
    "buildah": "buildah's OCI runtime (crun) refuses this host's hybrid cgroups: "
    "set BUILDAH_ISOLATION=chroot and run again",
    "podman": "podman's OCI runtime (crun) refuses this host's hybrid cgroups: "
    'set runtime = "runc" under [engine] in containers.conf',
}


def refusing_env(store: containers.PrivateStore, runtime: Path) -> dict[str, str]:
    """The store's environment with an OCI runtime that refuses the host, as crun does here."""
    if store.engine.name == "buildah":
        return {**store.env, "BUILDAH_ISOLATION": "oci", "BUILDAH_RUNTIME": str(runtime)}
    conf = runtime.with_name("containers.conf")
    conf.write_text(
        Path(store.env["CONTAINERS_CONF"])
        .read_text()
        .replace(
            'runtime = "runc"',
            f'runtime = "refusing"\n\n[engine.runtimes]\nrefusing = ["{runtime}"]',
        )
    )
    return {**store.env, "CONTAINERS_CONF": str(conf)}


@pytest.mark.parametrize("store_engine", ["buildah", "podman"])
def test_a_runtime_that_refuses_the_host_is_one_line_naming_the_fix(
    locked: Path, cold_builds: ColdBuilds, store_engine: str, ca_bundle: Path, tmp_path: Path
) -> None:
    """A stand-in runtime answers as crun does on hybrid cgroup hosts: the build (in an empty
    store: a cached step runs nothing) and the smoke test (of the run's cold build) each end
    with one line naming the setting, never the script they ran."""
    project = copy_project(locked, tmp_path)
    runtime = tmp_path / "crun"
    runtime.write_text(REFUSING_RUNTIME)
    runtime.chmod(0o755)
    build = ["invoke", "build", "--tier", "sniper", "--engine", store_engine, "--base-image", BASE]
    build += ["--ca-bundle", str(ca_bundle)]
    with containers.PrivateStore(BASE, engine=store_engine) as store:
        refused = run(project, *build, env=refusing_env(store, runtime))
    assert refused.returncode == 1
    last = refused.stderr.strip().splitlines()[-1]
    # sniper is layered on the base tier's environment, the first image built.
    first = f"localhost/{NAME}-environment:base"
    assert last.startswith(f"error: building {first} with {store_engine} failed (exit ")
    assert last.endswith(FIXES[store_engine])

    cold_builds.build(store_engine, "sniper")
    built, built_project, _ = cold_builds.store(store_engine)
    smoke = smoke_test(
        built_project,
        "--tier",
        "sniper",
        "--image",
        env=refusing_env(built, runtime),
    )
    assert smoke.returncode != 0
    assert f"Session smoke-test aborted: {FIXES[store_engine]}" in smoke.stderr
    assert "inventory" not in smoke.stderr and "import " not in smoke.stderr


def test_a_loaded_base_image_docker_cannot_pin_is_one_line(
    locked: Path, docker_daemon: containers.DockerDaemon
) -> None:
    """docker knows no registry digest for a loaded image: pinning says what to do instead."""
    docker = containers.Docker(docker_daemon.env)
    docker.cli("tag", docker.ensure_base("3.11"), "python:3.11-slim")
    try:
        pinned = run(
            locked, "invoke", "base-image", "--refresh", "--local", "--engine", "docker",
            env=docker.env,
        )  # fmt: skip
    finally:
        docker.cli("rmi", "python:3.11-slim", check=False)
    assert pinned.returncode == 1
    assert pinned.stderr.strip() == (
        "error: docker knows no registry digest for python:3.11-slim (a loaded or locally built "
        "image has none): build with --base-image python:3.11-slim to use it unpinned, "
        "or pin it with --engine podman or buildah"
    )
    assert not (locked / "base-images.lock").exists()


def test_a_source_only_change_rebuilds_only_the_app_layer(
    cold_builds: ColdBuilds, ca_bundle: Path, tmp_path: Path
) -> None:
    """After a cold build, the cached environment survives `invoke build` and its config
    fix: a source-only change rebuilds only the app layer, and uv installs nothing."""
    cold_builds.build("buildah", "sniper")
    store, project, _ = cold_builds.store("buildah")
    edited = copy_project(project, tmp_path)
    image = f"localhost/{NAME}:sniper"
    before = store.engine.layer_digests(image)  # type: ignore[attr-defined]
    original = store.engine.inspect(image)["id"]
    cli = edited / "src" / "image_check" / "cli.py"
    cli.write_text(cli.read_text() + "# a source-only change\n")
    try:
        rebuilt = run(
            edited, "invoke", "build", "--tier", "sniper", "--engine", "buildah",
            "--ca-bundle", str(ca_bundle), env=store.env,
        )  # fmt: skip
        assert rebuilt.returncode == 0, rebuilt.stdout[-2000:] + rebuilt.stderr[-2000:]
        assert not re.search(r"Installed \d+ packages? in", rebuilt.stdout + rebuilt.stderr)
        after = store.engine.layer_digests(image)  # type: ignore[attr-defined]
    finally:
        store.engine.restore(original, image)  # the run's cold build, for the tests after
    assert after[:-1] == before[:-1]
    assert after[-1] != before[-1]


def test_a_tampered_image_fails_the_smoke_test(built: Path, engine: containers.Engine) -> None:
    """A changed file and an unlocked distribution, committed under the image's own tag."""
    image = image_ref("sniper")
    site = "/opt/venv/lib/python3.11/site-packages"
    original = engine.changed_image(
        image,
        f"echo 'print(1)' >> {site}/structlog/__init__.py"
        f" && mkdir {site}/evilpkg-1.0.dist-info"
        f" && printf 'Metadata-Version: 2.1\\nName: evilpkg\\nVersion: 1.0\\n'"
        f" > {site}/evilpkg-1.0.dist-info/METADATA",
    )
    try:
        result = smoke_test(
            built,
            "--tier",
            "sniper",
            "--image",
            "--engine",
            engine.name,
            env=engine.env,
        )
    finally:
        engine.restore(original, image)
    assert result.returncode != 0
    lines = result.stderr
    assert (
        f"{NAME}:sniper: extra distribution evilpkg 1.0: requirements/sniper.txt does not name it"
        in lines
    )
    assert (
        f"{NAME}:sniper: structlog: structlog/__init__.py does not match its RECORD hash" in lines
    )
    assert "--version" not in lines  # the lock check comes first and names what changed


def test_each_image_is_found_where_it_was_built_with_every_engine_present(
    locked: Path, docker_daemon: containers.DockerDaemon, ca_bundle: Path, tmp_path: Path
) -> None:
    """docker answering and podman installed beside buildah: no --engine anywhere, and each
    smoke test checks the image in the engine that built it (same name in both)."""
    project = tmp_path / "beside"
    shutil.copytree(locked, project, ignore=shutil.ignore_patterns(".nox"))
    everything = {**docker_daemon.env, "BUILDAH_ISOLATION": "chroot"}
    for engine in (containers.Docker(everything), containers.Buildah(everything)):
        build_with(engine, project, ca_bundle, "--tier", "sniper")
        smoke = smoke_test(project, "--tier", "sniper", "--image", env=everything)
        assert smoke.returncode == 0, smoke.stderr[-2000:]
        assert f"image-check:sniper: checked in {engine.name}" in smoke.stderr


@pytest.fixture
def loopback_index(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A PEP 503 index on 127.0.0.1 serving accel 1.0+cpu: (its URL, the wheel)."""
    wheel = build_wheel(tmp_path / "wheels", "accel", "1.0+cpu", build="cpu")
    with PackageIndex() as index:
        index.add("cpu", wheel)
        yield index.url("cpu"), wheel


def build_with_accel(
    engine: containers.Engine,
    project: Path,
    wheel: Path,
    index_line: str | None,
    tag: str,
    secrets: dict[str, str],
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Pin accel==1.0+cpu in the sniper lock, build that tier and check the image has that build.

    The index listens on the host's loopback, so the build's RUN steps use the host's network.
    """
    add_accel_pin(project / "requirements" / "sniper.txt", wheel, index_line)
    image = f"{NAME}:{tag}"
    result = engine.build(
        project,
        image,
        build_args={"PYTHON_VERSION": "3.11", "TIER": "sniper", "BASE_IMAGE": BASE},
        secrets=secrets,
        host_network=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    shown = engine.run_in_image(
        image, ["/opt/venv/bin/python", "-c", "import accel; print(accel.BUILD)"]
    )
    assert shown.stdout.strip() == "cpu", shown.stderr
    return image, result


def add_accel_pin(lock: Path, wheel: Path, index_line: str | None) -> None:
    """Pin accel==1.0+cpu (and optionally an index line) in a lock, after its header."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    lines = lock.read_text().splitlines(keepends=True)
    header = 0
    while lines[header].startswith("#"):
        header += 1
    lines[header:header] = [
        *([f"{index_line}\n"] if index_line else []),
        f"accel==1.0+cpu \\\n    --hash=sha256:{digest}\n    # via -r requirements/sniper.in\n",
    ]
    lock.write_text("".join(lines))


def test_the_image_installs_the_build_its_lock_names_from_the_locks_index(
    built: Path,
    engine: containers.Engine,
    tmp_path: Path,
    loopback_index: tuple[str, Path],
    ca_bundle: Path,
) -> None:
    """A variant tier: its lock's own --extra-index-url line, read by uv in the build."""
    url, wheel = loopback_index
    project = tmp_path / "variant"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox"))
    image, _ = build_with_accel(
        engine, project, wheel, f"--extra-index-url {url}", "variant", {"ca": str(ca_bundle)}
    )
    smoke = smoke_test(
        project,
        "--tier",
        "sniper",
        "--image",
        image,
        "--engine",
        engine.name,
        env=engine.env,
    )
    assert smoke.returncode == 0, smoke.stderr[-2000:]
    assert "exactly requirements/sniper.txt" in smoke.stderr


def test_a_pip_conf_secret_reaches_uv_and_no_layer(
    built: Path,
    engine: containers.Engine,
    tmp_path: Path,
    loopback_index: tuple[str, Path],
    ca_bundle: Path,
) -> None:
    """uv ignores pip.conf: the build translates the pipconf secret's index settings for it."""
    url, wheel = loopback_index
    project = tmp_path / "private-index"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox"))
    password = "pw-5f1c2a-never-in-a-layer"
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nextra-index-url = {url.replace('://', f'://ci:{password}@')}\n")
    image, result = build_with_accel(
        engine,
        project,
        wheel,
        None,
        "private-index",
        {"ca": str(ca_bundle), "pipconf": str(conf)},
    )
    assert image_blobs_holding(engine, image, password.encode(), tmp_path) == []
    assert password not in result.stdout + result.stderr


def test_invoke_prune_removes_the_image_a_rebuild_left_untagged(
    built: Path, engine: containers.Engine, ca_bundle: Path
) -> None:
    """Last in this file: it rebuilds the hunter image from a changed source."""
    before = engine.inspect(f"{NAME}:hunter")["id"]
    module = built / "src" / "image_check" / "__init__.py"
    module.write_text(module.read_text() + "# changed, so the app layer is new\n")
    build_with(engine, built, ca_bundle, "--tier", "hunter")
    after = engine.inspect(f"{NAME}:hunter")["id"]
    assert after != before
    pruned = run(built, "invoke", "prune", "--engine", engine.name, env=engine.env)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert f"{engine.name}: removed {before[:12]} (tier hunter, " in pruned.stdout
    assert re.search(r"removed \d+ untagged image-check image\(s\) of [\d.]+ MB", pruned.stdout)
    again = run(built, "invoke", "prune", "--engine", engine.name, env=engine.env)
    assert again.stdout.splitlines() == ["no untagged image-check images to remove"]
    assert engine.inspect(f"{NAME}:hunter")["id"] == after  # the tagged image stays
