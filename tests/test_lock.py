"""`nox -s lock` and `invoke lock` in a baked project, against the real index."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
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
    """Every lock: the .txt ones and the PEP 751 ones."""
    folder = project / "requirements"
    return {
        path.name: path.read_bytes() for path in [*folder.glob("*.txt"), *folder.glob("*.toml")]
    }


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


def append(project: Path, tier: str, line: str) -> None:
    with (project / "requirements" / f"{tier}.in").open("a") as stream:
        stream.write(line + "\n")


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
    append(project, "base", "# why we pin nothing here\n")
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_a_requirement_continued_over_lines_locks_as_pip_reads_it(project: Path) -> None:
    """uv's own parser refuses `tabulate \\` + `>=0.9`; pip joins the lines, and so does the lock."""
    append(
        project, "strategist", "tabulate \\\n    >=0.9  # continued, as pip allows\n# ends here \\"
    )
    locked = run(project, "nox", "-s", "lock")
    assert locked.returncode == 0, locked.stderr
    assert "tabulate" in packages(project / "requirements" / "strategist.txt")
    assert "tabulate" not in packages(project / "requirements" / "hunter.txt")
    check = run(project, "nox", "-s", "lock", "--", "--check")
    assert check.returncode == 0, check.stderr


def test_edit_makes_the_check_name_each_stale_tier(project: Path, tmp_path: Path) -> None:
    page = tmp_path / "summary.md"
    passed = run(project, "nox", "-s", "lock_check", env={"GITHUB_STEP_SUMMARY": str(page)})
    assert passed.returncode == 0 and not page.exists()  # a passing check adds nothing
    append(project, "hunter", "six")
    result = run(project, "nox", "-s", "lock", "--", "--check")
    assert result.returncode == 1
    message = result.stderr
    for tier in ("union", "hunter", "strategist", "dev"):
        assert f"{tier}: requirements/hunter.in changed" in message
    assert "base:" not in message and "sniper:" not in message
    failed = run(project, "nox", "-s", "lock_check", env={"GITHUB_STEP_SUMMARY": str(page)})
    assert failed.returncode == 1 and failed.stderr.count("changed") == message.count("changed")
    lines = page.read_text().rstrip().splitlines()
    assert lines[:2] == ["## Lock drift check failed", ""]
    for tier in ("union", "hunter", "strategist", "dev"):
        assert any(line.startswith(f"- {tier}: requirements/hunter.in changed") for line in lines)
    assert lines[-1].startswith("lock check failed: 4 problems in union, hunter, strategist, dev")


def test_a_lock_refresh_puts_what_moved_on_the_summary(project: Path, tmp_path: Path) -> None:
    page = tmp_path / "summary.md"
    page.write_text("## an earlier step\n")
    append(project, "hunter", "six")
    result = run(project, "nox", "-s", "lock", env={"GITHUB_STEP_SUMMARY": str(page)})
    assert result.returncode == 0, result.stderr
    text = page.read_text()
    assert text.startswith("## an earlier step\n# What moved in the locks\n")
    assert "\n## hunter\n\n| package | before | after |\n|---|---|---|\n| six | (new) | " in text


def test_incremental_relock_leaves_other_tiers_byte_identical(project: Path) -> None:
    before = snapshot(project)
    append(project, "hunter", "six")
    result = run(project, "nox", "-s", "lock")
    assert result.returncode == 0, result.stderr
    after = snapshot(project)
    assert after["base.txt"] == before["base.txt"]
    assert after["sniper.txt"] == before["sniper.txt"]
    assert after["hunter.txt"] != before["hunter.txt"]
    assert "six" in packages(project / "requirements" / "strategist.txt")
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_an_extra_enters_only_the_tiers_that_ask_for_it(project: Path) -> None:
    before = snapshot(project)
    append(project, "hunter", "pydantic[email]")
    result = run(project, "nox", "-s", "lock")
    assert result.returncode == 0, result.stderr
    lock = {tier: packages(project / "requirements" / f"{tier}.txt") for tier in TIERS}
    for tier in ("hunter", "strategist", "dev"):
        assert {"email-validator", "dnspython"} <= lock[tier], tier
    for tier in ("base", "sniper"):
        assert not {"email-validator", "dnspython"} & lock[tier], tier
    after = snapshot(project)
    assert after["base.txt"] == before["base.txt"] and after["sniper.txt"] == before["sniper.txt"]
    assert "added email-validator" in result.stderr and "(hunter, strategist, dev)" in result.stderr
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0
    union = blocks(project / "requirements" / "_union.txt")
    for tier in TIERS:  # every tier pin is the union's line, hashes included
        for pin, hashes in blocks(project / "requirements" / f"{tier}.txt").items():
            assert union[pin] == hashes, (tier, pin)


