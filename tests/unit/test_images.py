"""Unit tests of the image tooling: secrets, base image pins, and the smoke test's
comparison with the lock (no container engine needed; engines are in test_engines.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tooling.in_image import pipconf_to_uv
from tooling.base_image import (
    BaseImageError,
    base_image_for_build,
    read_base_pins,
    refresh_base_pins,
    resolve_digest,
)
from tooling.engines import Engine, ImageError, ImageFacts, Secrets
from tooling.images import secret_files, uv_requirements
from tooling.lockfile import parse
from tooling.project import Project, base_image_problems, load
from tooling.smoke import inventory_argv, lock_problems

DIGEST = "sha256:" + "ab" * 32


def test_secrets_default_the_ca_bundle_to_ssl_cert_file(tmp_path: Path) -> None:
    bundle = tmp_path / "corp.pem"
    bundle.write_text("cert")
    assert secret_files(None, None, None, {"SSL_CERT_FILE": str(bundle)}) == Secrets(bundle)
    assert secret_files(None, None, None, {}) == Secrets()
    with pytest.raises(ImageError, match="--pip-conf /nope: no such file"):
        secret_files(None, "/nope", None, {})
    with pytest.raises(ImageError, match="--netrc /nope: no such file"):
        secret_files(None, None, "/nope", {})


def test_pip_conf_index_settings_become_uv_settings(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://u:p@pypi.example/simple\n"
        "extra-index-url =\n    https://a.example/simple\n    https://b.example/simple\n"
        "[install]\nfind-links = /wheels\n"
    )
    assert pipconf_to_uv.uv_environment(conf.read_text()) == {
        "UV_INDEX_URL": "https://u:p@pypi.example/simple",
        "UV_EXTRA_INDEX_URL": "https://a.example/simple https://b.example/simple",
        "UV_FIND_LINKS": "/wheels",
    }
    shown = subprocess.run(
        [sys.executable, pipconf_to_uv.__file__, str(conf)], capture_output=True, text=True
    )
    assert "export UV_INDEX_URL=https://u:p@pypi.example/simple" in shown.stdout.splitlines()
    conf.write_text("index-url = https://u:hunter2@x/simple\n")  # no section: not a pip.conf
    broken = subprocess.run(
        [sys.executable, pipconf_to_uv.__file__, str(conf)], capture_output=True, text=True
    )
    assert broken.returncode == 1 and "hunter2" not in broken.stderr
    assert (
        broken.stderr.strip()
        == "pipconf secret is not a valid pip.conf (MissingSectionHeaderError)"
    )


def make_project(tmp_path: Path, python: str = "3.11", lockstep: str = "") -> Project:
    (tmp_path / ".python-version").write_text(python + "\n")
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "app"\n[tool.lockstep]\n{lockstep}'
    )
    (tmp_path / "requirements").mkdir(exist_ok=True)
    return load(tmp_path)


def test_uv_for_the_build_comes_from_the_dev_lock(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    lock = tmp_path / "requirements" / "dev.txt"
    lock.write_text(
        f"ruff==0.9.0 \\\n    --hash=sha256:{'1' * 64}\n"
        f"uv==0.5.0 \\\n    --hash=sha256:{'2' * 64} \\\n    --hash=sha256:{'3' * 64}\n"
        "    # via -r requirements/dev.in\n"
    )
    assert uv_requirements(project) == (
        f"uv==0.5.0 \\\n    --hash=sha256:{'2' * 64} \\\n    --hash=sha256:{'3' * 64}\n"
    )
    lock.write_text(f"ruff==0.9.0 \\\n    --hash=sha256:{'1' * 64}\n")
    with pytest.raises(ImageError, match=r"requirements/dev.txt does not pin uv.*add uv to"):
        uv_requirements(project)


def test_base_image_pins_overrides_and_tier_bases(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, lockstep='base-images = { gpu = "nvidia/cuda:12.1.0-runtime-ubuntu22.04" }\n'
    )
    base, note = base_image_for_build(project, "sniper", None)
    assert base == "python:3.11-slim" and note and "invoke base-image --refresh" in note
    (tmp_path / "base-images.lock").write_text(
        f"# pins\npython:3.11-slim@{DIGEST}\nnvidia/cuda:12.1.0-runtime-ubuntu22.04@{DIGEST}\n"
    )
    assert base_image_for_build(project, "sniper", None) == (f"python:3.11-slim@{DIGEST}", None)
    assert base_image_for_build(project, "gpu", None)[0].startswith("nvidia/cuda:12.1.0-runtime")
    assert base_image_for_build(project, "sniper", "mine:1") == ("mine:1", None)
    assert base_image_problems(project) == []


def test_a_base_pin_for_another_python_is_drift(tmp_path: Path) -> None:
    project = make_project(tmp_path, python="3.12")
    (tmp_path / "base-images.lock").write_text(f"docker.io/library/python:3.11-slim@{DIGEST}\n")
    assert base_image_problems(project) == [
        "base-images.lock pins docker.io/library/python:3.11-slim but .python-version says 3.12: "
        "run `invoke base-image --refresh`"
    ]
    (tmp_path / "base-images.lock").write_text("python:3.12-slim\n")
    with pytest.raises(BaseImageError, match=r"base-images.lock:1: 'python:3.12-slim' is not IM"):
        read_base_pins(tmp_path)


class StubEngine(Engine):
    """An engine whose only image is `python:3.11-slim` with the given registry digest."""

    name = "stub"

    def __init__(self, digest: str) -> None:
        super().__init__({})
        self.digest = digest

    def inspect(self, image: str) -> ImageFacts | None:
        if image != "python:3.11-slim":
            return None
        return ImageFacts("1" * 64, [], [], "", [], {}, 0, self.digest)


def test_refresh_pins_each_base_with_the_engines_digest(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    pins = refresh_base_pins(project, ["base", "dev"], StubEngine(DIGEST), pull=False)
    assert pins == {"python:3.11-slim": f"python:3.11-slim@{DIGEST}"}
    assert read_base_pins(tmp_path) == pins


def test_an_image_without_a_registry_digest_says_how_to_use_it(tmp_path: Path) -> None:
    """docker knows no digest for a loaded image: one line naming --base-image."""
    with pytest.raises(ImageError) as raised:
        resolve_digest(StubEngine(""), "python:3.11-slim", pull=False)
    assert str(raised.value) == (
        "stub knows no registry digest for python:3.11-slim (a loaded or locally built image "
        "has none): build with --base-image python:3.11-slim to use it unpinned, "
        "or pin it with --engine podman or buildah"
    )
    with pytest.raises(ImageError, match=r"^stub has no image other:1: pull or load it first"):
        resolve_digest(StubEngine(DIGEST), "other:1", pull=False)


LOCK = f"""\
numpy==2.2.6 ; python_full_version < '3.12' \\
    --hash=sha256:{"a" * 64}
