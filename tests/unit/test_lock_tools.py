"""`nox -s lock -- --tools`: the tools' own locks compiled again under the tiers' cooldown."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from tooling import lock
from tooling.project import load

# name -> its releases: the newest one older than the cooldown, then the younger ones
RELEASES = {"pip-audit": ("2.9.0", "2.10.1", "2.11.0"), "certifi": ("2025.1.1", "2026.12.1")}
RELEASES |= {"safety": ("3.6.0", "3.7.0"), "cruft": ("2.16.0",)}


class ToolUv:
    """`uv pip compile --generate-hashes IN -o OUT` for .in files of bare names.

    Under --exclude-newer a package takes its older release unless its cooldown is
    lifted (--exclude-newer-package NAME=false); like uv, it keeps the pin already in
    OUT unless upgraded or that pin is younger than the cutoff.
    """

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        source, output = argv[argv.index("-o") - 1], cwd / argv[argv.index("-o") + 1]
        if self.fail_on == source:
            return subprocess.CompletedProcess(argv, 2, "", "error: No solution found")
        pairs = list(itertools.pairwise(argv))
        options = dict(pairs)
        lifted = {b.split("=")[0] for a, b in pairs if a == "--exclude-newer-package"}
        upgraded = {b for a, b in pairs if a == "--upgrade-package"}
        kept = {}
        if output.is_file() and "--upgrade" not in argv:
            kept = dict(line.split(" ")[0].split("==") for line in pinned_lines(output))
        body = [f"#    uv pip compile {options['--python-version']} {source} -o {output.name}"]
        for name in (cwd / source).read_text().split():
            allowed = RELEASES[name]
            if "--exclude-newer" in options and name not in lifted:
                allowed = allowed[:1]
            version = kept.get(name, "") if name not in upgraded else ""
            version = version if version in allowed else allowed[-1]
            digest = hashlib.sha256(f"{name}{version}".encode()).hexdigest()
            body.append(f"{name}=={version} \\\n    --hash=sha256:{digest}")
        output.write_text("\n".join(body) + "\n")
        return subprocess.CompletedProcess(argv, 0, "", "")


def pinned_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if "==" in line]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".python-version").write_text("3.12\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lockstep]\ncooldown = "7 days"\ncooldown-exempt = ["certifi"]\n'
    )
    (tmp_path / "requirements" / "tools").mkdir(parents=True)
    (tmp_path / "requirements" / "base.in").write_text("certifi\n")
    (tmp_path / "requirements" / "tools" / "audit.in").write_text("pip-audit\ncertifi\n")
    (tmp_path / "requirements" / "tools" / "safety.in").write_text("safety\n")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cruft-requirements.in").write_text("cruft\n")
    return tmp_path


def tools_lock(root: Path, *argv: str, run: ToolUv) -> list[str]:
    logged: list[str] = []
    lock.main(load(root), ["--tools", *argv], log=logged.append, run=run)
    return logged


def test_every_tool_lock_is_compiled_under_the_cooldown(project: Path) -> None:
    uv = ToolUv()
    logged = tools_lock(project, run=uv)
    cooldown = ["--exclude-newer", "7 days", "--exclude-newer-package", "certifi=false"]
    assert uv.calls == [
        [
            *("pip", "compile", "--quiet", "--universal", "--generate-hashes"),
            *("--python-version", "3.12", *cooldown, f"{name}.in", "-o", f"{name}.txt"),
        ]
        for name in (
            ".github/cruft-requirements",
            "requirements/tools/audit",
            "requirements/tools/safety",
        )
    ]
    # pip-audit's newest release is younger than the cooldown; certifi is exempt
    assert pinned_lines(project / "requirements" / "tools" / "audit.txt") == [
        "pip-audit==2.9.0 \\",
        "certifi==2026.12.1 \\",
    ]
    assert logged == [
        "wrote .github/cruft-requirements.txt",
        "wrote requirements/tools/audit.txt",
        "wrote requirements/tools/safety.txt",
    ]
    assert not (project / "requirements" / "base.txt").exists()  # the tiers are not locked
    assert tools_lock(project, run=ToolUv()) == ["tool locks unchanged"]


def test_a_tool_pin_younger_than_the_cooldown_is_kept(project: Path) -> None:
    audit = project / "requirements" / "tools" / "audit.txt"
    audit.write_text("pip-audit==2.10.1 \\\n    --hash=sha256:" + "a" * 64 + "\n")
    uv = ToolUv()
    logged = tools_lock(project, run=uv)
    assert pinned_lines(audit)[0] == "pip-audit==2.10.1 \\"
    assert "kept pip-audit 2.10.1: the cooldown never moves a pin back" in logged
    again = [call for call in uv.calls if "requirements/tools/audit.in" in call][-1]
    assert "pip-audit=false" in again  # compiled again with its cooldown lifted


def test_an_upgrade_keeps_a_tool_pin_younger_than_the_cooldown(project: Path) -> None:
    audit = project / "requirements" / "tools" / "audit.txt"
    audit.write_text("pip-audit==2.10.1 \\\n    --hash=sha256:" + "a" * 64 + "\n")
    logged = tools_lock(project, "--upgrade", run=ToolUv())
    # not 2.9.0 (moved back), nor 2.11.0 (younger still, taken once the cooldown is lifted)
    assert pinned_lines(audit) == ["pip-audit==2.10.1 \\", "certifi==2026.12.1 \\"]
    assert "kept pip-audit 2.10.1: the cooldown never moves a pin back" in logged


def test_upgrade_and_skip_cooldown_reach_uv(project: Path) -> None:
    uv = ToolUv()
    tools_lock(project, "--upgrade-package", "certifi", "--skip-cooldown", "safety", run=uv)
    safety = uv.calls[-1]
    assert safety[safety.index("--exclude-newer") :] == [
        *("--exclude-newer", "7 days", "--exclude-newer-package", "certifi=false"),
        *("--exclude-newer-package", "safety=false"),
        *("--upgrade-package", "certifi", "--upgrade-package", "safety"),
        *("requirements/tools/safety.in", "-o", "requirements/tools/safety.txt"),
    ]
    assert pinned_lines(project / "requirements" / "tools" / "safety.txt") == ["safety==3.7.0 \\"]
    tools_lock(project, "--upgrade", run=(upgraded := ToolUv()))
    assert all("--upgrade" in call for call in upgraded.calls[:3])
    # safety 3.7.0, taken inside the cooldown by --skip-cooldown, is not moved back later
    assert pinned_lines(project / "requirements" / "tools" / "safety.txt") == ["safety==3.7.0 \\"]


def test_a_failed_tool_lock_leaves_every_tool_lock_as_it_was(project: Path) -> None:
    tools_lock(project, run=ToolUv())
    before = {p: p.read_bytes() for p in project.rglob("*.txt")}
    (project / "requirements" / "tools" / "audit.in").write_text("pip-audit\ncertifi\nsafety\n")
    with pytest.raises(lock.LockError) as failed:
        tools_lock(project, "--upgrade", run=ToolUv(fail_on="requirements/tools/safety.in"))
    assert str(failed.value) == "cannot lock requirements/tools/safety.in: No solution found"
    assert {p: p.read_bytes() for p in project.rglob("*.txt")} == before


def test_tools_is_not_a_check(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tools_lock(project, "--check", run=ToolUv())
    assert "error: --tools cannot be combined with --check or --report" in capsys.readouterr().err