def test_an_extra_pinned_into_a_lock_by_hand_fails_the_check(project: Path) -> None:
    append(project, "hunter", "pydantic[email]")
    assert run(project, "nox", "-s", "lock").returncode == 0
    strategist = (project / "requirements" / "strategist.txt").read_text()
    email = re.search(r"^email-validator==.*?(?=^\S)", strategist, re.MULTILINE | re.DOTALL)
    assert email is not None
    base = project / "requirements" / "base.txt"
    base.write_text(base.read_text() + email.group(0))
    result = run(project, "nox", "-s", "lock", "--", "--check")
    assert result.returncode == 1
    assert "base: requirements/base.txt does not match the digest of its body" in result.stderr
    relock = run(project, "nox", "-s", "lock")
    assert relock.returncode == 0, relock.stderr
    assert "email-validator" not in packages(base)


def test_unresolvable_requirement_leaves_every_lock_untouched(project: Path) -> None:
    before = snapshot(project)
    append(project, "hunter", "lockstep-no-such-package-anywhere==1.0")
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
    assert (
        "hunter: requirements/hunter.txt does not match the digest of its body "
        "(cut or edited by hand)"
    ) in result.stderr


def test_missing_and_orphan_locks_fail_the_check(project: Path) -> None:
    requirements = project / "requirements"
    (requirements / "sniper.txt").unlink()
    base = (requirements / "base.txt").read_text()
    # what the lock wrote for a tier "old" whose .in is gone, and a copy that is not its own
    (requirements / "old.txt").write_text(
        base.replace("requirements/base.txt:", "requirements/old.txt:")
    )
    (requirements / "base-copy.txt").write_text(base)
    (requirements / "notes.txt").write_text("written by hand\n")
    result = run(project, "nox", "-s", "lock", "--", "--check")
    assert result.returncode == 1
    assert "sniper: requirements/sniper.txt is missing" in result.stderr
    assert "old: requirements/old.txt is left over: requirements/old.in is gone" in result.stderr
    assert "notes" not in result.stderr and "base-copy" not in result.stderr
    relock = run(project, "nox", "-s", "lock")
    assert relock.returncode == 0, relock.stderr
    assert "deleted requirements/old.txt: requirements/old.in is gone" in relock.stderr
    assert (requirements / "base-copy.txt").read_text() == base
    assert (requirements / "notes.txt").exists() and not (requirements / "old.txt").exists()


def test_python_version_disagreement_fails_the_check(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('requires-python = ">=3.11"', 'requires-python = ">=3.12"')
    )
    result = run(project, "nox", "-s", "lock", "--", "--check")
    assert result.returncode == 1
    assert "requires-python is '>=3.12' but .python-version says 3.11" in result.stderr


def test_after_a_python_version_change_the_summary_is_the_fix_for_what_is_left(
    project: Path,
) -> None:
    (project / "base-images.lock").write_text(f"python:3.11-slim@sha256:{'0' * 64}\n")
    (project / ".python-version").write_text("3.12\n")
    before = run(project, "nox", "-s", "lock", "--", "--check")
    assert before.returncode == 1
    summary = before.stderr.strip().splitlines()[-1]
    assert "run `nox -s lock`" in summary and "do what each python line above says" in summary
    relock = run(project, "nox", "-s", "lock")
    assert relock.returncode == 0, relock.stderr
    after = run(project, "nox", "-s", "lock", "--", "--check")
    assert after.returncode == 1
    problems = [line for line in after.stderr.splitlines() if line.startswith("nox > python:")]
    assert len(problems) == 1 and "run `invoke base-image --refresh`" in problems[0]
    summary = after.stderr.strip().splitlines()[-1]
    assert "nox -s lock" not in summary
    assert summary.endswith(
        "lock check failed: 1 problem in python; do what each python line above says."
    )


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
    moved = f"structlog 24.1.0 → {versions.pop()} (base, hunter, sniper, strategist, dev)"
    assert f"nox > {moved}\n" in upgraded.stderr


def test_locks_are_deterministic(project: Path) -> None:
    before = snapshot(project)
    assert {f"pylock.{tier}.toml" for tier in TIERS} < set(before)
    for lock in before:
        (project / "requirements" / lock).unlink()
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


