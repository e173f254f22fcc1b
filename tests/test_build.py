"""`nox -s build` (reproducible sdist and wheel) and the venv smoke test."""

from __future__ import annotations

import hashlib
import re
import tarfile
import zipfile
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.conftest import TEMPLATE, run_in

pytestmark = [pytest.mark.network, pytest.mark.slow]


def digests(dist: Path) -> dict[str, str]:
    artifacts = [*dist.glob("*.whl"), *dist.glob("*.tar.gz")]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(artifacts)}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("build")
    # A name no image has, so the smoke test stays in its venv.
    baked = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(output),
            extra_context={"project_name": "Build Check"},
        )
    )
    assert run_in(baked, "nox", "-s", "lock").returncode == 0
    return baked


def test_smoke_test_without_a_wheel_says_what_to_run(project: Path) -> None:
    result = run_in(project, "nox", "-s", "smoke-test", "--", "--tier", "hunter")
    assert result.returncode != 0
    assert "expected one build_check-*.whl" in result.stderr and "nox -s build" in result.stderr


def test_build_is_reproducible(project: Path) -> None:
    first = run_in(project, "nox", "-s", "build")
    assert first.returncode == 0, first.stderr
    before = digests(project / "dist")
    assert set(before) == {"build_check-0.1.0-py3-none-any.whl", "build_check-0.1.0.tar.gz"}
    second = run_in(project, "nox", "-s", "build")
    assert second.returncode == 0, second.stderr
    assert digests(project / "dist") == before


def test_smoke_test_runs_the_app_from_a_tier_lock(project: Path) -> None:
    if not (project / "dist").is_dir():
        assert run_in(project, "nox", "-s", "build").returncode == 0
    result = run_in(project, "nox", "-s", "smoke-test", "--", "--tier", "hunter")
    assert result.returncode == 0, result.stderr
    assert "--require-hashes -r" in result.stderr and "hunter.txt" in result.stderr
    assert '"status": "ok"' in result.stdout + result.stderr
    assert "image checks skipped" in result.stderr
    assert re.search(
        r"exactly requirements/hunter.txt: \d+ distributions, every file matches its RECORD",
        result.stderr,
    )


def test_venv_smoke_test_names_a_changed_file_and_an_extra_distribution(project: Path) -> None:
    if not (project / "dist").is_dir():
        assert run_in(project, "nox", "-s", "build").returncode == 0
    first = run_in(project, "nox", "-s", "smoke-test", "--", "--tier", "sniper")
    assert first.returncode == 0, first.stderr
    site = next((project / ".nox" / "smoke-test" / "lib").glob("python3.*/site-packages"))
    # A new file, not an edit in place: uv hard-links installed files to its cache.
    module = site / "structlog" / "__init__.py"
    text = module.read_text()
    module.unlink()
    module.write_text(text + "print('changed')\n")
    extra = site / "evilpkg-1.0.dist-info"
    extra.mkdir()
    (extra / "METADATA").write_text("Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n")
    # -R reuses the venv and installs nothing, so the check sees it as left.
    result = run_in(project, "nox", "-R", "-s", "smoke-test", "--", "--tier", "sniper")
    assert result.returncode != 0
    assert "venv of sniper: structlog: structlog/__init__.py does not match its RECORD hash" in (
        result.stderr
    )
    assert (
        "venv of sniper: extra distribution evilpkg 1.0: requirements/sniper.txt does not name it"
        in result.stderr
    )


def test_smoke_test_of_an_unknown_tier(project: Path) -> None:
    result = run_in(project, "nox", "-s", "smoke-test", "--", "--tier", "nope")
    assert result.returncode != 0
    assert "unknown tier 'nope': choose one of base" in result.stderr


@pytest.mark.parametrize("license_", ["MIT", "Apache-2.0", "LicenseRef-Proprietary"])
def test_sdist_and_wheel_carry_the_chosen_licence(tmp_path: Path, license_: str) -> None:
    baked = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={"license": license_, "with_container": "no"},
        )
    )
    result = run_in(baked, "nox", "-s", "build")
    assert result.returncode == 0, result.stderr
    licence = (baked / "LICENSE").read_bytes()
    with zipfile.ZipFile(baked / "dist" / "my_service-0.1.0-py3-none-any.whl") as wheel:
        metadata = wheel.read("my_service-0.1.0.dist-info/METADATA").decode()
        assert wheel.read("my_service-0.1.0.dist-info/licenses/LICENSE") == licence
    assert f"License-Expression: {license_}\n" in metadata
    assert "License-File: LICENSE\n" in metadata
    with tarfile.open(baked / "dist" / "my_service-0.1.0.tar.gz") as sdist:
        packed = sdist.extractfile("my_service-0.1.0/LICENSE")
        assert packed is not None and packed.read() == licence


def test_wheel_requires_the_root_tier_and_the_sdist_is_the_app(tmp_path: Path) -> None:
    """What `pip install` of the wheel brings, what it describes, and what the sdist holds."""
    baked = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={
                "tiers": "core, api:core, qa:api",
                "dev_tier": "qa",
                "with_container": "no",
            },
        )
    )
    root_tier = baked / "requirements" / "core.in"
    # Option lines, a comment and a continued requirement: what pip reads, the wheel must too.
    (baked / "requirements" / "constraints.txt").write_text("idna<4\n")
    root_tier.write_text(
        root_tier.read_text()
        + "--extra-index-url https://example.org/simple\n-c constraints.txt\n"
        + "idna\\\n  >=3  # for the hosts\n"
    )
    result = run_in(baked, "nox", "-s", "build")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(baked / "dist" / "my_service-0.1.0-py3-none-any.whl") as wheel:
        metadata = wheel.read("my_service-0.1.0.dist-info/METADATA").decode()
    headers, _, description = metadata.partition("\n\n")
    requires = [line.split(": ", 1)[1] for line in headers.splitlines() if "Requires-Dist" in line]
    assert sorted(requires) == ["idna>=3", "pydantic>=2", "structlog"]
    assert description.startswith("# My Service\n") and "my-service health" in description
    assert len(metadata) < 2000 and "tooling" not in description

    with tarfile.open(baked / "dist" / "my_service-0.1.0.tar.gz") as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert members == {
        "src/my_service/__init__.py",
        "src/my_service/__main__.py",
        "src/my_service/cli.py",
        "tests/test_cli.py",
        "requirements/core.in",
        "pyproject.toml",
        "DESCRIPTION.md",
        "LICENSE",
        "PKG-INFO",
        ".gitignore",  # hatchling always adds it
    }

    # Into an empty venv, from the package index: the root tier's libraries come along.
    venv = tmp_path / "fresh"
    assert run_in(tmp_path, "uv", "venv", "-q", "--python", "3.11", str(venv)).returncode == 0
    wheel_path = str(baked / "dist" / "my_service-0.1.0-py3-none-any.whl")
    installed = run_in(tmp_path, "uv", "pip", "install", "--python", str(venv), wheel_path)
    assert installed.returncode == 0, installed.stderr
    assert re.search(r"^ \+ pydantic==2\.", installed.stderr, flags=re.MULTILINE), installed.stderr
    assert " + structlog==" in installed.stderr
    health = run_in(tmp_path, str(venv / "bin" / "my-service"), "health")
    assert health.returncode == 0 and '"status": "ok"' in health.stdout
    imported = run_in(tmp_path, str(venv / "bin" / "python"), "-c", "import pydantic, structlog")
    assert imported.returncode == 0, imported.stderr
