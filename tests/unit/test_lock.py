"""Unit tests of tooling.lock with a stand-in for uv (no network)."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import platform
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import uv_stand_in
from tooling import atomic, lock, lockfile
from tooling.project import load
from tooling.tiers import TierError
from uv_stand_in import tier_compile

HASHES = {name: hashlib.sha256(name.encode()).hexdigest() for name in ("a", "b", "c", "d")}


def block(name: str, version: str, *via: str, marker: str = "", digest: str = "a") -> str:
    requirement = f"{name}=={version}" + (f" ; {marker}" if marker else "")
    lines = [f"{requirement} \\", f"    --hash=sha256:{HASHES[digest]}"]
    if len(via) == 1:
        lines.append(f"    # via {via[0]}")
    else:
        lines += ["    # via", *(f"    #   {origin}" for origin in via)]
    return "\n".join(lines) + "\n"


def union_body(numpy: str = "2.0.0", structlog: str = "24.1.0") -> str:
    return (
        block("numpy", numpy, "-r requirements/hunter.in", "pandas")
        + block("pandas", "2.2.0", "-r requirements/strategist.in", digest="b")
        + block("structlog", structlog, "-r requirements/base.in", digest="c")
    )


UNION_BODY = union_body()

Hook = Callable[[Sequence[str], Path], None]


class FakeUv:
    """Writes a canned resolution, like `uv pip compile -o FILE` would."""

    def __init__(
        self,
        body: str = UNION_BODY,
        returncode: int = 0,
        stderr: str = "",
        during: Hook | None = None,
    ) -> None:
        self.body, self.returncode, self.stderr, self.during = body, returncode, stderr, during
        self.calls: list[list[str]] = []  # resolutions of a union
        self.tier_calls: list[str] = []  # the .in of each tier compiled against its union
        self.listings: list[list[str]] = []  # PEP 751 locks: of the union, of its pins

    def __call__(self, argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        if "pylock.toml" in argv:
            self.listings.append(list(argv))
        if (derived := tier_compile(argv, cwd)) is not None:
            if lock.UNION_CONSTRAINTS in argv:
                self.tier_calls.append(argv[2])
            return derived
        self.calls.append(list(argv))
        if self.during:
            self.during(argv, cwd)
        if self.returncode == 0:
            Path(argv[argv.index("--output-file") + 1]).write_text(self.body)
        return subprocess.CompletedProcess(argv, self.returncode, "", self.stderr)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".python-version").write_text("3.11\n")
    (tmp_path / "pyproject.toml").write_text("[tool.lockstep]\n")
    requirements = tmp_path / "requirements"
    requirements.mkdir()
    (requirements / "base.in").write_text("structlog\n")
    (requirements / "sniper.in").write_text("-r base.in\n")
    (requirements / "hunter.in").write_text("-r base.in\nnumpy>=2\n")
    (requirements / "strategist.in").write_text("-r hunter.in\npandas\n")
    return tmp_path


def locks(root: Path) -> dict[str, str]:
    """Every lock the lock writes: the tiers' and unions' .txt, and the tiers' pylocks."""
    folder = root / "requirements"
    found = [*folder.glob("*.txt"), *folder.glob("pylock.*.toml")]
    return {p.name: p.read_text() for p in sorted(found)}


def every_file(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "requirements").iterdir())


def run_main(root: Path, *argv: str, run: FakeUv) -> list[str]:
    """Run the lock command as nox does; return what it logged."""
    logged: list[str] = []
    lock.main(load(root), list(argv), log=logged.append, run=run)
    return logged


def test_tiers_are_derived_from_one_union(project: Path) -> None:
    uv = FakeUv()
    result = lock.lock(load(project), run=uv)
    assert result.resolved and len(uv.calls) == 1
    written = locks(project)
    tiers = ["base", "sniper", "hunter", "strategist"]
    assert set(written) == {
        "_union.txt",
        *(f"{tier}.txt" for tier in tiers),
        *(f"pylock.{tier}.toml" for tier in tiers),
    }
    assert "structlog==24.1.0" in written["sniper.txt"]
    assert "numpy" not in written["base.txt"]
    assert "numpy==2.0.0" in written["hunter.txt"] and "pandas" not in written["hunter.txt"]
    assert "# via -r requirements/hunter.in" in written["hunter.txt"]
    assert "#   pandas" in written["strategist.txt"]
    assert lock.check(load(project)) == []


def test_tiers_asking_the_same_share_one_compile_and_the_top_tier_is_the_union(
    project: Path,
) -> None:
    uv = FakeUv()
    lock.lock(load(project), run=uv)
    # sniper.in is only `-r base.in`; strategist asks for everything the union does
    assert sorted(uv.tier_calls) == ["requirements/base.in", "requirements/hunter.in"]
    written = {
        name: [(pin.lines, pin.via) for pin in lockfile.parse(text).pins]
        for name, text in locks(project).items()
        if name.endswith(".txt")
    }
    assert written["sniper.txt"] == written["base.txt"]
    assert written["strategist.txt"] == written["_union.txt"]
    (project / "requirements" / "sniper.in").write_text("-r base.in\n# still only base\n")
    uv = FakeUv()
    lock.lock(load(project), run=uv)
    assert uv.calls == [] and uv.tier_calls == []


