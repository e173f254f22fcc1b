"""`nox -s lock` and `invoke lock` in a baked project, against the real index."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.conftest import TEMPLATE
from tests.conftest import run_in as run

pytestmark = [pytest.mark.network, pytest.mark.slow]

TIERS = ["base", "sniper", "hunter", "strategist", "dev"]
PIN = re.compile(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", re.MULTILINE)


def snapshot(project: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (project / "requirements").glob("*.txt")}


def blocks(lock: Path) -> dict[str, str]:
    """Package name (with marker) -> its pin and hash lines."""
    found: dict[str, str] = {}
    current = None
    for line in lock.read_text().splitlines():
        if PIN.match(line):
            current = line.rstrip(" \\")
            found[current] = ""
        elif current and "--hash=" in line:
            found[current] += line.strip()
    return found


def packages(lock: Path) -> set[str]:
    return {name for name, _ in PIN.findall(lock.read_text())}


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("locked")
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output)))
    result = run(project, "nox", "-s", "lock")
    assert result.returncode == 0, result.stderr
    return project


@pytest.fixture
def project(locked: Path, tmp_path: Path) -> Path:
    copy = tmp_path / locked.name
    shutil.copytree(locked, copy, ignore=shutil.ignore_patterns(".nox"))
    return copy


def test_every_tier_is_locked_with_hashes(locked: Path) -> None:
    for tier in TIERS:
        lock = locked / "requirements" / f"{tier}.txt"
        pins = blocks(lock)
        assert pins, f"{tier}.txt has no pins"
        assert all(hashes.startswith("--hash=sha256:") for hashes in pins.values()), tier
        unpinned = [
            line
            for line in lock.read_text().splitlines()
            if line and not line.startswith((" ", "#", "--")) and not PIN.match(line)
        ]
        assert unpinned == []


def test_shared_packages_have_identical_pins_and_hashes(locked: Path) -> None:
    seen: dict[str, str] = {}
    for tier in TIERS:
        for pin, hashes in blocks(locked / "requirements" / f"{tier}.txt").items():
            assert seen.setdefault(pin, hashes) == hashes, f"{pin} differs in {tier}"
    assert any(pin.startswith("pydantic==") for pin in seen)


def test_children_include_their_parents(locked: Path) -> None:
    lock = {tier: packages(locked / "requirements" / f"{tier}.txt") for tier in TIERS}
    assert lock["sniper"] == lock["base"]
    assert lock["base"] < lock["hunter"] < lock["strategist"] < lock["dev"]
    assert {"pydantic", "structlog"} <= lock["base"]
    assert "numpy" in lock["hunter"] and "numpy" not in lock["base"]
    assert "pandas" in lock["strategist"] and "pandas" not in lock["hunter"]
    assert {"pytest", "ruff", "mypy"} <= lock["dev"]


def test_fresh_locks_pass_the_check_and_relock_is_a_no_op(project: Path) -> None:
    before = snapshot(project)
    check = run(project, "nox", "-s", "lock", "--", "--check")
    assert check.returncode == 0, check.stderr
    assert "locks are current" in check.stderr
    again = run(project, "nox", "-s", "lock")
    assert again.returncode == 0
    assert "inputs unchanged: nothing to resolve" in again.stderr
    assert snapshot(project) == before
    invoke = run(project, "invoke", "lock", "--check")
    assert invoke.returncode == 0, invoke.stderr


def test_comment_only_edit_is_not_drift(project: Path) -> None:
    with (project / "requirements" / "base.in").open("a") as stream:
        stream.write("# why we pin nothing here\n\n")
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_edit_makes_the_check_name_each_stale_tier(project: Path) -> None:
    with (project / "requirements" / "hunter.in").open("a") as stream:
        stream.write("six\n")
    result = run(project, "nox", "-s", "lock", "--", "--check")
    assert result.returncode == 1
    message = result.stderr
    for tier in ("union", "hunter", "strategist", "dev"):
        assert f"{tier}: requirements/hunter.in changed" in message
    assert "base:" not in message and "sniper:" not in message


def test_incremental_relock_leaves_other_tiers_byte_identical(project: Path) -> None:
    before = snapshot(project)
    with (project / "requirements" / "hunter.in").open("a") as stream:
        stream.write("six\n")
    result = run(project, "nox", "-s", "lock")
    assert result.returncode == 0, result.stderr
    after = snapshot(project)
    assert after["base.txt"] == before["base.txt"]
    assert after["sniper.txt"] == before["sniper.txt"]
    assert after["hunter.txt"] != before["hunter.txt"]
    assert "six" in packages(project / "requirements" / "strategist.txt")
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_unresolvable_requirement_leaves_every_lock_untouched(project: Path) -> None:
    before = snapshot(project)
    with (project / "requirements" / "hunter.in").open("a") as stream:
        stream.write("lockstep-no-such-package-anywhere==1.0\n")
    result = run(project, "nox", "-s", "lock")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if "aborted" in line]
    assert len(error) == 1
    assert "requirements/hunter.in (lockstep-no-such-package-anywhere==1.0)" in error[0]
    assert snapshot(project) == before
    leftovers = [p.name for p in (project / "requirements").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_hand_edited_lock_is_caught(project: Path) -> None:
    lock = project / "requirements" / "hunter.txt"
    text = lock.read_text()
    lock.write_text(re.sub(r"(structlog==)\S+", r"\g<1>24.1.0", text, count=1))
    result = run(project, "nox", "-s", "lock", "--", "--check")
    assert result.returncode == 1
    assert "hunter: hunter.txt does not match the union" in result.stderr


def test_missing_and_orphan_locks_fail_the_check(project: Path) -> None:
    (project / "requirements" / "sniper.txt").unlink()
    (project / "requirements" / "old.txt").write_text("six==1.16.0\n")
    result = run(project, "nox", "-s", "lock", "--", "--check")
    assert result.returncode == 1
    assert "sniper: requirements/sniper.txt is missing" in result.stderr
    assert "old: old.txt has no old.in" in result.stderr


def test_python_version_disagreement_fails_the_check(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('requires-python = ">=3.11"', 'requires-python = ">=3.12"')
    )
    result = run(project, "nox", "-s", "lock", "--", "--check")
    assert result.returncode == 1
    assert "requires-python is '>=3.12' but .python-version says 3.11" in result.stderr


def test_exact_pin_policy_is_opt_in(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.lockstep]", "[tool.lockstep]\nrequire-exact-pins = true"
        )
    )
    result = run(project, "nox", "-s", "lock", "--", "--check")
    assert result.returncode == 1
    assert "policy: base.in:3: 'pydantic>=2' is not pinned with ==" in result.stderr


def test_upgrade_of_an_unknown_package_is_refused(project: Path) -> None:
    before = snapshot(project)
    result = run(project, "invoke", "lock", "--upgrade-package", "no-such-thing")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --upgrade-package no-such-thing: not locked in any tier"
    assert snapshot(project) == before


def test_kept_pins_and_upgrade_package_moves_it_in_every_tier(project: Path) -> None:
    base_in = project / "requirements" / "base.in"
    base_in.write_text(base_in.read_text().replace("structlog", "structlog==24.1.0"))
    assert run(project, "nox", "-s", "lock").returncode == 0
    base_in.write_text(base_in.read_text().replace("structlog==24.1.0", "structlog"))
    kept = run(project, "nox", "-s", "lock")
    assert kept.returncode == 0, kept.stderr
    for tier in TIERS:
        assert "structlog==24.1.0 " in (project / "requirements" / f"{tier}.txt").read_text()
    upgraded = run(project, "nox", "-s", "lock", "--", "--upgrade-package", "structlog")
    assert upgraded.returncode == 0, upgraded.stderr
    versions = {
        re.search(
            r"^structlog==(\S+)", (project / "requirements" / f"{t}.txt").read_text(), re.M
        ).group(1)  # type: ignore[union-attr]
        for t in TIERS
    }
    assert len(versions) == 1 and versions != {"24.1.0"}


def test_locks_are_deterministic(project: Path) -> None:
    before = snapshot(project)
    for lock in (project / "requirements").glob("*.txt"):
        lock.unlink()
    result = run(project, "nox", "-s", "lock")
    assert result.returncode == 0, result.stderr
    assert snapshot(project) == before
    assert str(project) not in "".join(text.decode() for text in before.values())


def user_pip(python: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "PIP_FIND_LINKS"}
    env["PIP_CONFIG_FILE"] = os.devnull
    return subprocess.run(
        [str(python), "-m", "pip", *arguments], capture_output=True, text=True, check=False, env=env
    )


def test_pip_installs_a_tier_with_hashes_and_rejects_a_tampered_one(
    locked: Path, tmp_path: Path
) -> None:
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    lock = locked / "requirements" / "hunter.txt"
    installed = user_pip(python, "install", "--require-hashes", "-r", str(lock))
    assert installed.returncode == 0, installed.stderr
    assert user_pip(python, "check").returncode == 0
    assert {"numpy", "pydantic"} <= {
        line.split("==")[0].lower() for line in user_pip(python, "freeze").stdout.splitlines()
    }

    tampered = tmp_path / "tampered.txt"
    text = lock.read_text()
    block = re.search(r"^structlog==.*?(?=^\S)", text, re.MULTILINE | re.DOTALL).group(0)  # type: ignore[union-attr]
    tampered.write_text(text.replace(block, re.sub(r"[0-9a-f]{64}", "0" * 64, block)))
    venv.create(tmp_path / "fresh", with_pip=True)
    fresh = tmp_path / "fresh" / "bin" / "python"
    refused = user_pip(fresh, "install", "--require-hashes", "-r", str(tampered))
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr.upper()
