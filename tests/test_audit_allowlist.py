"""tooling.audit.allowlist: accepted findings, their expiry and its limit."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.audit_support import ALLOWLIST, load, write

allowlist = load("audit.allowlist")
settings = load("settings")
policy = load("audit.policy")
scan = load("audit.scan")
audit = load("audit")

TODAY = date(2029, 6, 1)


def test_entries_are_read_and_a_missing_file_allows_nothing(tmp_path: Path) -> None:
    entries = allowlist.load(write(tmp_path / "a.toml", ALLOWLIST), today=TODAY)
    assert [(e.id, e.package, e.expires) for e in entries] == [
        ("PYSEC-2019-217", None, date(2030, 1, 31)),
        ("CVE-2020-28493", "Jinja2", date(2030, 1, 31)),
    ]
    assert allowlist.load(tmp_path / "absent.toml") == []
    assert allowlist.load(None) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[ignore]]\nid = 'X-1'\nexpires = 2030-01-01\n", "#1 (X-1): missing 'reason'"),
        ("[[ignore]]\nid = 'X-1'\nreason = 'r'\n", "#1 (X-1): missing 'expires'"),
        ("[[ignore]]\nreason = 'r'\nexpires = 2030-01-01\n", "#1: missing 'id'"),
        ("[[ignore]]\nid = 'X-1'\nreason = ' '\nexpires = 2030-01-01\n", "'reason' must say why"),
        ("[[ignore]]\nid = 'X-1'\nreason = 'r'\nexpires = '31/01/2030'\n", "must be a date"),
        (
            "[[ignore]]\nid = 'X-1'\nreason = 'r'\nexpires = 2030-01-01T00:00:00\n",
            "not a date-time",
        ),
        ("[[ignore]]\nid = 'X-1'\nreason = 'r'\nexpire = 2030-01-01\n", "unknown key(s) expire"),
        ("[[ignore]]\nid = 'not an id'\nreason = 'r'\nexpires = 2030-01-01\n", "advisory id"),
        ("ignore = ['X-1']\n", "#1 is not a table"),
        ("ignore = 'X-1'\n", "must be an array of tables"),
        ("[[allow]]\nid = 'X-1'\n", "unknown key(s) allow"),
        ("[[ignore]\n", "not a readable TOML file"),
        (
            ALLOWLIST + "\n[[ignore]]\nid = 'pysec-2019-217'\nreason = 'r'\nexpires = 2030-01-01\n",
            "#3 (pysec-2019-217) repeats [[ignore]] #1 (PYSEC-2019-217)",
        ),
        (
            "[[ignore]]\nid = 'X-1'\nreason = 'r'\nexpires = 9999-12-31\n",
            "#1 (X-1): 'expires' 9999-12-31 is more than 365 days ahead; "
            "review it by 2030-06-01 at the latest",
        ),
    ],
)
def test_malformed_entries_fail_naming_the_entry(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "audit-allowlist.toml", text)
    with pytest.raises(audit.AuditError) as error:
        allowlist.load(path, today=TODAY)
    assert error.value.exit_code == 2
    assert message in str(error.value)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_the_expiry_limit_is_a_setting(tmp_path: Path) -> None:
    path = write(tmp_path / "a.toml", "[[ignore]]\nid='X-1'\nreason='r'\nexpires=2029-09-01\n")
    assert allowlist.load(path, today=TODAY, max_days=92)[0].id == "X-1"
    with pytest.raises(
        audit.AuditError, match=r"more than 91 days ahead.*audit-allowlist-max-days"
    ):
        allowlist.load(path, today=TODAY, max_days=91)


@pytest.mark.parametrize(
    ("value", "got"),
    [("forever", "a string"), (0, "an integer (0)"), (True, "a boolean (true)")],
)
def test_the_limit_setting_is_checked_by_the_project_schema(value: object, got: str) -> None:
    with pytest.raises(settings.SettingsError) as error:
        settings.check({"audit-allowlist-max-days": value})
    assert str(error.value) == (
        "pyproject.toml: [tool.lockstep] audit-allowlist-max-days must be a positive whole "
        f"number, got {got}; write it like audit-allowlist-max-days = 365"
    )
    assert settings.SETTINGS["audit-allowlist-max-days"].default == allowlist.DEFAULT_MAX_DAYS


def finding(id: str = "PYSEC-2019-217", *aliases: str, package: str = "jinja2") -> object:
    return policy.Finding(package, "2.10", ("web",), scan.Advisory(id, aliases, ("2.10.1",)))


def allowance(id: str, expires: date, package: str | None = None, number: int = 1) -> object:
    return allowlist.Allowance(id, "reason", expires, package, number)


def test_allowances_match_ids_or_aliases_until_the_expiry_day() -> None:
    entries = [
        allowance("CVE-2019-10906", date(2030, 1, 31)),
        allowance("GHSA-OTHER", date(2030, 1, 31), number=2),
        allowance("PYSEC-2019-217", date(2030, 1, 31), package="requests", number=3),
    ]
    found = [finding("PYSEC-2019-217", "CVE-2019-10906")]
    marked, stale, expired = policy.apply_allowlist(found, entries, date(2030, 1, 31))
    assert marked[0].allowed_by == entries[0] and not marked[0].fails
    assert [e.number for e in stale] == [2, 3]  # 3 is scoped to another package
    assert expired == []
    marked, stale, expired = policy.apply_allowlist(found, entries, date(2030, 2, 1))
    assert marked[0].fails and marked[0].expired_allowance == entries[0]
    assert [e.number for e in expired] == [1, 2, 3] and stale == []
