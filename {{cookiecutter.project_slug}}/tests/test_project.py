from pathlib import Path

import pytest

from tooling import ToolingError
from tooling.project import load, python_version_problems, tier_install_args


def make_project(root: Path, python_version: str = "3.11") -> Path:
    (root / ".python-version").write_text(python_version + "\n", encoding="utf-8")
    (root / "pyproject.toml").write_text('[tool.lockstep]\ndev-tier = "tools"\n', encoding="utf-8")
    (root / "requirements").mkdir()
    return root


def test_reads_version_and_settings(tmp_path: Path) -> None:
    project = load(make_project(tmp_path, "3.12.4"))
    assert project.python_version == "3.12.4"
    assert project.python_minor == "3.12"
    assert project.dev_tier == "tools"


@pytest.mark.parametrize("bad", ["3", "python3.11", "3.11\n3.12", ""])
def test_bad_python_version_is_one_clear_line(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ToolingError, match=r"\.python-version says .*write one version"):
        load(make_project(tmp_path, bad))


def test_missing_python_version(tmp_path: Path) -> None:
    make_project(tmp_path).joinpath(".python-version").unlink()
    with pytest.raises(ToolingError, match=r"\.python-version is missing"):
        load(tmp_path)


def test_installs_the_lock_when_present(tmp_path: Path) -> None:
    project = load(make_project(tmp_path))
    (tmp_path / "requirements" / "tools.in").write_text("pytest\n", encoding="utf-8")
    args, note = tier_install_args(project, "tools")
    assert args == ["-r", str(tmp_path / "requirements" / "tools.in")]
    assert note is not None and "nox -s lock" in note
    (tmp_path / "requirements" / "tools.txt").write_text("pytest==8.0\n", encoding="utf-8")
    args, note = tier_install_args(project, "tools")
    assert args[:1] == ["--require-hashes"] and note is None


def test_unknown_tier(tmp_path: Path) -> None:
    with pytest.raises(ToolingError, match=r"has no nope\.in"):
        tier_install_args(load(make_project(tmp_path)), "nope")


def test_disagreeing_versions_are_named(tmp_path: Path) -> None:
    root = make_project(tmp_path, "3.11.9")
    (root / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.12"\n')
    (root / "Dockerfile").write_text("ARG PYTHON_VERSION=3.11.9\nFROM python:3.12-slim AS x\n")
    problems = python_version_problems(load(root))
    assert len(problems) == 2
    assert "requires-python is '>=3.12' but .python-version says 3.11.9" in problems[0]
    assert problems[1].startswith("Dockerfile names Python 3.12 but .python-version says 3.11.9")
