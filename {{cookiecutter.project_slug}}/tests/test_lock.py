"""Unit tests of tooling.lock with a stand-in for uv (no network)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tooling import lock
from tooling.project import load

UNION_BODY = """\
numpy==2.0.0 \\
    --hash=sha256:{a}
    # via
    #   -r requirements/hunter.in
    #   pandas
pandas==2.2.0 \\
    --hash=sha256:{b}
    # via -r requirements/strategist.in
structlog==24.1.0 \\
    --hash=sha256:{c}
    # via -r requirements/base.in
""".format(a="a" * 64, b="b" * 64, c="c" * 64)


class FakeUv:
    """Writes a canned resolution, like `uv pip compile -o FILE` would."""

    def __init__(self, body: str = UNION_BODY, returncode: int = 0, stderr: str = "") -> None:
        self.body, self.returncode, self.stderr = body, returncode, stderr
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
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
    (requirements / "hunter.in").write_text("-r base.in\nnumpy\n")
    (requirements / "strategist.in").write_text("-r hunter.in\npandas\n")
    return tmp_path


def locks(root: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((root / "requirements").glob("*.txt"))}


def test_tiers_are_derived_from_one_union(project: Path) -> None:
    uv = FakeUv()
    result = lock.lock(load(project), run=uv)
    assert result.resolved and len(uv.calls) == 1
    written = locks(project)
    assert set(written) == {"_union.txt", "base.txt", "sniper.txt", "hunter.txt", "strategist.txt"}
    assert "structlog==24.1.0" in written["sniper.txt"]
    assert "numpy" not in written["base.txt"]
    assert "numpy==2.0.0" in written["hunter.txt"] and "pandas" not in written["hunter.txt"]
    assert "# via -r requirements/hunter.in" in written["hunter.txt"]
    assert "#   pandas" in written["strategist.txt"]
    assert lock.check(load(project)) == []


def test_nothing_changed_means_nothing_resolved(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    before = locks(project)
    uv = FakeUv()
    result = lock.lock(load(project), run=uv)
    assert uv.calls == [] and not result.resolved and result.written == []
    assert locks(project) == before


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
    assert not list((project / "requirements").glob("*.tmp"))


def test_check_names_stale_tiers_and_ignores_comments(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    with (project / "requirements" / "base.in").open("a") as stream:
        stream.write("# just a comment\n")
    assert lock.check(load(project)) == []
    (project / "requirements" / "hunter.in").write_text("-r base.in\nnumpy>=2\n")
    problems = lock.check(load(project))
    assert "hunter: requirements/hunter.in changed since requirements/hunter.txt was locked" in (
        problems
    )
    assert not any(problem.startswith(("base:", "sniper:")) for problem in problems)


def test_check_catches_a_hand_edit_and_unhashed_pins(project: Path) -> None:
    lock.lock(load(project), run=FakeUv())
    hunter = project / "requirements" / "hunter.txt"
    hunter.write_text(hunter.read_text().replace("numpy==2.0.0", "numpy==1.26.0"))
    assert "hunter: hunter.txt does not match the union (edited by hand?)" in lock.check(
        load(project)
    )
    hunter.write_text(hunter.read_text().replace("    --hash=sha256:" + "a" * 64 + "\n", ""))
    assert "hunter: hunter.txt: numpy==1.26.0 has no --hash" in lock.check(load(project))


def test_upgrade_package_must_be_locked(project: Path) -> None:
    with pytest.raises(lock.LockError, match="--upgrade-package nope: not locked in any tier"):
        lock.lock(load(project), upgrade_packages=["nope"], run=FakeUv())
    assert locks(project) == {}


def test_upgrade_flags_reach_uv(project: Path) -> None:
    uv = FakeUv()
    lock.lock(load(project), upgrade_packages=["numpy"], run=uv)
    assert uv.calls[0][-2:] == ["--upgrade-package", "numpy"]
    assert "--generate-hashes" in uv.calls[0] and "3.11" in uv.calls[0]


def test_index_settings_are_used_and_recorded(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.lockstep]\nextra-index-urls = ["https://download.pytorch.org/whl/cpu"]\n'
    )
    uv = FakeUv()
    lock.lock(load(project), run=uv)
    assert "--extra-index-url" in uv.calls[0]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu\n" in locks(project)["base.txt"]


def test_unpinned_line_is_rejected_by_the_parser() -> None:
    with pytest.raises(lock.LockError, match="unpinned or unexpected line"):
        lock.parse_lock("numpy==1.0 \\\n    --hash=sha256:" + "a" * 64 + "\n  pandas>=2\n")


def test_write_all_leaves_nothing_behind_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("old a\n")

    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(lock.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        lock.write_all({first: "new a\n", second: "new b\n"})
    assert first.read_text() == "old a\n" and not second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
