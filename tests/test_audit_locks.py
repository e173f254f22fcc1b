"""tooling.audit.locks: every pinned version of every lock, and pip-audit's inputs."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.audit_support import (
    LOCK_BASE,
    LOCK_LEGACY,
    LOCK_WEB,
    LOCKS,
    PROJECT_TEMPLATE,
    load,
    two_tier_locks,
    with_pylocks,
    write,
)

locks = load("audit.locks")
audit = load("audit")


def test_audit_modules_are_plain_python_without_template_syntax() -> None:
    modules = sorted((PROJECT_TEMPLATE / "tooling" / "audit").glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "__main__.py", "policy.py", "scan.py"}
    for module in modules:
        text = module.read_text(encoding="utf-8")
        assert "{{" not in text and "{%" not in text and "cookiecutter" not in text, module
    assert not (PROJECT_TEMPLATE / "tooling" / "audit.py").exists()


def test_every_pinned_version_is_listed_once_with_its_tiers_whatever_its_marker(
    tmp_path: Path,
) -> None:
    found = two_tier_locks(tmp_path)
    found["legacy"] = write(tmp_path / "requirements" / "legacy.txt", LOCK_LEGACY)
    pins = locks.pinned_versions(found)
    assert [(p.name, p.version, p.tiers) for p in pins] == [
        ("colorama", "0.4.6", ("web",)),
        ("jinja2", "2.10", ("web",)),
        ("requests", "2.19.0", ("legacy",)),
        ("requests", "2.32.3", ("base", "web")),
    ]
    assert pins[0].markers == ("sys_platform == 'win32'",)


def test_the_committed_marker_lock_holds_both_rsa_versions() -> None:
    pins = locks.pinned_versions({"markers": LOCKS / "markers.txt"})
    assert [(p.name, p.version) for p in pins if p.name == "rsa"] == [
        ("rsa", "4.0"),
        ("rsa", "4.9"),
    ]


def test_equal_versions_spelled_differently_are_one_pinned_version(tmp_path: Path) -> None:
    found = {
        "a": write(tmp_path / "a.txt", "foo==2.0 \\\n    --hash=sha256:aa\n"),
        "b": write(tmp_path / "b.txt", "Foo==2.0.0 \\\n    --hash=sha256:aa\n"),
    }
    assert [(p.name, p.tiers) for p in locks.pinned_versions(found)] == [("foo", ("a", "b"))]


def test_the_pylocks_read_are_the_fewest_that_hold_every_pinned_version() -> None:
    pin = locks.PinnedVersion
    pins = [
        pin("numpy", "2.2.6", ("hunter", "strategist"), ("python_version < '3.12'",)),
        pin("numpy", "2.3.1", ("hunter", "strategist"), ("python_version >= '3.12'",)),
        pin("pandas", "2.3.0", ("strategist",), ("",)),
        pin("rsa", "4.9", ("base", "hunter", "strategist", "dev"), ("",)),
        pin("pytest", "8.4.0", ("dev",), ("",)),
    ]
    assert locks.covering(pins) == ["strategist", "dev"]
    assert locks.covering(pins[3:4]) == ["base"]


def test_a_pylock_that_does_not_say_what_its_lock_says_stops_the_audit(tmp_path: Path) -> None:
    found = with_pylocks({"base": write(tmp_path / "requirements" / "base.txt", LOCK_BASE)})
    assert locks.pylocks_of(found) == {"base": tmp_path / "requirements" / "pylock.base.toml"}
    write(found["base"], LOCK_BASE.replace("2.32.3", "2.32.4"))
    with pytest.raises(audit.AuditError) as error:
        locks.pylocks_of(found)
    assert error.value.exit_code == 2
    assert str(error.value) == (
        "requirements/pylock.base.toml was written from another requirements/base.txt than the "
        "one beside it: run `nox -s lock`"
    )
    (tmp_path / "requirements" / "pylock.base.toml").unlink()
    with pytest.raises(
        audit.AuditError,
        match=r"^requirements/pylock.base.toml is missing: run `nox -s lock`, which writes it beside base.txt$",
    ):
        locks.pylocks_of(found)


def test_a_pylock_naming_other_versions_with_its_digest_recomputed_stops_the_audit(
    tmp_path: Path,
) -> None:
    """pip-audit reads the pylock: a version edited there (its own digest recomputed) would
    be audited instead of the one the .txt pins."""
    found = with_pylocks({"base": write(tmp_path / "requirements" / "base.txt", LOCK_BASE)})
    path = tmp_path / "requirements" / "pylock.base.toml"
    head, body = path.read_text().split("lock-version", 1)
    body = "lock-version" + body.replace('version = "2.32.3"', 'version = "2.33.0"')
    digest = hashlib.sha256(body.encode()).hexdigest()
    path.write_text(re.sub(r"# body sha256:[0-9a-f]{64}", f"# body sha256:{digest}", head) + body)
    with pytest.raises(audit.AuditError) as error:
        locks.pylocks_of(found)
    assert error.value.exit_code == 2
    assert str(error.value) == (
        "requirements/pylock.base.toml names requests 2.33.0, but requirements/base.txt pins "
        "requests 2.32.3: run `nox -s lock`"
    )


def test_discover_locks_follows_the_tier_files(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements"
    write(requirements / "base.in", "requests\n")
    write(requirements / "web.in", "-r base.in\njinja2\n")
    write(requirements / "base.txt", LOCK_BASE)
    with pytest.raises(audit.AuditError) as missing:
        locks.discover_locks(requirements)
    assert missing.value.exit_code == 2
    assert "web.txt" in str(missing.value)
    write(requirements / "web.txt", LOCK_WEB)
    assert list(locks.discover_locks(requirements)) == ["base", "web"]
    assert list(locks.discover_locks(requirements, ["web"])) == ["web"]
    with pytest.raises(audit.AuditError, match="unknown tier"):
        locks.discover_locks(requirements, ["nope"])


def test_a_broken_lock_is_one_line_naming_it(tmp_path: Path) -> None:
    lock = write(tmp_path / "web.txt", "requests>=2 \\\n    --hash=sha256:aa\n")
    with pytest.raises(load("lockfile").LockFileError) as error:
        locks.pinned_versions({"web": lock})
    assert f"{lock}:1" in str(error.value) and "\n" not in str(error.value)
