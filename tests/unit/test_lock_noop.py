"""A lock with nothing to do stops early: none of the resolving or checking code is imported.

What a user sees is speed (`nox -s lock` twice in a row); what is guarded here is the
mechanism behind it, never a time: the modules a no-op imports, and that any changed
byte still runs the full lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import PROJECT_TEMPLATE
from test_lock import run_main
from test_pylock import EVIL, FakeUv, locks, project, with_digest  # noqa: F401  (a fixture)
from tooling import ToolingError
from tooling.lock import fresh

# What a full lock or the drift check needs and a no-op does not.
HEAVY = {
    "tooling.atomic",
    "tooling.cooldown",
    "tooling.lock.command",
    "tooling.lock.drift",
    "tooling.lock.groups",
    "tooling.lock.headers",
    "tooling.lock.pylocks",
    "tooling.lock.render",
    "tooling.lock.resolve",
    "tooling.lock.uv",
    "tooling.lockfile",
    "tooling.pylock",
    "tooling.settings",  # the schema: the lock that made the record checked these settings
}
LOCK_IN_A_NEW_PYTHON = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(PROJECT_TEMPLATE)!r})
from tooling import lock
from tooling.lock import fresh
logged = []
project, unchanged = fresh.load_project(Path(sys.argv[1]))  # as noxfile.py does
lock.main(project, [], log=logged.append, unchanged=unchanged)
print(json.dumps([logged, sorted(name for name in sys.modules if name.startswith("tooling"))]))
"""


def lock_in_a_new_python(root: Path) -> tuple[list[str], set[str]]:
    """`nox -s lock` as a fresh process runs it: what it logged, the tooling modules it imported."""
    done = subprocess.run(
        [sys.executable, "-c", LOCK_IN_A_NEW_PYTHON, str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    logged, modules = json.loads(done.stdout)
    return logged, set(modules)


def test_a_lock_with_nothing_to_do_imports_nothing_that_resolves_or_checks(
    project: Path,  # noqa: F811
) -> None:
    run_main(project, run=FakeUv())
    logged, modules = lock_in_a_new_python(project)
    assert logged == [
        "inputs unchanged: nothing to resolve",
        "nothing moved: every tier pins what it pinned before",
    ]
    assert modules & HEAVY == set()
    # the record of the last lock stays out of git without a line in the project's .gitignore
    assert (project / ".lockstep_cache" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_setting_broken_after_the_lock_is_still_refused_in_one_line(
    project: Path,  # noqa: F811
) -> None:
    run_main(project, run=FakeUv())
    assert fresh.load_project(project)[1]  # recorded: the settings are not checked again
    pyproject = project / "pyproject.toml"
    pyproject.write_text('[tool.lockstep]\ndev-tier = "nope"\n')
    with pytest.raises(ToolingError, match=r"^pyproject.toml: \[tool.lockstep\] dev-tier names"):
        fresh.load_project(project)


def test_a_pylock_edited_with_its_digest_recomputed_is_still_written_again(
    project: Path,  # noqa: F811
) -> None:
    run_main(project, run=FakeUv())
    before = locks(project)
    path = project / "requirements" / "pylock.hunter.toml"
    path.write_text(with_digest(path.read_text() + EVIL))
    assert "wrote requirements/pylock.hunter.toml" in run_main(project, run=FakeUv())
    assert locks(project) == before
    assert lock_in_a_new_python(project)[1] & HEAVY == set()  # the locks are recorded again


def test_an_input_edited_while_the_lock_runs_is_locked_by_the_next_lock(
    project: Path,  # noqa: F811
) -> None:
    hunter = project / "requirements" / "hunter.in"

    def edit_while_resolving(argv: Sequence[str], cwd: Path) -> None:
        hunter.write_text("-r base.in\nnumpy>=2\n# edited while uv ran\nrich\n")

    run_main(project, run=FakeUv(during=edit_while_resolving))
    uv = FakeUv()
    assert "inputs unchanged: nothing to resolve" not in run_main(project, run=uv)
    assert uv.calls  # resolved what hunter.in says now


def test_a_dev_container_edited_after_the_lock_is_rewritten_by_the_next_lock(
    project: Path,  # noqa: F811
) -> None:
    run_main(project, run=FakeUv())
    (project / ".devcontainer").mkdir()
    devcontainer = project / ".devcontainer" / "devcontainer.json"
    devcontainer.write_text('{"build": {"args": {"PYTHON_VERSION": "3.9"}}}\n')
    logged, _ = lock_in_a_new_python(project)
    assert "wrote .devcontainer/devcontainer.json" in "\n".join(logged)
    python = (project / ".python-version").read_text().strip()
    expected = '{"build": {"args": {"PYTHON_VERSION": "' + python + '"}}}\n'
    assert devcontainer.read_text() == expected
