"""A minimal generated project on disk, for the unit tests of the image and base-image tooling."""

from __future__ import annotations

from pathlib import Path

from tooling.project import Project, load


def make_project(tmp_path: Path, python: str = "3.11", lockstep: str = "") -> Project:
    """.python-version, a pyproject with `lockstep` under [tool.lockstep], no tiers yet."""
    (tmp_path / ".python-version").write_text(python + "\n")
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "app"\n[tool.lockstep]\n{lockstep}'
    )
    (tmp_path / "requirements").mkdir(exist_ok=True)
    return load(tmp_path)
