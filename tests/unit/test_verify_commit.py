"""tooling.shipping.commit: verify checks an image against HEAD's commit, never the work tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tooling.images import provenance
from tooling.shipping import commit
from tooling.shipping.commit import CommitError

from tests.unit.conftest import PROJECT_TEMPLATE
from tests.unit.project_files import make_project


def git(root: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *arguments],
        cwd=root, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout.strip()


def committed(repository: Path, folder: str = "") -> Path:
    """A project (in `folder` of the repository, or at its root) with a lock and a source file,
    committed."""
    root = repository / folder
    root.mkdir(parents=True, exist_ok=True)
    make_project(root)
    (root / "requirements" / "sniper.txt").write_text("structlog==24.4.0\n")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('committed')\n")
    git(repository, "init", "--quiet")
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "-m", "start")
    return root


@pytest.mark.parametrize("folder", ["", "services/app"])
def test_verify_reads_every_file_from_head_and_counts_what_it_ignores(
    tmp_path: Path, folder: str
) -> None:
    root = committed(tmp_path / "repository", folder)
    sha = git(root, "rev-parse", "HEAD")
    (root / "src" / "app.py").write_text("print('uncommitted')\n")
    (root / "requirements" / "sniper.txt").write_text("structlog==25.1.0\n")
    (root / "src" / "new.py").write_text("")
    (root / "dist").mkdir()  # ignored by the project's .gitignore in a real one: not here
    with commit.exported(root, env={}) as checked:
        exported = checked.project.root
        assert checked.sha == sha
        assert (exported / "src" / "app.py").read_text() == "print('committed')\n"
        assert (exported / "requirements" / "sniper.txt").read_text() == "structlog==24.4.0\n"
        assert not (exported / "src" / "new.py").exists()
        assert checked.project.name == "app" and checked.project.python_version == "3.11"
        assert checked.uncommitted == 3  # two changed files, one new
        assert checked.source_date_epoch == git(root, "log", "-1", "--format=%ct")
    assert not exported.exists()
    with commit.exported(root, env={"SOURCE_DATE_EPOCH": "1700000000"}) as checked:
        assert checked.source_date_epoch == "1700000000"


def test_a_clean_checkout_has_nothing_to_ignore(tmp_path: Path) -> None:
    root = committed(tmp_path)
    with commit.exported(root, env={}) as checked:
        assert checked.uncommitted == 0


def test_outside_a_commit_verify_says_so_in_one_line(tmp_path: Path) -> None:
    make_project(tmp_path)
    not_git = r"is not a git checkout: verify checks an image against"
    with pytest.raises(CommitError, match=not_git), commit.exported(tmp_path):
        pass
    git(tmp_path, "init", "--quiet")
    no_commit = r"^the checkout has no commit yet: verify checks"
    with pytest.raises(CommitError, match=no_commit), commit.exported(tmp_path):
        pass


def test_an_image_of_another_commit_is_one_line_naming_both(tmp_path: Path) -> None:
    head, other = "a" * 40, "b" * 40

    def problem(revision: str | None) -> str | None:
        labels = {} if revision is None else {provenance.REVISION_LABEL: revision}
        return commit.revision_problem("reg/app:sniper", labels, head)

    assert problem(head) is None
    assert problem(other) == (
        f"reg/app:sniper was built from commit {other}, and verify checks commit {head} "
        f"(HEAD): run `git checkout {other}`, then verify again"
    )
    assert problem(f"{head}-dirty") == (
        f"reg/app:sniper was built from uncommitted changes on commit {head}, which no commit "
        f"builds, and verify checks commit {head}: build and publish from a clean commit"
    )
    for unnamed in ("", None):
        assert problem(unnamed) == (
            "reg/app:sniper names no commit (its org.opencontainers.image.revision label is "
            f"empty), and verify checks commit {head}: build the image with `invoke build` "
            "from a commit"
        )


EXPORT = """
import sys, time
from pathlib import Path
from tooling import ToolingError
from tooling.shipping import commit
try:
    with commit.exported(Path(sys.argv[1])):
        print("exported", flush=True)
        time.sleep(60)
except ToolingError as error:  # as tasks.py ends a task
    print(f"error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_verify_removes_the_exported_commit(tmp_path: Path, stop: signal.Signals) -> None:
    root = committed(tmp_path / "repository")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    environment = dict(os.environ, TMPDIR=str(scratch), PYTHONPATH=str(PROJECT_TEMPLATE))
    child = subprocess.Popen(
        [sys.executable, "-c", EXPORT, str(root)],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stdout.readline() == "exported\n"
    assert len(list(scratch.iterdir())) == 1
    child.send_signal(stop)
    _, stderr = child.communicate(timeout=60)
    assert stderr.startswith(f"error: stopped by {stop.name}: nothing was verified")
    assert stderr.count("\n") == 1
    assert child.returncode == 128 + stop
    assert list(scratch.iterdir()) == []