def test_nothing_changed_means_nothing_resolved(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    before = locks(project)
    uv = FakeUv()
    result = lock.lock(load(project), run=uv)
    assert uv.calls == [] and not result.resolved and result.written == []
    assert locks(project) == before
    assert run_main(project, run=uv) == [
        "inputs unchanged: nothing to resolve",
        "nothing moved: every tier pins what it pinned before",
    ]


def test_failed_resolution_keeps_every_lock(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    before = locks(project)
    (project / "requirements" / "hunter.in").write_text("-r base.in\nnumpy\nnope==1\n")
    failing = FakeUv(
        returncode=1, stderr="error: No solution found\n  cause: nope==1 is missing.\n"
    )
    with pytest.raises(lock.LockError, match=r"cannot lock requirements/hunter\.in \(nope==1\)"):
        lock.lock(load(project), run=failing)
    assert locks(project) == before
    assert not list((project / "requirements").glob(".*.tmp"))


# --- the union verifies itself --------------------------------------------------------


def test_a_cut_union_is_resolved_again_never_copied_into_tiers(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    good = locks(project)
    union = project / "requirements" / "_union.txt"
    text = union.read_text()
    union.write_text(text[: text.index("pandas==") + 30])  # cut inside a hash line
    assert (
        "union: requirements/_union.txt does not match the digest of its body (cut or edited by hand)"
        in lock.check(load(project))
    )
    uv = FakeUv()
    logged = run_main(project, run=uv)
    assert len(uv.calls) == 1
    assert logged[0] == (
        "requirements/_union.txt does not match the digest of its body (cut or edited by hand): "
        "resolving again instead of deriving tiers from it"
    )
    assert "--output-file" in uv.calls[0]  # the damaged union does not seed the resolution
    seeded = Path(uv.calls[0][uv.calls[0].index("--output-file") + 1])
    assert not seeded.exists() or seeded.read_text() == UNION_BODY
    assert locks(project) == good
    assert lock.check(load(project)) == []


def test_any_edit_of_the_union_body_fails_the_check(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    union = project / "requirements" / "_union.txt"
    text = union.read_text()
    start = text.index("pandas==")
    union.write_text(text[:start] + text[text.index("structlog==") :])  # one package block gone
    problems = lock.check(load(project))
    assert problems == [
        "union: requirements/_union.txt does not match the digest of its body "
        "(cut or edited by hand)"
    ]


def test_a_hand_edited_union_and_tier_pair_is_caught_by_the_requirements(
    project: Path, forge_digests: Callable[[Path], None]
) -> None:
    lock.lock(load(project), run=FakeUv())
    requirements = project / "requirements"
    for name in ("_union.txt", "hunter.txt", "strategist.txt"):
        path = requirements / name
        path.write_text(path.read_text().replace("numpy==2.0.0", "numpy==1.26.0"))
    forge_digests(project)  # every digest a lock records, as a forger would
    problems = lock.check(load(project))
    assert problems == [
        "hunter: requirements/hunter.in:2: numpy>=2 is not met by hunter.txt (numpy 1.26.0)",
        "strategist: requirements/hunter.in:2: numpy>=2 is not met by strategist.txt "
        "(numpy 1.26.0)",
    ]


def test_a_requirement_is_met_by_one_of_its_marker_forks(project: Path) -> None:
    forked = (
        block("numpy", "1.26.4", "-r requirements/hunter.in", marker="python_full_version < '3.12'")
        + block(
            "numpy",
            "2.1.0",
            "-r requirements/hunter.in",
            marker="python_full_version >= '3.12'",
            digest="d",  # another version, another file
        )
        + block("structlog", "24.1.0", "-r requirements/base.in", digest="c")
        + block("pandas", "2.2.0", "-r requirements/strategist.in", digest="b")
    )
    lock.lock(load(project), run=FakeUv(body=forked))
    assert lock.check(load(project)) == []
    hunter = lockfile.read(project / "requirements" / "hunter.txt")
    assert [pin.version for pin in hunter.pins if pin.name == "numpy"] == ["1.26.4", "2.1.0"]


def test_a_requirement_without_a_pin_is_named(
    project: Path, forge_digests: Callable[[Path], None]
) -> None:
    lock.lock(load(project), run=FakeUv())
    with (project / "requirements" / "base.in").open("a") as stream:
        stream.write("colorama ; sys_platform == 'win32'\nnever ; python_version < '3.0'\n")
    assert all("changed since" in problem for problem in lock.check(load(project)))
    forge_digests(project)
    problems = lock.check(load(project))
    assert (
        'base: requirements/base.in:2: colorama; sys_platform == "win32" has no pin in base.txt'
        in (problems)
    )
    assert not any("never" in problem for problem in problems)


# --- inputs are read once -------------------------------------------------------------


def test_uv_resolves_the_bytes_that_were_digested(project: Path) -> None:
    hunter = project / "requirements" / "hunter.in"
    seen: list[str] = []

    def edit_while_resolving(argv: Sequence[str], cwd: Path) -> None:
        seen.append((cwd / "requirements" / "hunter.in").read_text())
        hunter.write_text("-r base.in\nnumpy>=2\nrich\n")

    lock.lock(load(project), run=FakeUv(during=edit_while_resolving))
    assert seen == ["-r base.in\nnumpy>=2\n"]  # uv read the snapshot, not the live file
    problems = lock.check(load(project))
    assert "hunter: requirements/hunter.in changed since requirements/hunter.txt was locked" in (
        problems
    )
    assert "union: requirements/hunter.in changed since requirements/_union.txt was locked" in (
        problems
    )


def test_a_byte_order_mark_is_read_like_any_utf8(project: Path) -> None:
    (project / "requirements" / "hunter.in").write_bytes(b"\xef\xbb\xbf-r base.in\nnumpy>=2\n")
    lock.lock(load(project), run=FakeUv())
    assert "structlog==24.1.0" in locks(project)["hunter.txt"]
    assert lock.check(load(project)) == []


def test_bytes_that_are_not_utf8_are_one_line(project: Path) -> None:
    (project / "requirements" / "base.in").write_bytes(b"structlog\n# caf\xe9\n")
    with pytest.raises(TierError) as raised:
        lock.lock(load(project), run=FakeUv())
    assert str(raised.value) == (
        "requirements/base.in:2: byte 0xe9 is not UTF-8; save the file as UTF-8"
    )
    assert locks(project) == {}


# --- credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://bob:t0ken@gpu.example/simple",
        "https://gpu.example/simple?bob=t0ken",
        "https://gpu.example/simple#bob-t0ken",
        "https://bob:t0k/en@gpu.example/simple",
    ],
    ids=["credentials", "query-token", "fragment", "slash-in-password"],
)
def test_index_credentials_in_a_tier_reach_uv_but_never_a_lock(project: Path, url: str) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.lockstep]\nindex-url = "https://pypi.example/simple"\n'
    )
    hunter = project / "requirements" / "hunter.in"
    hunter.write_text(f"-r base.in\n--extra-index-url {url}\nnumpy>=2\n")
    resolved_from: list[str] = []

    def read_snapshot(argv: Sequence[str], cwd: Path) -> None:
        resolved_from.append((cwd / "requirements" / "hunter.in").read_text())

    uv = FakeUv(during=read_snapshot)
    lock.lock(load(project), run=uv)
    assert "https://pypi.example/simple" in uv.calls[0]
    assert url in resolved_from[0]
    written = locks(project)
    assert not any("bob" in text or "t0" in text for text in written.values())
    assert "--index-url https://pypi.example/simple\n" in written["base.txt"]
    assert "--extra-index-url https://gpu.example/simple\n" in written["strategist.txt"]
    assert "gpu.example" not in written["base.txt"]
    assert lock.check(load(project)) == []


