"""invoke add / remove and what uv's project commands leave behind (tooling/dependencies.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tooling import ToolingError, dependencies
from tooling.project import load

PYPROJECT = '[project]\nname = "app"\ndynamic = ["dependencies"]\n[tool.lockstep]\n'


def make_project(root: Path, pyproject: str = PYPROJECT) -> Path:
    (root / ".python-version").write_text("3.11\n")
    (root / "pyproject.toml").write_text(pyproject)
    requirements = root / "requirements"
    requirements.mkdir()
    (requirements / "base.in").write_text("pydantic>=2\n")
    (requirements / "hunter.in").write_text("-r base.in\nnumpy  # fast arrays\n")
    (requirements / "dev.in").write_text("-r hunter.in\npytest\n")
    return root


def test_add_goes_to_the_root_tier_by_default_then_locks(tmp_path: Path) -> None:
    project = load(make_project(tmp_path))
    locked: list[str] = []
    said = dependencies.add(
        project,
        ["structlog>=24"],
        None,
        lambda: locked.append((tmp_path / "requirements" / "base.in").read_text()),
    )
    assert said == "added structlog>=24 to requirements/base.in and locked"
    assert locked == ["pydantic>=2\nstructlog>=24\n"]  # the lock ran on the edited .in


def test_add_to_a_tier_and_refuse_what_is_there_or_is_no_requirement(tmp_path: Path) -> None:
    project = load(make_project(tmp_path))
    dependencies.add(project, ["rich"], "hunter", lambda: None)
    hunter = tmp_path / "requirements" / "hunter.in"
    assert hunter.read_text() == "-r base.in\nnumpy  # fast arrays\nrich\n"
    with pytest.raises(
        ToolingError, match=r"NumPy is already in requirements/hunter.in \(line 2: numpy\)"
    ):
        dependencies.add(project, ["NumPy>=2"], "hunter", lambda: None)
    with pytest.raises(ToolingError, match="'numpy>>2' is not a requirement"):
        dependencies.add(project, ["numpy>>2"], "hunter", lambda: None)
    with pytest.raises(ToolingError, match="unknown tier 'gpu': choose one of base, hunter, dev"):
        dependencies.add(project, ["rich"], "gpu", lambda: None)


def test_a_failed_lock_puts_the_in_file_back(tmp_path: Path) -> None:
    project = load(make_project(tmp_path))
    base = tmp_path / "requirements" / "base.in"

    def failing_lock() -> None:
        raise ToolingError("cannot lock requirements/base.in (nosuchpkg): not found")

    with pytest.raises(ToolingError, match=r"not found \(requirements/base.in is as it was\)"):
        dependencies.add(project, ["nosuchpkg"], None, failing_lock)
    assert base.read_text() == "pydantic>=2\n"


def test_remove_deletes_the_line_and_names_the_tier_that_has_it(tmp_path: Path) -> None:
    project = load(make_project(tmp_path))
    said = dependencies.remove(project, ["numpy"], "hunter", lambda: None)
    assert said == "removed numpy from requirements/hunter.in and locked"
    assert (tmp_path / "requirements" / "hunter.in").read_text() == "-r base.in\n"
    with pytest.raises(ToolingError, match=r"does not name pytest \(it is in dev.in: use --tier\)"):
        dependencies.remove(project, ["pytest"], None, lambda: None)


def test_what_uv_add_writes_is_named_by_the_check(tmp_path: Path) -> None:
    pyproject = (
        '[project]\nname = "app"\ndependencies = ["requests>=2"]\n'
        '[dependency-groups]\nhunter = ["rich>=15"]\n[tool.lockstep]\n'
    )
    project = load(make_project(tmp_path, pyproject))
    (tmp_path / "uv.lock").write_text("version = 1\n")
    found = dependencies.problems(project)
    assert len(found) == 3
    assert found[0].startswith("pyproject.toml [project] dependencies lists 'requests>=2'")
    assert "run `invoke add 'requests>=2'`" in found[0]
    assert found[1].startswith("pyproject.toml [dependency-groups] hunter lists 'rich>=15'")
    assert "`invoke add 'rich>=15' --tier TIER`" in found[1]
    assert found[2].startswith("uv.lock is not this project's lock")
    (tmp_path / "clean").mkdir()
    assert dependencies.problems(load(make_project(tmp_path / "clean"))) == []
