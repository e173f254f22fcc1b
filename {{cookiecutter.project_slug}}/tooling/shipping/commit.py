"""The commit `invoke verify` checks an image against: HEAD, exported whole into a temporary folder.

verify proves that an image is what a commit builds, never what a work tree
happens to hold. Everything it reads of the project (pyproject.toml,
.python-version, the tier files and locks, the pylocks, the Dockerfile,
base-images.lock, and the sources the project's wheel is built from) comes
from a clean export of HEAD (`git archive`), so an uncommitted edit to `src/`
or to a lock cannot change what verify expects, and "verified" names the
commit. The export is removed however verify ends, SIGTERM and Ctrl-C
included. (`export-ignore` or `export-subst` attributes can only make the
export differ from what a build of the checkout holds: a failure, never a
false "verified".)

Uncommitted changes are ignored, with one line naming the commit checked, rather
than refused: they cannot change what is proven (the image against the commit
and its labels against that commit), and refusing would only stop a reviewer
from checking a pulled image in the clone they work in. An image whose revision
label names another commit (or uncommitted changes on one) is one line saying
which commit to check out: never "verified".
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tooling import ToolingError, project
from tooling.images import provenance
from tooling.shipping.pulled_image import scratch_folder

FIRST_EPOCH = "315532800"  # 1980-01-01, what `invoke build` uses without a commit time


class CommitError(ToolingError):
    pass


@dataclass(frozen=True)
class Commit:
    sha: str  # the full commit id, as `invoke build` writes it in the revision label
    project: project.Project  # loaded from the export: every file verify reads
    source_date_epoch: str  # what `invoke build` of this commit passes: SOURCE_DATE_EPOCH's
    uncommitted: int  # paths the work tree changes or adds (git status), which are ignored


def git(root: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *arguments], capture_output=True, text=True, check=False
        )
    except OSError as error:
        raise CommitError(
            f"verify checks an image against a git commit and cannot run git: "
            f"{error.strerror or error}; install git"
        ) from None


def head(root: Path) -> str:
    """HEAD's commit id; one line when `root` is not a git checkout or has no commit."""
    if git(root, "rev-parse", "--show-toplevel").returncode != 0:
        raise CommitError(
            f"{root} is not a git checkout: verify checks an image against a commit, "
            "so run it in a clone of the project's repository"
        )
    found = git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if found.returncode != 0 or not found.stdout.strip():
        raise CommitError(
            "the checkout has no commit yet: verify checks an image against a commit, "
            "so commit the project (or check out the image's commit)"
        )
    return found.stdout.strip()


def uncommitted(root: Path) -> int:
    """How many paths of the project the work tree changes or adds (ignored files aside)."""
    shown = git(root, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    return len([line for line in shown.stdout.splitlines() if line.strip()])


def commit_epoch(root: Path, sha: str, env: Mapping[str, str]) -> str:
    """SOURCE_DATE_EPOCH as `invoke build` of this commit sets it: the variable, else its time."""
    if env.get("SOURCE_DATE_EPOCH"):
        return env["SOURCE_DATE_EPOCH"]
    shown = git(root, "log", "-1", "--format=%ct", sha)
    return shown.stdout.strip() if shown.returncode == 0 and shown.stdout.strip() else FIRST_EPOCH


def export(root: Path, sha: str, folder: Path) -> Path:
    """The project's files at commit `sha`, written under `folder`: the project's root there."""
    top = git(root, "rev-parse", "--show-toplevel").stdout.strip()
    prefix = git(root, "rev-parse", "--show-prefix").stdout.strip()  # the project's folder
    archive = folder / "commit.tar"
    tree = folder / "tree"
    tree.mkdir()
    steps = (  # from the top: in a folder, git archive would keep only what lies under it
        ["git", "-C", top, "archive", "--format=tar", "-o", str(archive), f"{sha}:{prefix}"],
        ["tar", "-x", "-f", str(archive), "-C", str(tree)],
    )
    for argv in steps:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError as error:
            raise CommitError(f"cannot export commit {sha}: {argv[0]}: {error.strerror}") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["failed"])[-1]
            raise CommitError(f"cannot export commit {sha} to check the image against: {last}")
    archive.unlink()
    return tree


@contextmanager
def exported(root: Path, env: Mapping[str, str] = os.environ) -> Iterator[Commit]:
    """HEAD of the checkout at `root`, exported into a temporary folder removed on the way out."""
    sha = head(root)
    with scratch_folder("verify-commit-") as folder:
        the_project = project.load(export(root, sha, folder))
        yield Commit(sha, the_project, commit_epoch(root, sha, env), uncommitted(root))


def revision_problem(shown: str, labels: Mapping[str, str], sha: str) -> str | None:
    """One line when the image's revision label names another commit than `sha`; else None."""
    built_from = labels.get(provenance.REVISION_LABEL, "")
    if built_from == sha:
        return None
    if not built_from:
        return (
            f"{shown} names no commit (its {provenance.REVISION_LABEL} label is empty), and "
            f"verify checks commit {sha}: build the image with `invoke build` from a commit"
        )
    if built_from.endswith(provenance.DIRTY):
        return (
            f"{shown} was built from uncommitted changes on commit "
            f"{built_from.removesuffix(provenance.DIRTY)}, which no commit builds, and verify "
            f"checks commit {sha}: build and publish from a clean commit"
        )
    return (
        f"{shown} was built from commit {built_from}, and verify checks commit {sha} "
        f"(HEAD): run `git checkout {built_from}`, then verify again"
    )
