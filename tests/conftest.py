"""Shared fixtures: bake the template into a temporary folder.

Markers: `network` (reaches the package index) and `container` (builds
images). A quick local run can deselect them with -m. `container` tests run
once per engine (the `engine` fixture: buildah, podman, docker) and are
skipped, with the reason, where that engine or mmdebstrap is missing; under
CI=true a skipped test is a failure, so nothing this machine can run is
silently left out.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cookiecutter.main import cookiecutter

from tests import containers

if TYPE_CHECKING:
    from tests.images import ColdBuilds

TEMPLATE = Path(__file__).resolve().parent.parent
SHA_PINNED = re.compile(r"[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40}")  # uses: owner/repo@sha
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CONTAINER_TOOLS = ("buildah", "mmdebstrap")

Bake = Callable[..., Path]


def outer_env() -> dict[str, str]:
    """This process's environment, less a CI step summary (tests pass their own)."""
    return {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}


def run_in(
    project: Path, *command: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in a generated project as a user would, output captured."""
    return subprocess.run(
        list(command),
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**outer_env(), "NO_COLOR": "1", "NO_PROXY": "127.0.0.1,localhost", **(env or {})},
    )


def read_docs(project: Path) -> str:
    """The README and every page of docs/, as one text: a fact may live on any of them."""
    pages = [project / "README.md", *sorted((project / "docs").glob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def read_lock(project: Path, relative: str) -> list[dict[str, object]]:
    """The pins of a lock, read by the generated project's own reader (tooling/lockfile.py)."""
    code = (
        "import dataclasses, json, sys\n"
        "from pathlib import Path\n"
        "from tooling import lockfile\n"
        "lock = lockfile.read(Path(sys.argv[1]))\n"
        "print(json.dumps([dataclasses.asdict(pin) for pin in lock.pins]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, relative],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="session", autouse=True)
def run_temporaries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """This run's temporary files in a folder of its own, removed with its stores at the end:
    cookiecutter (2.7) never deletes the hook scripts it renders, two per bake, and the
    commands the tests run (cookiecutter, cruft, nox) bake too, so TMPDIR points there."""
    tmp_path_factory.getbasetemp()  # pytest's folders stay where they are (kept on failure)
    folder = containers.run_dir() / "tmp"
    folder.mkdir(exist_ok=True)
    previous, tempfile.tempdir = tempfile.tempdir, str(folder)
    previous_env = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(folder)
    yield
    tempfile.tempdir = previous
    if previous_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous_env


@pytest.fixture
def bake(tmp_path: Path) -> Bake:
    """Bake the template with the given answers; return the project folder."""

    def _bake(**answers: str) -> Path:
        output = tmp_path / "baked"
        output.mkdir(exist_ok=True)
        project = cookiecutter(
            str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output)
        )
        return Path(project)

    return _bake


def missing_tools(engine: str | None) -> list[str]:
    """What this machine lacks for the container tests of `engine` (any engine: None)."""
    missing = [tool for tool in CONTAINER_TOOLS if shutil.which(tool) is None]
    if engine == "podman" and shutil.which("podman") is None:
        missing.append("podman")
    if engine == "docker":
        missing += containers.docker_tools_missing()
    return missing


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    longest_first(items)
    for item in items:
        if item.get_closest_marker("container") is None:
            continue
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec else {}
        engine = params.get("engine") or params.get("store") or params.get("store_engine")
        if engine is None and "docker_daemon" in getattr(item, "fixturenames", ()):
            engine = "docker"
        missing = missing_tools(engine)
        if missing:
            reason = f"needs {' and '.join(missing)} (`.ci/run` installs them as root with apt)"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`--dist loadgroup` (tests/run.py), grouped here by module file: xdist 3.8 cannot add its
    group to a pytest 9 node ID, so its own `xdist_group` marks are never read."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return ByGroup(config, log)


def xdist_group(nodeid: str) -> str:
    """The container tests in two groups by engine, each on one worker (a worker's tests build
    in its own stores and share their images; one dockerd per host); each module with a
    module-scoped fixture whole, so the fixture is made once; every other test on its own."""
    module = nodeid.partition("::")[0]
    container, module_fixtures = module_kind(module)
    if container:
        return f"container-{CONTAINER_GROUPS[container_engine(nodeid)]}"
    return module if module_fixtures else nodeid


# Which container tests share a worker, by the engine they build with: about half the
# container time each (podman's builds are the slowest, docker's the fastest).
CONTAINER_GROUPS = {"buildah": "buildah", "podman": "podman-docker", "docker": "podman-docker"}


def container_engine(nodeid: str) -> str:
    """The engine a container test builds with: its parameter, else the engine it names or
    the docker daemon it asks for, else buildah."""
    module, _, test = nodeid.partition("::")
    name, _, params = test.partition("[")
    for engine in ENGINES_BY_NAME:
        if re.search(rf"(?<![a-z]){engine}(?![a-z])", params):
            return engine
    if name in tests_asking_for_docker(module):
        return "docker"
    return next((engine for engine in ENGINES_BY_NAME if engine in name.split("_")), "buildah")


ENGINES_BY_NAME = ("docker", "podman", "buildah")


@functools.cache
def tests_asking_for_docker(module: str) -> frozenset[str]:
    """The tests of a module whose arguments name the `docker_daemon` fixture."""
    text = (TEMPLATE / module).read_text(encoding="utf-8")
    found = re.finditer(r"^def (test_\w+)\(([^)]*)\)", text, re.MULTILINE)
    return frozenset(match.group(1) for match in found if "docker_daemon" in match.group(2))


@functools.cache
def module_kind(module: str) -> tuple[bool, bool]:
    """(its tests are marked `container`, it defines a module-scoped fixture), from its text."""
    text = (TEMPLATE / module).read_text(encoding="utf-8")
    return "pytest.mark.container" in text, 'scope="module"' in text


def longest_first(items: list[pytest.Item]) -> None:
    """The container tests first, then the modules with a `slow` test, each module's tests in
    their order: xdist starts the groups in this order (--no-loadscope-reorder)."""
    slow_modules = {
        item.nodeid.partition("::")[0] for item in items if item.get_closest_marker("slow")
    }
    items.sort(
        key=lambda item: (
            item.get_closest_marker("container") is None,
            item.nodeid.partition("::")[0] not in slow_modules,
        )
    )


@pytest.fixture
def template_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A git repository holding a copy of this template, with one commit; its tools' env."""
    from tests.offline_tools import template_checkout

    return template_checkout(tmp_path)


@pytest.hookimpl(trylast=True)  # after the session's fixtures (dockerd) are torn down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    containers.remove_run_stores()  # every image and container this run built


@pytest.fixture(scope="session")
def docker_daemon() -> Iterator[containers.DockerDaemon]:
    """The daemon that answers, else a dockerd of the tests' own, stopped at the end."""
    client = containers.docker_client_that_builds()
    assert client, "no docker client with BuildKit"
    daemon = containers.DockerDaemon(client)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module", params=containers.ENGINE_NAMES)
def engine(request: pytest.FixtureRequest) -> containers.Engine:
    """Each container engine in turn, configured for this machine, with the base image in it."""
    name = request.param
    chosen: containers.Engine
    if name == "docker":
        chosen = containers.Docker(request.getfixturevalue("docker_daemon").env)
    elif name == "podman":
        chosen = containers.Podman(containers.podman_env(containers.run_dir() / "podman"))
    else:
        chosen = containers.Buildah(containers.buildah_env())
    chosen.ensure_base("3.11")
    return chosen


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under CI=true, which must run everything: {reason}"


@pytest.fixture(scope="session")
def ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CA bundle every image build gets as a secret (tests.images.write_ca_bundle)."""
    from tests.images import write_ca_bundle

    return write_ca_bundle(tmp_path_factory.mktemp("secret"), os.environ.get("SSL_CERT_FILE"))


@pytest.fixture(scope="session")
def image_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one baked, locked and committed project the container tests build (never changed:
    tests change copies of it, tests.images.copy_project)."""
    from tests.images import bake_image_project

    return bake_image_project(tmp_path_factory.mktemp("image-project"))


@pytest.fixture(scope="session")
def cold_builds(
    image_project: Path, ca_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ColdBuilds]:
    """Each tier built cold once per engine (buildah, podman) in a store of its own."""
    from tests.images import ColdBuilds

    builds = ColdBuilds(image_project, ca_bundle, tmp_path_factory.mktemp("cold"))
    try:
        yield builds
    finally:
        builds.remove()
