"""Unit tests of the image tooling: secrets, the build's uv, and the smoke test's
comparison with the lock (no container engine needed; engines are in test_engines.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from project_files import make_project
from tooling.engines import ImageError, Secrets
from tooling.images import secret_files, uv_requirements
from tooling.in_image import pipconf_to_uv
from tooling.lockfile import parse
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