numpy==2.3.1 ; python_full_version >= '3.12' \\
    --hash=sha256:{"b" * 64}
structlog==25.4.0 \\
    --hash=sha256:{"c" * 64}
"""


def report(python: str = "3.11.9", **changes: object) -> dict[str, object]:
    markers = {"python_full_version": python, "python_version": python.rsplit(".", 1)[0]}
    found: dict[str, object] = {
        "python": python,
        "markers": markers,
        "distributions": [
            {"name": "numpy", "version": "2.2.6"},
            {"name": "structlog", "version": "25.4.0"},
            {"name": "app", "version": "0.1.0"},
        ],
        "record_problems": [],
        "unlisted": [],
    }
    return {**found, **changes}


def test_an_environment_that_is_its_lock_has_no_problems() -> None:
    lock = parse(LOCK, "requirements/hunter.txt")
    assert lock_problems(report(), lock, "requirements/hunter.txt", "3.11", ("app", "0.1.0")) == []


def test_every_difference_from_the_lock_is_one_line() -> None:
    lock = parse(LOCK, "requirements/hunter.txt")
    found = report(
        python="3.12.1",
        distributions=[
            {"name": "numpy", "version": "2.2.6"},
            {"name": "evilpkg", "version": "1.0"},
            {"name": "App", "version": "0.1.0"},
        ],
        record_problems=[
            {"distribution": "numpy", "file": "numpy/__init__.py", "problem": "changed"},
            {"distribution": "evilpkg", "file": "RECORD", "problem": "no RECORD"},
        ],
        unlisted=["evil.py"],
    )
    assert lock_problems(found, lock, "requirements/hunter.txt", "3.11", ("app", "0.1.0")) == [
        "Python is 3.12.1 but .python-version says 3.11",
        "extra distribution evilpkg 1.0: requirements/hunter.txt does not name it",
        "numpy is 2.2.6 but requirements/hunter.txt pins 2.3.1 (line 3)",
        "missing distribution structlog==25.4.0 (requirements/hunter.txt line 5)",
        "numpy: numpy/__init__.py does not match its RECORD hash",
        "evilpkg: has no RECORD",
        "site-packages/evil.py belongs to no installed distribution's RECORD",
    ]


def test_inventory_reports_this_environment(tmp_path: Path) -> None:
    """The stdlib inventory, run for real with this interpreter, finds pytest intact."""
    result = subprocess.run(inventory_argv(sys.executable), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["python"] == ".".join(map(str, sys.version_info[:3]))
    assert found["markers"]["sys_platform"] == sys.platform
    names = {dist["name"].lower() for dist in found["distributions"]}
    assert "pytest" in names
    assert not [p for p in found["record_problems"] if p["distribution"].lower() == "pytest"]