def test_uv_error_text_is_redacted(project: Path) -> None:
    failing = FakeUv(
        returncode=2,
        stderr="error: Failed to fetch: `https://alice:s3cret@pypi.example/simple/numpy/`\n",
    )
    with pytest.raises(lock.LockError) as raised:
        lock.lock(load(project), run=failing)
    assert "s3cret" not in str(raised.value) and "alice" not in str(raised.value)
    assert "https://pypi.example/simple/numpy/" in str(raised.value)


# --- ordinary files -------------------------------------------------------------------


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_locks_get_the_mode_of_a_new_file(project: Path, mask: int, mode: int) -> None:
    with umask(mask):
        lock.lock(load(project), run=FakeUv())
    modes = {p.name: p.stat().st_mode & 0o777 for p in (project / "requirements").glob("*.txt")}
    assert set(modes.values()) == {mode}, modes


def test_a_full_disk_is_one_line_and_changes_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock.lock(load(project), run=FakeUv())
    before = locks(project)
    (project / "requirements" / "hunter.in").write_text("-r base.in\nnumpy>=2.0\n")
    writes = 0

    def disk_fills_up(handle: int, data: bytes) -> int:
        nonlocal writes
        writes += 1
        if writes > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(handle, data)

    real_write = os.write
    monkeypatch.setattr(atomic.os, "write", disk_fills_up)
    with pytest.raises(atomic.WriteError) as raised:
        lock.lock(load(project), run=FakeUv())
    assert re.fullmatch(
        r"cannot write requirements/\w+\.txt: No space left on device; no lock was changed",
        str(raised.value),
    )
    assert locks(project) == before
    assert every_file(project) == sorted(
        [*before, "base.in", "sniper.in", "hunter.in", "strategist.in"]
    )