def test_a_project_from_before_pylocks_gets_them_without_a_pin_moving(project: Path) -> None:
    before = snapshot(project)
    for tier in TIERS:
        (project / "requirements" / f"pylock.{tier}.toml").unlink()
    repaired(
        project,
        before,
        named="base: requirements/pylock.base.toml is missing",
        said="inputs unchanged: nothing to resolve",
    )


def repaired(project: Path, before: dict[str, bytes], named: str, said: str) -> None:
    """The check names the damage; `nox -s lock` says `said` and puts every lock back."""
    check = run(project, "nox", "-s", "lock", "--", "--check")
    assert check.returncode == 1
    assert named in check.stderr
    result = run(project, "nox", "-s", "lock")
    assert result.returncode == 0, result.stderr
    assert said in result.stderr
    assert snapshot(project) == before
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_pip_and_uv_install_a_tier_from_its_pylock_and_refuse_a_tampered_one(
    locked: Path, tmp_path: Path
) -> None:
    pylock = locked / "requirements" / "pylock.hunter.toml"
    wanted = {
        (p.lower(), v) for p, v in PIN.findall((locked / "requirements" / "hunter.txt").read_text())
    }
    for installer in ("pip", "uv"):
        venv.create(tmp_path / installer, with_pip=False)
        python = tmp_path / installer / "bin" / "python"
        if installer == "pip":  # pip 26.1+ (the template's own) reads pylocks
            installed = user_pip(
                Path(sys.executable), "--python", str(python), "install", "-r", str(pylock)
            )
        else:
            installed = subprocess.run(
                [str(Path(sys.executable).parent / "uv"), "pip", "install", "--python", str(python), "--require-hashes", "-r", str(pylock)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
        assert installed.returncode == 0, installed.stderr
        frozen = user_pip(Path(sys.executable), "--python", str(python), "freeze").stdout
        got = {
            (re.sub(r"[-_.]+", "-", line.lower().split("==")[0]), line.split("==")[1])
            for line in frozen.splitlines()
            if "==" in line
        }
        # every pin whose marker holds on this Python, at the lock's version
        assert {name for name, _ in got} >= {"numpy", "pydantic", "structlog"}
        assert got <= wanted, got - wanted

    text = pylock.read_text()
    table = re.search(
        r'^name = "structlog"\n.*?(?=^\[\[|\Z)', text, re.MULTILINE | re.DOTALL
    ).group(0)  # type: ignore[union-attr]
    tampered = tmp_path / "pylock.tampered.toml"
    tampered.write_text(text.replace(table, re.sub(r"[0-9a-f]{64}", "0" * 64, table)))
    for installer in ("pip", "uv"):
        fresh = tmp_path / f"fresh-{installer}"
        venv.create(fresh, with_pip=False)
        if installer == "pip":
            refused = user_pip(
                Path(sys.executable),
                "--python",
                str(fresh / "bin" / "python"),
                "install",
                "-r",
                str(tampered),
            )
        else:
            refused = subprocess.run(
                [str(Path(sys.executable).parent / "uv"), "pip", "install", "--python", str(fresh / "bin" / "python"), "--require-hashes", "-r", str(tampered)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
        assert refused.returncode != 0, installer
        assert "hash" in refused.stderr.lower(), refused.stderr


def with_body_digest(text: str) -> str:
    """A pylock with its `# body sha256` recomputed, as someone editing it by hand would."""
    lines = text.splitlines(keepends=True)
    start = next(n for n, line in enumerate(lines) if not line.startswith("#"))
    body = "".join(lines[start:])
    digest = hashlib.sha256(body.encode()).hexdigest()
    head = re.sub(
        r"(?m)^# body sha256:[0-9a-f]{64}", f"# body sha256:{digest}", "".join(lines[:start])
    )
    return head + body


def package_table(text: str, name: str) -> str:
    return re.search(rf'(?ms)^\[\[packages\]\]\nname = "{name}"\n.*?(?=^\[\[|\Z)', text).group(0)  # type: ignore[union-attr]


def version_in(table: str) -> str:
    return re.search(r'(?m)^version = "([^"]+)"$', table).group(1)  # type: ignore[union-attr]


def extra_package(text: str) -> tuple[str, str]:
    evil = (
        '\n[[packages]]\nname = "evil"\nversion = "1.0"\n'
        'sdist = { name = "evil-1.0.tar.gz", url = "https://files.pythonhosted.org/packages/'
        f'ab/cd/evil-1.0.tar.gz", hashes = {{ sha256 = "{"a" * 64}" }} }}\n'
    )
    return text + evil, "names evil 1.0, which requirements/base.txt does not pin"


def older_version(text: str) -> tuple[str, str]:
    table = package_table(text, "pydantic")
    version = version_in(table)
    older = table.replace(f'version = "{version}"', 'version = "2.0.0"')
    return text.replace(table, older), (
        f"names pydantic 2.0.0, but requirements/base.txt pins pydantic {version}"
    )


def removed_package(text: str) -> tuple[str, str]:
    table = package_table(text, "structlog")
    return text.replace("\n" + table, "").replace(table, ""), (
        f"lacks structlog {version_in(table)}, which requirements/base.txt pins"
    )


def sdist_elsewhere(text: str) -> tuple[str, str]:
    table = package_table(text, "pydantic")
    moved = re.sub(
        r'(sdist = \{ name = "[^"]+", url = ")https://files\.pythonhosted\.org',
        r"\1https://mirror.example",
        table,
    )
    assert moved != table
    return text.replace(table, moved), (
        f"names pydantic-{version_in(table)}.tar.gz for pydantic {version_in(table)} at "
        "https://mirror.example, which is not an index requirements/base.txt names "
        "(https://pypi.org, https://files.pythonhosted.org)"
    )


@pytest.mark.parametrize(
    "tamper",
    [extra_package, older_version, removed_package, sdist_elsewhere],
    ids=lambda t: t.__name__,
)
def test_a_hand_edited_pylock_with_its_digest_recomputed_is_named_and_rewritten(
    project: Path, tamper: object
) -> None:
    before = snapshot(project)
    pylock = project / "requirements" / "pylock.base.toml"
    edited, named = tamper(pylock.read_text())  # type: ignore[operator]
    pylock.write_text(with_body_digest(edited))
    check = run(project, "nox", "-s", "lock", "--", "--check")
    assert [line for line in check.stderr.splitlines() if "pylock" in line] == [
        f"nox > base: requirements/pylock.base.toml {named}"
    ], check.stderr
    repaired(project, before, named=named, said="wrote requirements/pylock.base.toml")


# --- locks that cannot lie (issue 9 reproductions) ----------------------------------------


def test_a_cut_union_is_resolved_again_not_spread_into_tiers(project: Path) -> None:
    before = snapshot(project)
    union = project / "requirements" / "_union.txt"
    union.write_bytes(union.read_bytes()[:30000])
    repaired(
        project,
        before,
        named="union: requirements/_union.txt does not match the digest of its body",
        said="resolving again instead of deriving tiers from it",
    )


def test_a_byte_order_mark_keeps_the_parent(project: Path) -> None:
    (project / "requirements" / "hunter.in").write_bytes(b"\xef\xbb\xbf-r base.in\nnumpy\n")
    assert run(project, "nox", "-s", "lock").returncode == 0
    assert {"pydantic", "structlog", "numpy"} <= packages(project / "requirements" / "hunter.txt")
    assert {"pydantic", "structlog"} <= packages(project / "requirements" / "dev.txt")
    assert "hunter <- base" in run(project, "invoke", "tiers").stdout
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_an_input_edited_while_uv_resolves_leaves_the_check_stale(
    project: Path, tmp_path: Path
) -> None:
    wrapper = tmp_path / "bin" / "uv"
    wrapper.parent.mkdir()
    real_uv = shutil.which("uv")
    wrapper.write_text(
        f'#!/bin/sh\necho six >> {project}/requirements/hunter.in\nexec {real_uv} "$@"\n'
    )
    wrapper.chmod(0o755)
    (project / "requirements" / "base.in").write_text("pydantic>=2\nstructlog\nidna\n")
    path = f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}"
    assert run(project, "nox", "-s", "lock", env={"PATH": path}).returncode == 0
    assert "six" not in packages(project / "requirements" / "hunter.txt")
    result = run(project, "nox", "-s", "lock", "--", "--check")
    assert result.returncode == 1
    assert "hunter: requirements/hunter.in changed since requirements/hunter.txt was locked" in (
        result.stderr
    )


def test_a_killed_uv_is_reported_as_interrupted(project: Path, tmp_path: Path) -> None:
    before = snapshot(project)
    wrapper = tmp_path / "bin" / "uv"
    wrapper.parent.mkdir()
    wrapper.write_text("#!/bin/sh\nkill -KILL $$\n")
    wrapper.chmod(0o755)
    path = f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}"
    result = run(project, "nox", "-s", "lock", "--", "--upgrade", env={"PATH": path})
    assert result.returncode == 1
    assert "aborted: uv was interrupted (SIGKILL): no lock was changed" in result.stderr
    assert "dev.in" not in result.stderr
    assert snapshot(project) == before


def test_constraints_count_as_inputs_and_stay_inside_the_project(project: Path) -> None:
    requirements = project / "requirements"
    (requirements / "constraints.txt").write_text("numpy<3\n")
    with (requirements / "hunter.in").open("a") as stream:
        stream.write("-c constraints.txt\n")
    assert run(project, "nox", "-s", "lock").returncode == 0
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0
    (requirements / "constraints.txt").write_text("numpy<4\n")
    stale = run(project, "nox", "-s", "lock", "--", "--check")
    assert "hunter: requirements/constraints.txt changed" in stale.stderr
    assert "base:" not in stale.stderr
    for line, expected in [
        ("-c ../../../../etc/hostname", "-c ../../../../etc/hostname is outside the project"),
        ("-c /etc/passwd", "-c /etc/passwd is outside the project"),
        ("-e .", "editable '-e .' cannot be locked with hashes"),
    ]:
        (requirements / "sniper.in").write_text(f"-r base.in\n{line}\n")
        refused = run(project, "nox", "-s", "lock")
        assert refused.returncode == 1
        assert "Traceback" not in refused.stderr
        assert f"requirements/sniper.in:2: {expected}" in refused.stderr


def test_removing_a_tier_removes_its_lock_and_its_settings(project: Path) -> None:
    (project / "requirements" / "sniper.in").unlink()
    pyproject = project / "pyproject.toml"
    before = pyproject.read_text()
    assert re.search(r"(?m)^sniper = \d+$", before)  # its image budget
    result = run(project, "nox", "-s", "lock")
    assert result.returncode == 0, result.stderr
    assert "deleted requirements/sniper.txt: requirements/sniper.in is gone" in result.stderr
    assert "dropped [tool.lockstep.image-budget-mb] sniper from pyproject.toml" in result.stderr
    assert not (project / "requirements" / "sniper.txt").exists()
    assert pyproject.read_text() == re.sub(r"(?m)^sniper = \d+\n", "", before)
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_locks_are_ordinary_files(project: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (project / "requirements").glob("*.txt")}
    assert set(modes.values()) == {0o666 & ~mask}
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "requirements/.hunter.txt.1a2b3c4d.tmp"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.returncode == 0, "lock temporaries are not git-ignored"


def test_a_windows_checkout_keeps_the_locks_lf(project: Path, tmp_path: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "locked"]):
        subprocess.run([*git, *command], cwd=project, check=True)
    clone = tmp_path / "windows"
    subprocess.run(
        ["git", "-c", "core.autocrlf=true", "clone", "-q", str(project), str(clone)], check=True
    )
    assert b"\r\n" in (clone / "noxfile.py").read_bytes()  # autocrlf is really on
    for path in [*(clone / "requirements").rglob("*.*"), clone / ".python-version"]:
        assert b"\r" not in path.read_bytes(), path.name
    check = run(clone, "nox", "-s", "lock", "--", "--check")
    assert check.returncode == 0, check.stderr


def test_crlf_locks_are_named_as_line_endings(project: Path) -> None:
    for path in (project / "requirements").glob("*.txt"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    check = run(project, "nox", "-s", "lock", "--", "--check")
    assert check.returncode == 1
    named = [line for line in check.stderr.splitlines() if "has CRLF line endings" in line]
    assert len(named) == len(TIERS) + 1  # every tier and the union
    assert "other options" not in check.stderr
    relock = run(project, "nox", "-s", "lock")
    assert relock.returncode == 0, relock.stderr
    assert "inputs unchanged: nothing to resolve" in relock.stderr
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0


def test_an_unreachable_index_blames_the_file_that_added_it(project: Path) -> None:
    before = snapshot(project)
    append(project, "sniper", "--extra-index-url http://127.0.0.1:9/simple?token=S3CRET")
    result = run(project, "nox", "-s", "lock", env={"UV_HTTP_RETRIES": "0"})
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if "cannot lock" in line]
    assert len(error) == 1, result.stderr
    assert (
        "cannot lock requirements/sniper.in:4 (--extra-index-url http://127.0.0.1:9/simple)"
        in (error[0])
    )
    assert "S3CRET" not in result.stderr and "dev.in" not in error[0]
    assert snapshot(project) == before


def test_a_bad_upgrade_package_is_refused_before_uv_runs(project: Path) -> None:
    result = run(project, "nox", "-s", "lock", "--", "-P", "numpy;rm -rf x")
    assert result.returncode == 1
    assert "--upgrade-package 'numpy;rm -rf x' is not a package name" in result.stderr
    assert "hunter.in" not in result.stderr
