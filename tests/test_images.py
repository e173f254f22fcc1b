"""`invoke build` and `nox -s smoke-test -- --image` for real, with buildah.

The base image is a local stand-in for python:3.11-slim made from Debian
packages (no registry is reachable); the proxy's CA bundle reaches the build
as a secret, with a marker line so the test can prove it left no trace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests import containers
from tests.conftest import TEMPLATE, run_in

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

MARKER = "# lockstep-test-secret-marker-5f1c2a"


def run(
    project: Path, *command: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_in(project, *command, env={**containers.buildah_env(), **(env or {})})


def build_with_buildah(project: Path, ca_bundle: Path, *arguments: str) -> None:
    """`invoke build` on the local base image, the CA bundle passed as a secret."""
    base = containers.ensure_base_image("3.11")
    result = run(
        project,
        "invoke",
        "build",
        *arguments,
        "--engine",
        "buildah",
        "--base-image",
        base,
        "--ca-bundle",
        str(ca_bundle),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("secret") / "ca.pem"
    system = os.environ.get("SSL_CERT_FILE")
    text = Path(system).read_text() if system and Path(system).is_file() else ""
    bundle.write_text(f"{MARKER}\n{text}")
    return bundle


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, ca_bundle: Path) -> Path:
    output = tmp_path_factory.mktemp("images")
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output)))
    assert run(project, "nox", "-s", "lock").returncode == 0
    for tier in ("sniper", "hunter"):
        build_with_buildah(project, ca_bundle, "--tier", tier)
    return project


@pytest.mark.parametrize("tier", ["sniper", "hunter"])
def test_smoke_test_passes_in_the_image(built: Path, tier: str) -> None:
    result = run(built, "nox", "-s", "smoke-test", "--", "--tier", tier, "--image")
    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stderr
    assert f"my-service:{tier}: --version: my-service 0.1.0" in log
    assert "HEALTHCHECK /opt/venv/bin/my-service health: exit 0" in log
    assert "user: uid 1000" in log
    assert re.search(r"imports: \d+ top-level modules", log)


def test_image_is_non_root_health_checked_and_clean(built: Path) -> None:
    image = "localhost/my-service:hunter"
    config = containers.image_config(image)
    assert config["user"] == "1000"
    assert config["healthcheck"]["Test"] == ["CMD", "/opt/venv/bin/my-service", "health"]
    probe = containers.run_in_image(
        image,
        [
            "/opt/venv/bin/python",
            "-c",
            "import shutil, os, numpy, pydantic; "
            "print([t for t in ('gcc', 'cc', 'make', 'uv') if shutil.which(t)]);"
            "print(os.path.exists('/opt/venv/bin/pip'), os.path.exists('/root/.cache'),"
            " os.path.exists('/run/secrets/ca'), os.path.exists('/opt/installer'))",
        ],
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split("\n")[:2] == ["[]", "False False False False"]
    history = " ".join(str(entry) for entry in config["history"])
    assert "ca.pem" not in history and MARKER not in history


def test_the_ca_bundle_secret_leaves_no_trace(built: Path, tmp_path: Path) -> None:
    exported = tmp_path / "image"
    pushed = containers.buildah(
        "push", "--disable-compression", "localhost/my-service:hunter", f"dir:{exported}"
    )
    assert pushed.returncode == 0
    marker = MARKER.encode()
    carrying = []
    for blob in exported.iterdir():
        if marker in blob.read_bytes():
            carrying.append(blob.name)
    assert carrying == []


def test_size_is_within_the_budget_and_measured(built: Path) -> None:
    size = containers.image_size("localhost/my-service:sniper")
    base = containers.image_size(containers.ensure_base_image("3.11"))
    assert base < size < base + 60_000_000  # pydantic-core is the bulk of sniper


def test_budget_overrun_fails_with_size_and_budget(built: Path, tmp_path: Path) -> None:
    project = tmp_path / "over"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox"))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(re.sub(r"^sniper = \d+", "sniper = 10", pyproject.read_text(), flags=re.M))
    result = run(project, "nox", "-s", "smoke-test", "--", "--tier", "sniper", "--image")
    assert result.returncode != 0
    assert re.search(r"my-service:sniper is \d+ MB, over its 10 MB budget", result.stderr)


def test_tampered_hash_fails_the_build(built: Path, tmp_path: Path) -> None:
    project = tmp_path / "tampered"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox"))
    lock = project / "requirements" / "sniper.txt"
    text = lock.read_text()
    block = re.search(r"^structlog==.*?(?=^\S)", text, re.M | re.S).group(0)  # type: ignore[union-attr]
    lock.write_text(text.replace(block, re.sub(r"[0-9a-f]{64}", "0" * 64, block)))

    refused = run(project, "invoke", "build", "--tier", "sniper", "--engine", "buildah")
    assert refused.returncode == 1
    assert "sniper.txt does not match the union" in refused.stderr

    direct = containers.build_image(
        project,
        "localhost/my-service:tampered",
        build_args={
            "PYTHON_VERSION": "3.11",
            "TIER": "sniper",
            "BASE_IMAGE": containers.ensure_base_image("3.11"),
        },
        secrets={"ca": os.environ["SSL_CERT_FILE"]} if os.environ.get("SSL_CERT_FILE") else {},
        check=False,
    )
    assert direct.returncode != 0
    assert "DO NOT MATCH THE HASHES" in direct.stdout + direct.stderr


def test_bad_build_input_is_one_clear_line(built: Path) -> None:
    cases = [
        (["--tier", "nope"], "error: unknown tier 'nope': choose one of"),
        ([], "error: name one tier with --tier NAME, or build every tier with --all"),
        (["--tier", "base", "--engine", "rocket"], "error: unknown container engine 'rocket'"),
        (
            ["--tier", "base", "--ca-bundle", "/no/such.pem"],
            "error: --ca-bundle /no/such.pem: no such file",
        ),
    ]
    for arguments, message in cases:
        result = run(built, "invoke", "build", *arguments)
        assert result.returncode == 1, arguments
        assert result.stderr.strip().startswith(message), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    empty_path = run(
        built,
        "invoke",
        "build",
        "--tier",
        "base",
        env={"PATH": str(Path(shutil.which("invoke")).parent)},
    )
    assert empty_path.stderr.strip().startswith("error: no container engine found")


def test_dev_target_runs_the_tests_inside_the_container(built: Path, ca_bundle: Path) -> None:
    build_with_buildah(built, ca_bundle, "--tier", "dev", "--target", "dev")
    tested = containers.run_in_image(
        "localhost/my-service:dev",
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
    uid = containers.run_in_image(
        "localhost/my-service:dev", ["/opt/venv/bin/python", "-c", "import os; print(os.getuid())"]
    )
    assert uid.stdout.strip() == "1000"
