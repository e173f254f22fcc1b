"""`invoke build`'s order of work (tooling/images/build.py): nothing is built before the locks are sound."""

from __future__ import annotations

from pathlib import Path

import pytest
from tooling import ToolingError
from tooling.engines import Secrets
from tooling.images.build import build_tiers, rebuild_problem
from tooling.project import load


def project_with_tiers(root: Path) -> Path:
    (root / ".python-version").write_text("3.11\n")
    (root / "pyproject.toml").write_text('[project]\nname = "app"\n[tool.lockstep]\n')
    requirements = root / "requirements"
    requirements.mkdir()
    (requirements / "base.in").write_text("idna\n")
    (requirements / "dev.in").write_text("-r base.in\npytest\n")
    return root


def test_a_missing_lock_stops_the_build_before_the_wheel(tmp_path: Path) -> None:
    project = load(project_with_tiers(tmp_path))
    wheels: list[bool] = []

    def build_wheel() -> bool:
        wheels.append(True)
        return True

    with pytest.raises(ToolingError, match=r"requirements/base.txt is missing: run `nox -s lock`"):
        build_tiers(project, ["base"], "buildah", None, Secrets(), build_wheel, env={})
    assert wheels == []


def test_an_unknown_tier_names_the_tiers(tmp_path: Path) -> None:
    project = load(project_with_tiers(tmp_path))
    with pytest.raises(ToolingError, match="unknown tier 'web': choose one of base, dev"):
        build_tiers(project, ["web"], None, None, Secrets(), lambda: True, env={})


def test_a_rebuild_matches_only_the_same_image_id() -> None:
    digest = "sha256:" + "a" * 64
    assert rebuild_problem(digest, digest.removeprefix("sha256:")) is None
    assert rebuild_problem("sha256:" + "b" * 64, digest) == (
        f"rebuilt from this commit, the image ID is sha256:{'b' * 64}, not {digest} as published"
    )
