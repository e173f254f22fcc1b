"""What a developer expects on day one: coverage from `nox -s tests`, a devcontainer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Bake, run_in

UNTESTED = '''"""A module no test reaches."""


def {name}(value: int) -> int:
    if value > 0:
        return value * 2
    return -value
'''


@pytest.mark.network
@pytest.mark.slow
def test_the_tests_session_reports_and_enforces_the_apps_coverage(
    bake: Bake, tmp_path: Path
) -> None:
    project = bake()
    page = tmp_path / "summary.md"
    full = run_in(project, "nox", "-s", "tests", env={"GITHUB_STEP_SUMMARY": str(page)})
    assert full.returncode == 0, full.stdout[-3000:] + full.stderr[-3000:]
    assert re.search(r"^TOTAL\s+\d+\s+\d+\s+\d+\s+\d+\s+(\d+)%", full.stdout, re.MULTILINE)
    assert re.search(r"Required test coverage of 80(\.0)?% reached", full.stdout)
    assert "tooling" not in full.stdout.split("coverage:", 1)[1]  # the app only
    assert re.search(r"^## Coverage\n\n\d+% of the app's lines", page.read_text(), re.MULTILINE)

    package = project / "src" / "my_service"
    for number in range(12):
        (package / f"untested_{number}.py").write_text(UNTESTED.format(name=f"double_{number}"))
    low = run_in(project, "nox", "-R", "-s", "tests")
    assert low.returncode != 0
    assert "src/my_service/untested_0.py" in low.stdout
    assert re.search(r"FAIL Required test coverage of 80(\.0)?% not reached", low.stdout)
    narrowed = run_in(project, "nox", "-R", "-s", "tests", "--", "-k", "version")
    assert narrowed.returncode == 0, narrowed.stdout[-3000:]
    assert "src/my_service/untested_0.py" in narrowed.stdout


def test_the_devcontainer_is_the_dev_stage_set_up_by_invoke_dev(bake: Bake) -> None:
    project = bake(python_version="3.12", tiers="core, api:core, qa:api", dev_tier="qa")
    config = json.loads((project / ".devcontainer" / "devcontainer.json").read_text())
    build = config["build"]
    dockerfile = (project / ".devcontainer" / build["dockerfile"]).resolve()
    assert dockerfile == project / "Dockerfile"
    assert (project / ".devcontainer" / build["context"]).resolve() == project
    stages = re.findall(r"^FROM \S+ AS (\S+)$", dockerfile.read_text(), re.MULTILINE)
    assert build["target"] == "dev" and "dev" in stages
    assert build["args"]["TIER"] == "qa"
    assert build["args"]["PYTHON_VERSION"] == (project / ".python-version").read_text().strip()
    assert config["initializeCommand"] == "nox -s build"  # the dev stage copies dist/
    assert config["postCreateCommand"] == "invoke dev"
    assert config["workspaceFolder"] == "/app"  # where the dev stage's sources are
    assert config["remoteUser"] == "app"


def test_no_devcontainer_without_containers(bake: Bake) -> None:
    project = bake(with_container="no")
    assert not (project / ".devcontainer").exists()
