import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from tooling import devenv
from tooling.project import Project

HASH = "--hash=sha256:" + "0" * 64


def make_venv(root: Path, config: str) -> Path:
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    (venv / "pyvenv.cfg").write_text(config)
    return venv


def inventory_of(*distributions: tuple[str, str]) -> devenv.Run:
    """A stand-in for the venv's Python running the smoke test's inventory."""
    report = {
        "python": "3.11.7",
        "markers": {"sys_platform": "linux", "python_version": "3.11"},
        "distributions": [{"name": name, "version": version} for name, version in distributions],
        "record_problems": [],
        "unlisted": [],
    }

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(list(argv), 0, json.dumps(report), "")

    return run


@pytest.mark.parametrize(
    "config",
    ["home = /usr/bin\nversion_info = 3.11.7\nuv = 0.9.0\n", "home = /usr/bin\nversion = 3.11.7\n"],
    ids=["uv", "venv"],
)
def test_the_python_of_a_venv_is_read_from_pyvenv_cfg(tmp_path: Path, config: str) -> None:
    assert devenv.venv_version(make_venv(tmp_path, config)) == "3.11.7"


def test_a_venv_of_another_python_is_named_without_running_it(tmp_path: Path) -> None:
    venv = make_venv(tmp_path, "version_info = 3.12.1\n")

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        raise AssertionError(f"ran {argv}")

    lock = tmp_path / "dev.txt"
    assert devenv.differences(Project(tmp_path, "3.11"), venv, lock, run) == [
        ".venv runs Python 3.12.1 but .python-version says 3.11"
    ]


def test_leftovers_are_what_neither_the_lock_nor_the_app_names(tmp_path: Path) -> None:
    venv = make_venv(tmp_path, "version = 3.11.7\n")
    lock = tmp_path / "dev.txt"
    lock.write_text(
        f"pytest==8.0.0 \\\n    {HASH}\ncolorama==0.4.6 ; sys_platform == 'win32' \\\n    {HASH}\n"
    )
    project = Project(tmp_path, "3.11", {"project": {"name": "my-app"}})
    run = inventory_of(
        ("pytest", "8.0.0"), ("My_App", "0.1.0"), ("pip", "23.2"), ("setuptools", "65")
    )
    assert devenv.leftovers(project, venv, lock, run) == ["pip", "setuptools"]


@pytest.mark.parametrize(("editable", "expected"), [(True, True), (False, False)])
def test_the_app_counts_as_editable_by_its_direct_url(
    tmp_path: Path, editable: bool, expected: bool
) -> None:
    info = tmp_path / ".venv/lib/python3.11/site-packages/my_app-0.1.0.dist-info"
    info.mkdir(parents=True)
    direct = {"url": "file:///src/my-app", "dir_info": {"editable": editable}}
    (info / "direct_url.json").write_text(json.dumps(direct))
    assert devenv.editable(tmp_path / ".venv", "my-app") is expected
    assert devenv.editable(tmp_path / ".venv", "other") is False


def test_commands_are_shown_as_typed_in_the_project(tmp_path: Path) -> None:
    argv = ["/opt/uv/bin/uv", "pip", "install", "--python", str(tmp_path / ".venv/bin/python")]
    shown = devenv.shown_command([*argv, "-e", str(tmp_path)], tmp_path)
    assert shown == "uv pip install --python .venv/bin/python -e ."
