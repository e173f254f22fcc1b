"""Shared fixtures: bake the template into a temporary folder.

Markers: `network` (reaches the package index) and `container` (builds
images). A quick local run can deselect them with -m. `container` tests are
skipped, with the reason, where buildah or mmdebstrap is missing; under
CI=true a skipped test is a failure, so nothing this machine can run is
silently left out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CONTAINER_TOOLS = ("buildah", "mmdebstrap")

Bake = Callable[..., Path]


def run_in(
    project: Path, *command: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in a generated project as a user would, output captured."""
    return subprocess.run(
        list(command),
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1", "NO_PROXY": "127.0.0.1,localhost", **(env or {})},
    )


def read_lock(project: Path, relative: str) -> list[dict[str, object]]:
    """The pins of a lock, read by the generated project's own reader (tooling/lockfile.py)."""
    code = (
        "import dataclasses, json, sys\n"
        "from pathlib import Path\n"
        "from tooling import lockfile\n"
        "lock = lockfile.read(Path(sys.argv[1]))\n"
        "print(json.dumps([dataclasses.asdict(pin) for pin in lock.pins]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, relative],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture
def bake(tmp_path: Path) -> Bake:
    """Bake the template with the given answers; return the project folder."""

    def _bake(**answers: str) -> Path:
        output = tmp_path / "baked"
        output.mkdir(exist_ok=True)
        project = cookiecutter(
            str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output)
        )
        return Path(project)

    return _bake


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [tool for tool in CONTAINER_TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    skip = pytest.mark.skip(
        reason=f"needs {' and '.join(missing)} (`.ci/run` installs them as root with apt)"
    )
    for item in items:
        if item.get_closest_marker("container") is not None:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under CI=true, which must run everything: {reason}"