def test_a_failing_rename_puts_every_lock_back(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock.lock(load(project), run=FakeUv())
    before = locks(project)
    replaced = 0
    real_replace = os.replace

    def fails_on_the_third(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        nonlocal replaced
        replaced += 1
        if replaced == 3:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", fails_on_the_third)
    with pytest.raises(atomic.WriteError, match=r"Input/output error; no lock was changed$"):
        lock.lock(load(project), upgrade=True, run=FakeUv(body=union_body(numpy="2.1.0")))
    assert locks(project) == before
    assert not list((project / "requirements").glob(".*.tmp"))


def test_write_all_leaves_nothing_behind_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("old a\n")

    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_all({first: "new a\n", second: "new b\n"})
    assert first.read_text() == "old a\n" and not second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


# --- constraints, removed tiers -------------------------------------------------------


def test_a_constraint_file_is_an_input_of_the_tiers_that_use_it(
    project: Path, forge_digests: Callable[[Path], None]
) -> None:
    requirements = project / "requirements"
    (requirements / "constraints.txt").write_text("numpy<3\n")
    (requirements / "hunter.in").write_text("-r base.in\n-c constraints.txt\nnumpy>=2\n")
    lock.lock(load(project), run=FakeUv())
    assert "#   requirements/constraints.txt sha256:" in locks(project)["strategist.txt"]
    assert "constraints.txt" not in locks(project)["base.txt"]
    assert lock.check(load(project)) == []
    (requirements / "constraints.txt").write_text("numpy<2.1\n")
    problems = lock.check(load(project))
    assert (
        "hunter: requirements/constraints.txt changed since requirements/hunter.txt was locked"
        in (problems)
    )
    assert not any(problem.startswith(("base:", "sniper:")) for problem in problems)
    (requirements / "constraints.txt").write_text("numpy<2\n")
    forge_digests(project)
    assert (
        "hunter: requirements/constraints.txt:1: numpy<2 is not met by hunter.txt (numpy 2.0.0)"
        in (lock.check(load(project)))
    )


def test_a_constraint_file_anywhere_in_the_project_is_resolved_from_the_snapshot(
    project: Path,
) -> None:
    (project / "limits").mkdir()
    (project / "limits" / "numeric.cfg").write_text("numpy<3\n")
    (project / "requirements" / "hunter.in").write_text(
        "-r base.in\n-c ../limits/numeric.cfg\nnumpy>=2\n"
    )
    seen: list[str] = []

    def read_constraint(argv: Sequence[str], cwd: Path) -> None:
        seen.append((cwd / "limits" / "numeric.cfg").read_text())

    lock.lock(load(project), run=FakeUv(during=read_constraint))
    assert seen == ["numpy<3\n"]
    assert "#   limits/numeric.cfg sha256:" in locks(project)["hunter.txt"]
    assert lock.check(load(project)) == []


def test_a_removed_tier_loses_its_lock(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    requirements = project / "requirements"
    (requirements / "notes.txt").write_text("written by hand\n")
    (requirements / "sniper.in").unlink()
    assert (
        "sniper: requirements/sniper.txt is left over: requirements/sniper.in is gone; "
        "`nox -s lock` deletes it"
    ) in lock.check(load(project))
    logged = run_main(project, run=FakeUv())
    assert "deleted requirements/sniper.txt: requirements/sniper.in is gone" in logged
    assert not (requirements / "sniper.txt").exists()
    assert (requirements / "notes.txt").read_text() == "written by hand\n"
    assert lock.check(load(project)) == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("base-old.txt", None),  # a copy of base.txt: its header names base.txt
        ("_union-old.txt", None),  # a copy of the union
        ("legacy.txt", "# requirements/legacy.txt: my own notes\nnumpy==1.0\n"),
        ("pinned.txt", "# requirements/pinned.txt: x\n# Generated by hand\nsix==1.0\n"),
    ],
    ids=["copy-of-a-tier-lock", "copy-of-the-union", "own-header", "other-generator"],
)
def test_a_file_that_is_not_provably_ours_is_never_deleted(
    project: Path, name: str, text: str | None
) -> None:
    lock.lock(load(project), run=FakeUv())
    requirements = project / "requirements"
    source = "_union.txt" if name.startswith("_") else "base.txt"
    content = text if text is not None else (requirements / source).read_text()
    (requirements / name).write_text(content)
    assert lock.check(load(project)) == []
    logged = run_main(project, run=FakeUv())
    assert not [line for line in logged if line.startswith("deleted")]
    assert (requirements / name).read_text() == content


def test_a_removed_tier_with_crlf_endings_still_loses_its_lock(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    sniper = project / "requirements" / "sniper.txt"
    sniper.write_bytes(sniper.read_bytes().replace(b"\n", b"\r\n"))
    (project / "requirements" / "sniper.in").unlink()
    logged = run_main(project, run=FakeUv())
    assert "deleted requirements/sniper.txt: requirements/sniper.in is gone" in logged
    assert not sniper.exists()


# --- readable results -----------------------------------------------------------------


def test_the_check_prints_one_line_per_problem_then_advice(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    (project / "requirements" / "hunter.in").write_text("-r base.in\nnumpy>=2.0\n")
    (project / "requirements" / "base.txt").unlink()
    logged: list[str] = []
    with pytest.raises(lock.LockError) as raised:
        lock.main(load(project), ["--check"], log=logged.append)
    assert logged == [
        "union: requirements/hunter.in changed since requirements/_union.txt was locked",
        "base: requirements/base.txt is missing",
        "hunter: requirements/hunter.in changed since requirements/hunter.txt was locked",
        "strategist: requirements/hunter.in changed since requirements/strategist.txt was locked",
    ]
    assert str(raised.value) == (
        "lock check failed: 4 problems in union, base, hunter, strategist; fix the inputs named "
        "above (never edit a lock), run `nox -s lock` and commit requirements/"
    )


def test_the_summary_names_only_the_fixes_the_problems_need(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    (project / "Dockerfile").write_text("ARG PYTHON_VERSION=3.10\nFROM python:${PYTHON_VERSION}\n")
    problems = lock.check(load(project))
    assert [problem.split(":", 1)[0] for problem in problems] == ["python"]
    assert lock.advice(problems) == (
        "lock check failed: 1 problem in python; do what each python line above says"
    )
    (project / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.10"\n')
    problems = lock.check(load(project))
    assert lock.advice(problems) == (
        "lock check failed: 2 problems in python; fix the inputs named above (never edit a lock), "
        "run `nox -s lock` and commit requirements/, then do what each python line above says"
    )


def test_every_lock_run_says_what_moved(project: Path, tmp_path: Path) -> None:
    assert run_main(project, run=FakeUv())[-4:] == [
        "base: first lock, 1 package",
        "hunter: first lock, 2 packages",
        "sniper: first lock, 1 package",
        "strategist: first lock, 3 packages",
    ]
    (project / "requirements" / "base.in").write_text("structlog\nsix\n")
    moved = union_body(numpy="2.1.0", structlog="25.1.0") + block(
        "six", "1.17.0", "-r requirements/base.in", digest="d"
    )
    report = tmp_path / "moved.md"
    logged = run_main(project, "--report", str(report), run=FakeUv(body=moved))
    assert logged[-4:] == [
        "numpy 2.0.0 → 2.1.0 (hunter, strategist)",
        "structlog 24.1.0 → 25.1.0 (base, hunter, sniper, strategist)",
        "added six 1.17.0 (base, hunter, sniper, strategist)",
        f"wrote the report {report}",
    ]
    markdown = report.read_text()
    assert "- numpy 2.0.0 → 2.1.0 (hunter, strategist)" in markdown
    assert (
        "## hunter\n\n| package | before | after |\n|---|---|---|\n| numpy | 2.0.0 | 2.1.0 |"
        in (markdown)
    )
    assert "| six | (new) | 1.17.0 |" in markdown


def test_upgrade_package_says_what_moved_and_removed(project: Path) -> None:
    run_main(project, run=FakeUv())
    upgraded = block("numpy", "2.1.0", "-r requirements/hunter.in") + block(
        "structlog", "24.1.0", "-r requirements/base.in", digest="c"
    )
    (project / "requirements" / "strategist.in").write_text("-r hunter.in\n")
    logged = run_main(project, "--upgrade-package", "numpy", run=FakeUv(body=upgraded))
    assert logged[-2:] == [
        "numpy 2.0.0 → 2.1.0 (hunter, strategist)",
        "removed pandas 2.2.0 (strategist)",
    ]


@pytest.mark.parametrize(
    "uv",
    [FakeUv(returncode=-signal.SIGKILL), FakeUv(returncode=-signal.SIGINT)],
    ids=["killed", "interrupted"],
)
def test_an_interrupted_uv_blames_no_file(project: Path, uv: FakeUv) -> None:
    (project / "requirements" / "base.in").write_text("structlog\nuv\n")
    with pytest.raises(lock.LockError) as raised:
        lock.lock(load(project), run=uv)
    assert re.fullmatch(
        r"uv was interrupted \(SIG(KILL|INT)\): no lock was changed", str(raised.value)
    )


def test_keyboard_interrupt_during_the_resolve_changes_nothing(project: Path) -> None:
    def interrupt(argv: Sequence[str], cwd: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(lock.LockError, match=r"^uv was interrupted: no lock was changed$"):
        lock.lock(load(project), run=FakeUv(during=interrupt))
    assert locks(project) == {}


# --- as before ------------------------------------------------------------------------


def test_check_names_stale_tiers_and_ignores_comments(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    with (project / "requirements" / "base.in").open("a") as stream:
        stream.write("# just a comment\n")
    assert lock.check(load(project)) == []
    (project / "requirements" / "hunter.in").write_text("-r base.in\nnumpy>=2.0\n")
    problems = lock.check(load(project))
    assert "hunter: requirements/hunter.in changed since requirements/hunter.txt was locked" in (
        problems
    )
    assert not any(problem.startswith(("base:", "sniper:")) for problem in problems)


def test_check_catches_a_hand_edit_and_unhashed_pins(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    hunter = project / "requirements" / "hunter.txt"
    hunter.write_text(hunter.read_text().replace("numpy==2.0.0", "numpy==2.0.1"))
    assert lock.check(load(project)) == [
        "hunter: requirements/hunter.txt does not match the digest of its body "
        "(cut or edited by hand)"
    ]
    hunter.write_text(hunter.read_text().replace("    --hash=sha256:" + HASHES["a"] + "\n", ""))
    assert "hunter: requirements/hunter.txt: numpy==2.0.1 has no --hash" in lock.check(
        load(project)
    )


def test_upgrade_package_must_be_locked(project: Path) -> None:
    with pytest.raises(lock.LockError, match="--upgrade-package nope: not locked in any tier"):
        lock.lock(load(project), upgrade_packages=["nope"], run=FakeUv())
    assert locks(project) == {}


def test_upgrade_flags_reach_uv(project: Path) -> None:
    uv = FakeUv()
    lock.lock(load(project), upgrade_packages=["numpy"], run=uv)
    assert ("--upgrade-package", "numpy") in itertools.pairwise(uv.calls[0])
    assert "--generate-hashes" in uv.calls[0] and "3.11" in uv.calls[0]


def test_index_settings_are_used_and_recorded(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.lockstep]\nextra-index-urls = ["https://download.pytorch.org/whl/cpu"]\n'
    )
    uv = FakeUv()
    lock.lock(load(project), run=uv)
    assert "--extra-index-url" in uv.calls[0]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu\n" in locks(project)["base.txt"]


def test_report_cannot_go_with_check(project: Path) -> None:
    with pytest.raises(SystemExit):
        lock.parse_arguments(["--check", "--report", "x.md"])


def test_a_report_that_cannot_be_written_changes_no_lock(project: Path, tmp_path: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    (project / ".python-version").write_text("3.12\n")
    (project / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.11"\n')
    pyproject = (project / "pyproject.toml").read_text()
    before = locks(project)
    (project / "requirements" / "sniper.in").write_text("-r base.in\nsix\n")
    with pytest.raises(atomic.WriteError, match=r"cannot write dir/m\.md: No such file"):
        run_main(project, "--report", str(tmp_path / "nonexistent" / "dir" / "m.md"), run=FakeUv())
    assert locks(project) == before
    assert (project / "pyproject.toml").read_text() == pyproject
    assert not [name for name in every_file(project) if name.endswith(".tmp")]
    assert lock.check(load(project))  # still stale: nothing claimed a lock


@pytest.mark.parametrize("target", ["requirements/_union.txt", "requirements/base.txt"])
def test_a_report_onto_a_lock_is_refused(project: Path, target: str) -> None:
    lock.lock(load(project), run=FakeUv())
    before = locks(project)
    with pytest.raises(lock.LockError, match="written by the lock; name another"):
        run_main(project, "--report", str(project / target), run=FakeUv())
    assert locks(project) == before


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda text: text.replace("structlog==", "<<<<<<< HEAD\nstructlog=="), "conflict marker"),
        (lambda text: text.replace("structlog==24.1.0", "structlog=24.1.0"), "not a requirement"),
        (lambda text: text[: text.index("structlog==")], "does not match the digest"),
    ],
    ids=["conflict-marker", "garbled-pin", "cut"],
)
def test_a_damaged_tier_lock_is_re_derived_without_inventing_moves(
    project: Path, damage: Callable[[str], str], reason: str
) -> None:
    lock.lock(load(project), run=FakeUv())
    sniper = project / "requirements" / "sniper.txt"
    good = sniper.read_text()
    sniper.write_text(damage(good))
    problems = lock.check(load(project))
    assert problems and all("\n" not in problem and "^" not in problem for problem in problems)
    assert any(problem.startswith("sniper:") and reason in problem for problem in problems)
    logged = run_main(project, run=FakeUv())
    note = next(line for line in logged if "was damaged" in line)
    assert re.fullmatch(rf"requirements/sniper\.txt was damaged \(.*{reason}.*\): re-derived", note)
    assert not [line for line in logged if line.startswith(("added", "removed"))]
    assert "nothing moved: every tier pins what it pinned before" in logged
    assert sniper.read_text() == good


def test_a_damaged_lock_is_measured_against_its_last_commit(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "."], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "locked"], cwd=project, check=True)
    sniper = project / "requirements" / "sniper.txt"
    sniper.write_text("<<<<<<< HEAD\n" + sniper.read_text())
    (project / "requirements" / "base.in").write_text("structlog\nsix\n")
    moved = union_body(structlog="25.1.0") + block(
        "six", "1.17.0", "-r requirements/base.in", digest="d"
    )
    logged = run_main(project, run=FakeUv(body=moved))
    assert (
        "requirements/sniper.txt was damaged (line 1: conflict marker): re-derived; "
        "what moved is against its last commit"
    ) in logged
    assert "structlog 24.1.0 → 25.1.0 (base, hunter, sniper, strategist)" in logged
    assert "added six 1.17.0 (base, hunter, sniper, strategist)" in logged


def test_crlf_locks_are_named_as_line_endings_and_rewritten_without_resolving(
    project: Path,
) -> None:
    lock.lock(load(project), run=FakeUv())
    before = locks(project)
    for name in before:
        path = project / "requirements" / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    problems = lock.check(load(project))
    assert len(problems) == len(before)
    assert all("has CRLF line endings" in problem for problem in problems)
    assert not [problem for problem in problems if "other options" in problem]
    uv = FakeUv()
    logged = run_main(project, run=uv)
    assert uv.calls == [] and "inputs unchanged: nothing to resolve" in logged
    assert locks(project) == before
    assert lock.check(load(project)) == []


@pytest.mark.parametrize("separator", ["\u0085", "\u2028", "\x0c", "\x1d"])
def test_a_line_separator_in_a_comment_is_part_of_the_comment(
    project: Path, separator: str
) -> None:
    (project / "requirements" / "base.in").write_text(f"structlog  # caf{separator}e au lait\n")
    lock.lock(load(project), run=FakeUv())
    assert lock.check(load(project)) == []


def test_a_continued_requirement_is_locked_and_checked_as_pip_reads_it(project: Path) -> None:
    (project / "requirements" / "hunter.in").write_text(
        "-r base.in\nnum\\\npy>=2 \\\n# numpy 2 for the new API\n"
    )
    lock.lock(load(project), run=FakeUv())
    assert lock.check(load(project)) == []
    (project / "requirements" / "hunter.in").write_text("-r base.in\nnum\\\npy>=3 \\\n# later\n")
    assert lock.check(load(project))[0] == (
        "union: requirements/hunter.in changed since requirements/_union.txt was locked"
    )


# --- blame where the cause is ------------------------------------------------------------

UNREACHABLE = (
    "error: Request failed after 3 retries\n"
    "  Caused by: Failed to fetch: `{url}/pre-commit/`\n"
    "  Caused by: error sending request for url ({url}/pre-commit/)\n"
    "  Caused by: tcp connect error: Connection refused (os error 111)\n"
)


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("http://127.0.0.1:9/simple", "http://127.0.0.1:9/simple"),
        ("https://alice:s3cret@private.example/simple/", "https://private.example/simple/"),
        ("https://private.example/simple?token=S3CRET#frag", "https://private.example/simple"),
    ],
    ids=["plain", "credentials", "query-token"],
)
def test_an_unreachable_index_blames_the_line_that_added_it(
    project: Path, written: str, shown: str
) -> None:
    (project / "requirements" / "dev.in").write_text("-r strategist.in\npre-commit\n")
    (project / "requirements" / "sniper.in").write_text(
        f"-r base.in\n--extra-index-url {written}\n"
    )
    public = shown.rstrip("/")
    uv = FakeUv(returncode=2, stderr=UNREACHABLE.format(url=public))
    with pytest.raises(lock.LockError) as raised:
        lock.lock(load(project), run=uv)
    message = str(raised.value)
    assert message.startswith(
        f"cannot lock requirements/sniper.in:2 (--extra-index-url {shown}): "
        "Request failed after 3 retries: Failed to fetch"
    )
    assert "dev.in" not in message and "\n" not in message
    assert "S3CRET" not in message and "s3cret" not in message and "alice" not in message


def test_an_unreachable_index_from_the_settings_blames_the_setting(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.lockstep]\nextra-index-urls = ["https://mirror.example/simple"]\n'
    )
    uv = FakeUv(returncode=2, stderr=UNREACHABLE.format(url="https://mirror.example/simple"))
    with pytest.raises(lock.LockError) as raised:
        lock.lock(load(project), run=uv)
    assert str(raised.value).startswith(
        "cannot lock pyproject.toml [tool.lockstep] extra-index-urls: Request failed"
    )


def test_an_unreachable_default_index_blames_no_package(project: Path) -> None:
    uv = FakeUv(returncode=2, stderr=UNREACHABLE.format(url="https://pypi.org/simple/numpy"))
    with pytest.raises(lock.LockError) as raised:
        lock.lock(load(project), run=uv)
    message = str(raised.value)
    assert message.startswith("cannot lock: the package index could not be reached: Request")
    assert ".in" not in message


@pytest.mark.parametrize(
    "value",
    ["numpy;rm -rf x", "numpy==2.0", "-x", "", "num py", "https://evil.example/x", "numpy[extra]"],
)
def test_a_bad_upgrade_package_names_the_option_before_uv_runs(project: Path, value: str) -> None:
    uv = FakeUv()
    with pytest.raises(lock.LockError) as raised:
        run_main(project, f"--upgrade-package={value}", run=uv)
    assert str(raised.value).startswith(f"--upgrade-package {value!r} is not a package name")
    assert uv.calls == [] and every_file(project) == sorted(
        ["base.in", "sniper.in", "hunter.in", "strategist.in"]
    )


# --- what a killed run leaves ----------------------------------------------------------


def finished_process_id() -> int:
    """The id of a process that has ended: what a killed run's id looks like afterwards."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_the_next_run_removes_what_a_killed_run_left(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock.lock(load(project), run=FakeUv())
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(atomic.tempfile, "tempdir", str(system_tmp))
    dead = finished_process_id()
    requirements = project / "requirements"
    left = [
        requirements / f".sniper.txt.{dead}-1a2b3c4d.tmp",  # a staged lock
        requirements / f".pyproject.toml.{dead}-0badcafe.tmp",
    ]
    for path in left:
        path.write_text("half written")
    (system_tmp / f"lockstep-{dead}-k1ll3d").mkdir()
    (system_tmp / f"lockstep-{dead}-k1ll3d" / "union.txt").write_text("half")
    with subprocess.Popen(["sleep", "30"]) as alive:
        try:
            running = requirements / f".base.txt.{alive.pid}-5e5e5e5e.tmp"
            running.write_text("another lock at work")
            (system_tmp / f"lockstep-{alive.pid}-busy").mkdir()
            keep = [
                requirements / ".notes.tmp",
                system_tmp / "lockstep-notes",
                requirements / f"lockstep-{dead}-notes",  # a work folder's name, not in tmp
            ]
            keep[0].write_text("mine")
            keep[1].mkdir()
            keep[2].write_text("mine too")
            (requirements / "hunter.in").write_text("-r base.in\nnumpy>=2.0\n")
            lock.lock(load(project), run=FakeUv())
            assert not any(path.exists() for path in left)
            assert not (system_tmp / f"lockstep-{dead}-k1ll3d").exists()
            assert running.exists() and (system_tmp / f"lockstep-{alive.pid}-busy").exists()
            assert all(path.exists() for path in keep)
        finally:
            alive.kill()


def test_locks_leave_out_wheels_no_allowed_python_can_install(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_wheels = UNION_BODY.replace(
        f"    --hash=sha256:{HASHES['a']}\n",
        f"    --hash=sha256:{HASHES['a']} \\\n    --hash=sha256:{HASHES['d']}\n",
        1,
    )
    monkeypatch.setitem(uv_stand_in.WHEEL_TAGS, f"sha256:{HASHES['d']}", "cp310-cp310-win32")
    lock.lock(load(project), run=FakeUv(two_wheels))
    written = locks(project)
    for name in ("_union.txt", "hunter.txt", "strategist.txt"):
        assert f"numpy==2.0.0 \\\n    --hash=sha256:{HASHES['a']}\n" in written[name]
        assert HASHES["d"] not in written[name]
    assert lock.check(load(project)) == []


def test_a_file_listing_uv_cannot_make_is_one_line_and_changes_no_lock(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    before = locks(project)
    (project / "requirements" / "base.in").write_text("structlog\nrich\n")
    upgraded = FakeUv(union_body(structlog="24.4.0"))
    listings: list[list[str]] = []

    def no_listing(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        if "pylock.toml" not in argv:
            return upgraded(argv, cwd)
        listings.append(list(argv))
        error = "error: Failed to fetch: `https://alice:s3cret@pypi.example/simple/numpy/`\n"
        return subprocess.CompletedProcess(argv, 2, "", error)

    with pytest.raises(lock.LockError) as raised:
        lock.lock(load(project), run=no_listing)
    assert str(raised.value) == (
        "uv could not list the locked files: Failed to fetch: `https://pypi.example/simple/numpy/`"
    )
    # of the union's pins: from the cache, then the index
    assert [("--offline" in argv, "--constraint" in argv) for argv in listings] == [
        (True, True),
        (False, True),
    ]
    assert locks(project) == before


def test_uvs_yanked_warnings_are_kept_for_the_pins_the_locks_keep() -> None:
    yanked = lock.YankedPins()
    stderr = (
        "Resolved 3 packages in 20ms\n"
        'warning: `Requests==2.32.0` is yanked (reason: "Yanked due to conflicts with CVE")\n'
        "warning: `idna==3.0` is yanked\n"
        "warning: `six==1.0` is yanked\n"
    )
    watched = yanked.watching(lambda argv, cwd: subprocess.CompletedProcess(argv, 0, "", stderr))
    watched(["pip", "compile"], Path("."))

    def pins(*names: str) -> list[lockfile.Pin]:
        text = "".join(f"{name} \\\n    --hash=sha256:{'a' * 64}\n" for name in names)
        return list(lockfile.parse(text, "x.txt").pins)

    found = yanked.in_locks(
        {"base": pins("requests==2.32.0", "idna==3.0"), "dev": pins("requests==2.32.0")}
    )
    assert [item.line() for item in found] == [
        "warning: idna 3.0 is yanked on its index; locked in base: "
        "pin another version unless you need this one",
        "warning: requests 2.32.0 is yanked on its index (Yanked due to conflicts with CVE); "
        "locked in base, dev: pin another version unless you need this one",
    ]


class Finds(FakeUv):
    """A uv whose `python find` names /opt/python/bin/python3.11; what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[str]] = []
        self.compiled: list[list[str]] = []

    def __call__(self, argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        if list(argv[:2]) == ["python", "find"]:
            self.asked.append(list(argv))
            return subprocess.CompletedProcess(argv, 0, "/opt/python/bin/python3.11\n", "")
        self.compiled.append(list(argv))
        return super().__call__(argv, cwd)


def test_every_compile_builds_with_the_running_python_when_it_is_the_projects(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "python_version", lambda: "3.11.9")  # .python-version: 3.11
    uv = Finds()
    lock.lock(load(project), run=uv)
    assert uv.asked == []
    assert len(uv.compiled) == 4  # the union, the files of its pins, two tier closures
    assert all(argv[-2:] == ["--python", sys.executable] for argv in uv.compiled)


def test_every_compile_builds_with_the_python_uv_finds_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "python_version", lambda: "3.10.4")  # not the project's 3.11
    uv = FakeUv()
    lock.lock(load(project), run=uv)
    expected = locks(project)
    assert not any("--python" in argv for argv in [*uv.calls, *uv.listings])
    for path in (project / "requirements").glob("*.txt"):
        path.unlink()
    finds = Finds()
    lock.lock(load(project), run=finds)
    assert finds.asked == [["python", "find", "--no-project", "--no-python-downloads", "3.11"]]
    assert len(finds.compiled) == 4  # the union, the files of its pins, two tier closures
    assert all(argv[-2:] == ["--python", "/opt/python/bin/python3.11"] for argv in finds.compiled)
    assert locks(project) == expected
