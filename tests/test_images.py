"""`invoke build` and `nox -s smoke-test -- --image` for real, with buildah.

The base image is a local stand-in for python:3.11-slim made from Debian
packages (no registry is reachable); the proxy's CA bundle reaches the build
as a secret, with a marker line so the test can prove it left no trace.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests import containers
from tests.conftest import TEMPLATE, run_in
from tests.package_index import PackageIndex, build_wheel

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

MARKER = "# lockstep-test-secret-marker-5f1c2a"
NAME = "image-check"  # its own image names, apart from other tests' and benchmarks'
BASE = containers.base_image_name("3.11")
# Secret-looking files at every depth; none may reach any image.
PLANTED = (
    "deploy/.env",
    "certs/corp.pem",
    "config/.netrc",
    "tests/fixtures/.env.local",
    "tooling/signing.key",
    "tests/.pypirc",
    "requirements/pip.conf",
    "tests/id_ed25519",
    "src/.env",
)


def run(
    project: Path, *command: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_in(project, *command, env={**containers.buildah_env(), **(env or {})})


def build_with_buildah(project: Path, ca_bundle: Path, *arguments: str) -> str:
    """`invoke build` on the local base image, the CA bundle passed as a secret; its output."""
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
    return result.stdout


def git_commit(project: Path) -> str:
    """Commit the project (as a user's repository would be); return the commit's time."""
    for command in (
        ["git", "init", "--quiet"],
        ["git", "add", "--all"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "start"],
    ):
        subprocess.run(command, cwd=project, check=True, capture_output=True)
    shown = subprocess.run(
        ["git", "log", "-1", "--format=%ct"],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
    )
    return shown.stdout.strip()


def image_blobs_holding(image: str, needle: bytes, tmp_path: Path) -> list[str]:
    """Names of the uncompressed layer and config blobs of `image` that contain `needle`."""
    exported = tmp_path / image.replace("/", "_").replace(":", "_")
    containers.buildah("push", "--disable-compression", image, f"dir:{exported}")
    return [blob.name for blob in exported.iterdir() if needle in blob.read_bytes()]


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
    project = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(output),
            extra_context={"project_name": "Image Check"},
        )
    )
    assert run(project, "nox", "-s", "lock").returncode == 0
    for relative in PLANTED:
        planted = project / relative
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_text(f"{MARKER} {relative}\n")
    # A module that only looks like an ssh key's name: the dev image keeps it.
    (project / "tests" / "id_helpers.py").write_text('"""Helpers."""\n')
    for tier in ("sniper", "hunter"):
        build_with_buildah(project, ca_bundle, "--tier", tier)
    return project


@pytest.fixture(scope="module")
def dev_image(built: Path, ca_bundle: Path) -> str:
    build_with_buildah(built, ca_bundle, "--tier", "dev", "--target", "dev")
    return f"localhost/{NAME}:dev"


@pytest.mark.parametrize("tier", ["sniper", "hunter"])
def test_smoke_test_passes_in_the_image(built: Path, tier: str) -> None:
    result = run(built, "nox", "-s", "smoke-test", "--", "--tier", tier, "--image")
    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stderr
    assert f"image-check:{tier}: --version: image-check 0.1.0" in log
    assert "HEALTHCHECK /opt/venv/bin/image-check health: exit 0" in log
    assert "user: uid 1000" in log
    assert re.search(r"imports: \d+ top-level modules", log)
    assert f"image-check:{tier}: Python 3.11." in log
    assert re.search(
        rf"exactly requirements/{tier}.txt: \d+ distributions, every file matches its RECORD", log
    )


def test_image_is_non_root_health_checked_and_clean(built: Path) -> None:
    image = "localhost/image-check:hunter"
    config = containers.image_config(image)
    assert config["user"] == "1000"
    assert config["healthcheck"]["Test"] == ["CMD", "/opt/venv/bin/image-check", "health"]
    probe = containers.run_in_image(
        image,
        [
            "/opt/venv/bin/python",
            "-c",
            "import importlib.util, shutil, os, numpy, pydantic; "
            "print([t for t in ('gcc', 'cc', 'make', 'uv') if shutil.which(t)]);"
            # The shipped environment has no pip; the base image's own is the base's business.
            "print(importlib.util.find_spec('pip') is not None,"
            " os.path.exists('/opt/venv/bin/pip'), os.path.exists('/root/.cache'),"
            " os.path.exists('/run/secrets/ca'), os.path.exists('/opt/uv'),"
            " os.path.exists('/opt/pip'), os.path.exists('/tmp/requirements.txt'))",
        ],
        user="0",  # root, who can look inside /root
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split("\n")[:2] == ["[]", "False False False False False False False"]
    history = " ".join(str(entry) for entry in config["history"])
    assert "ca.pem" not in history and MARKER not in history


def test_the_ca_bundle_secret_leaves_no_trace(built: Path, tmp_path: Path) -> None:
    exported = tmp_path / "image"
    pushed = containers.buildah(
        "push", "--disable-compression", "localhost/image-check:hunter", f"dir:{exported}"
    )
    assert pushed.returncode == 0
    marker = MARKER.encode()
    carrying = []
    for blob in exported.iterdir():
        if marker in blob.read_bytes():
            carrying.append(blob.name)
    assert carrying == []


def test_size_is_within_the_budget_and_measured(built: Path) -> None:
    size = containers.image_size("localhost/image-check:sniper")
    base = containers.image_size(containers.ensure_base_image("3.11"))
    assert base < size < base + 60_000_000  # pydantic-core is the bulk of sniper


def test_budget_overrun_fails_with_size_and_budget(built: Path, tmp_path: Path) -> None:
    project = tmp_path / "over"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox"))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(re.sub(r"^sniper = \d+", "sniper = 10", pyproject.read_text(), flags=re.M))
    result = run(project, "nox", "-s", "smoke-test", "--", "--tier", "sniper", "--image")
    assert result.returncode != 0
    assert re.search(r"image-check:sniper is \d+ MB, over its 10 MB budget", result.stderr)


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
        "localhost/image-check:tampered",
        build_args={
            "PYTHON_VERSION": "3.11",
            "TIER": "sniper",
            "BASE_IMAGE": containers.ensure_base_image("3.11"),
        },
        secrets={"ca": os.environ["SSL_CERT_FILE"]} if os.environ.get("SSL_CERT_FILE") else {},
        check=False,
    )
    assert direct.returncode != 0
    assert "Hash mismatch for `structlog==" in direct.stdout + direct.stderr


def test_bad_build_input_is_one_clear_line(built: Path) -> None:
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


def test_dev_target_runs_the_tests_inside_the_container(dev_image: str) -> None:
    tested = containers.run_in_image(
        "localhost/image-check:dev",
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
        "localhost/image-check:dev", ["/opt/venv/bin/python", "-c", "import os; print(os.getuid())"]
    )
    assert uid.stdout.strip() == "1000"


def test_no_planted_secret_reaches_any_image(built: Path, dev_image: str, tmp_path: Path) -> None:
    for image in (f"localhost/{NAME}:sniper", f"localhost/{NAME}:hunter", dev_image):
        assert image_blobs_holding(image, MARKER.encode(), tmp_path) == [], image
    listed = containers.run_in_image(
        dev_image, ["/bin/sh", "-c", "cd /app && find . -type f | sort"]
    )
    files = set(listed.stdout.split())
    assert "./tests/id_helpers.py" in files and "./tests/test_cli.py" in files
    assert "./src/image_check/cli.py" in files and "./pyproject.toml" in files
    assert not {f"./{relative}" for relative in PLANTED} & files
    assert not any(name.startswith(("./deploy", "./certs", "./config", "./.git")) for name in files)


def test_two_cold_builds_of_one_commit_give_one_image_id(built: Path, tmp_path: Path) -> None:
    """From the base image pinned by digest (resolved from local storage), in empty stores."""
    project = tmp_path / "cold"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox", "dist"))
    epoch = git_commit(project)
    ids = []
    for _ in range(2):
        with containers.PrivateStore(BASE) as store:
            store.buildah("tag", BASE, "docker.io/library/python:3.11-slim")
            pinned = run(
                project,
                "invoke",
                "base-image",
                "--refresh",
                "--local",
                "--engine",
                "buildah",
                env=store.env,
            )
            assert pinned.returncode == 0, pinned.stderr
            digest = store.buildah(
                "inspect", "--type", "image", "--format", "{{.FromImageDigest}}", BASE
            ).stdout.strip()
            pin = f"python:3.11-slim@{digest}"
            assert pin in (project / "base-images.lock").read_text().splitlines()
            built_once = run(
                project,
                "invoke",
                "build",
                "--tier",
                "sniper",
                "--engine",
                "buildah",
                env=store.env,
            )
            assert built_once.returncode == 0, built_once.stdout[-2000:] + built_once.stderr[-2000:]
            assert f"building {NAME}:sniper with buildah from {pin}" in built_once.stdout
            shown = re.search(
                rf"built {NAME}:sniper: image ID ([0-9a-f]{{64}}) \(SOURCE_DATE_EPOCH=(\d+)\)",
                built_once.stdout,
            )
            assert shown, built_once.stdout[-1000:]
            assert shown.group(2) == epoch
            assert store.buildah(
                "inspect", "--type", "image", "--format", "{{.FromImageID}}", f"{NAME}:sniper"
            ).stdout.strip() == shown.group(1)
            ids.append(shown.group(1))
            smoke = run(
                project,
                "nox",
                "-s",
                "smoke-test",
                "--",
                "--tier",
                "sniper",
                "--image",
                env=store.env,
            )
            assert smoke.returncode == 0, smoke.stderr[-2000:]
    assert ids[0] == ids[1]

    # The pin follows .python-version: a new Python needs a new pin.
    (project / ".python-version").write_text("3.12\n")
    checked = run(project, "nox", "-s", "lock_check")
    assert checked.returncode != 0
    assert (
        "base-images.lock pins python:3.11-slim but .python-version says 3.12: "
        "run `invoke base-image --refresh`" in checked.stderr
    )


def test_a_source_only_change_rebuilds_only_the_app_layer(
    built: Path, ca_bundle: Path, tmp_path: Path
) -> None:
    """After a cold build, the cached environment survives `invoke build` and its config
    fix: a source-only change rebuilds only the app layer, and uv installs nothing."""
    project = tmp_path / "edited"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox", "dist"))
    image = f"localhost/{NAME}:sniper"
    build = ["invoke", "build", "--tier", "sniper", "--engine", "buildah", "--base-image", BASE]
    build += ["--ca-bundle", str(ca_bundle)]
    with containers.PrivateStore(BASE) as store:
        cold = run(project, *build, env=store.env)
        assert cold.returncode == 0, cold.stdout[-2000:] + cold.stderr[-2000:]
        before = containers.layer_digests(image, store)
        cli = project / "src" / "image_check" / "cli.py"
        cli.write_text(cli.read_text() + "# a source-only change\n")
        rebuilt = run(project, *build, env=store.env)
        assert rebuilt.returncode == 0, rebuilt.stdout[-2000:] + rebuilt.stderr[-2000:]
        assert not re.search(r"Installed \d+ packages? in", rebuilt.stdout + rebuilt.stderr)
        after = containers.layer_digests(image, store)
    assert after[:-1] == before[:-1]
    assert after[-1] != before[-1]


def test_a_tampered_image_fails_the_smoke_test(built: Path) -> None:
    """A changed file and an unlocked distribution, committed under the image's own tag."""
    image = f"localhost/{NAME}:sniper"
    original = containers.buildah(
        "inspect", "--type", "image", "--format", "{{.FromImageID}}", image
    ).stdout.strip()
    site = "/opt/venv/lib/python3.11/site-packages"
    container = containers.buildah("from", "--pull-never", image).stdout.strip()
    try:
        containers.buildah(
            "run",
            "--user",
            "0",
            container,
            "--",
            "/bin/sh",
            "-c",
            f"echo 'print(1)' >> {site}/structlog/__init__.py"
            f" && mkdir {site}/evilpkg-1.0.dist-info"
            f" && printf 'Metadata-Version: 2.1\\nName: evilpkg\\nVersion: 1.0\\n'"
            f" > {site}/evilpkg-1.0.dist-info/METADATA",
        )
        containers.buildah("commit", "--quiet", container, image)
        result = run(built, "nox", "-s", "smoke-test", "--", "--tier", "sniper", "--image")
    finally:
        containers.buildah("rm", container, check=False)
        containers.buildah("tag", original, image)
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


@pytest.fixture
def loopback_index(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A PEP 503 index on 127.0.0.1 serving accel 1.0+cpu: (its URL, the wheel)."""
    wheel = build_wheel(tmp_path / "wheels", "accel", "1.0+cpu", build="cpu")
    with PackageIndex() as index:
        index.add("cpu", wheel)
        yield index.url("cpu"), wheel


def build_with_accel(
    project: Path, wheel: Path, index_line: str | None, tag: str, secrets: dict[str, str]
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Pin accel==1.0+cpu in the sniper lock, build that tier and check the image has that build."""
    add_accel_pin(project / "requirements" / "sniper.txt", wheel, index_line)
    image = f"localhost/{NAME}:{tag}"
    result = containers.build_image(
        project,
        image,
        build_args={"PYTHON_VERSION": "3.11", "TIER": "sniper", "BASE_IMAGE": BASE},
        secrets=secrets,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    shown = containers.run_in_image(
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
    built: Path, tmp_path: Path, loopback_index: tuple[str, Path], ca_bundle: Path
) -> None:
    """A variant tier: its lock's own --extra-index-url line, read by uv in the build."""
    url, wheel = loopback_index
    project = tmp_path / "variant"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox"))
    image, _ = build_with_accel(
        project, wheel, f"--extra-index-url {url}", "variant", {"ca": str(ca_bundle)}
    )
    smoke = run(project, "nox", "-s", "smoke-test", "--", "--tier", "sniper", "--image", image)
    assert smoke.returncode == 0, smoke.stderr[-2000:]
    assert "exactly requirements/sniper.txt" in smoke.stderr


def test_a_pip_conf_secret_reaches_uv_and_no_layer(
    built: Path, tmp_path: Path, loopback_index: tuple[str, Path], ca_bundle: Path
) -> None:
    """uv ignores pip.conf: the build translates the pipconf secret's index settings for it."""
    url, wheel = loopback_index
    project = tmp_path / "private-index"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns(".nox"))
    password = "pw-5f1c2a-never-in-a-layer"
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nextra-index-url = {url.replace('://', f'://ci:{password}@')}\n")
    image, result = build_with_accel(
        project, wheel, None, "private-index", {"ca": str(ca_bundle), "pipconf": str(conf)}
    )
    assert image_blobs_holding(image, password.encode(), tmp_path) == []
    assert password not in result.stdout + result.stderr
