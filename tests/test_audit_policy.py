"""tooling.audit.policy: the verdict over every pinned version, with a fake pip-audit."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.audit_support import (
    ALLOWLIST,
    LOCK_LEGACY,
    NO_KNOWN,
    OSV,
    OSV_FIXTURES,
    FakePipAudit,
    load,
    two_tier_locks,
    vuln,
    write,
    write_lock,
)

policy = load("audit.policy")
report = load("audit.report")
audit = load("audit")


@pytest.fixture
def two_tiers(tmp_path: Path) -> dict[str, Path]:
    return two_tier_locks(tmp_path)


def run_audit(locks: dict[str, Path], runner: FakePipAudit, **options: Any) -> Any:
    options.setdefault("env", dict(OSV))
    options.setdefault("today", date(2029, 6, 1))
    return policy.audit_locks(locks, run=runner, **options)


def test_clean_locks_pass_and_every_pinned_version_was_asked(two_tiers: dict[str, Path]) -> None:
    runner = FakePipAudit()
    result = run_audit(two_tiers, runner)
    assert result.exit_code == 0
    # colorama is pinned only for Windows and is audited all the same
    assert runner.inputs == [["colorama==0.4.6", "jinja2==2.10", "requests==2.32.3"]]
    assert (len(result.pins), result.checked, result.unchecked) == (3, 3, [])


def test_findings_name_the_tiers_that_pin_the_version(two_tiers: dict[str, Path]) -> None:
    runner = FakePipAudit(
        {
            ("jinja2", "2.10"): [
                vuln("PYSEC-2019-217", "GHSA-462w-v97r-4m45", "CVE-2019-10906", fix=["2.10.1"])
            ],
            ("requests", "2.32.3"): [vuln("GHSA-9hjg-9r4m-mvj7", fix=["2.32.4"])],
        }
    )
    result = run_audit(two_tiers, runner)
    assert result.exit_code == 1
    assert [(f.package, f.tiers, f.id) for f in result.failing] == [
        ("jinja2", ("web",), "PYSEC-2019-217"),
        ("requests", ("base", "web"), "GHSA-9hjg-9r4m-mvj7"),
    ]
    assert result.findings[0].advisory.aliases == ("CVE-2019-10906", "GHSA-462w-v97r-4m45")


def test_a_package_pinned_at_two_versions_is_audited_at_both(
    two_tiers: dict[str, Path], tmp_path: Path
) -> None:
    two_tiers["legacy"] = write_lock(tmp_path / "requirements" / "legacy.txt", LOCK_LEGACY)
    runner = FakePipAudit({("requests", "2.19.0"): [vuln("PYSEC-2018-28")]})
    result = run_audit(two_tiers, runner)
    # One pip-audit run reads both versions, from the pylocks of legacy and web (base adds none).
    assert runner.inputs == [
        ["requests==2.19.0", "colorama==0.4.6", "jinja2==2.10", "requests==2.32.3"]
    ]
    assert [(f.package, f.version, f.tiers) for f in result.failing] == [
        ("requests", "2.19.0", ("legacy",))
    ]
    assert len(result.pins) == result.checked == 4


def test_versions_missing_from_the_report_or_skipped_are_all_unchecked(
    two_tiers: dict[str, Path],
) -> None:
    runner = FakePipAudit(skipped={"jinja2": "Dependency not found on PyPI"}, omitted=["colorama"])
    result = run_audit(two_tiers, runner)
    assert result.exit_code == 1
    assert [(u.pin.name, u.pin.tiers, u.reason) for u in result.unchecked] == [
        ("colorama", ("web",), "missing from pip-audit's report"),
        ("jinja2", ("web",), "Dependency not found on PyPI"),
    ]
    assert result.checked == 1


NOT_ON_PYPI = "Dependency not found on PyPI and could not be audited"


def test_pypi_knowing_none_of_its_own_packages_is_said_as_such(two_tiers: dict[str, Path]) -> None:
    runner = FakePipAudit(skipped=dict.fromkeys(["colorama", "jinja2", "requests"], NOT_ON_PYPI))
    with pytest.raises(audit.AuditError) as error:
        run_audit(two_tiers, runner, env={})
    assert error.value.exit_code == 3
    message = str(error.value)
    assert message == (
        "the pypi vulnerability service could check none of the 3 pinned versions, "
        f"though they all come from PyPI (for colorama==0.4.6: {NOT_ON_PYPI}), "
        "so nothing was checked; PyPI's JSON API is not answering as it should here "
        "(a proxy or mirror in between?): try again later, or use --service osv"
    )
    assert "does the service cover" not in message


def test_nothing_checked_from_another_index_asks_whether_the_service_covers_it(
    tmp_path: Path,
) -> None:
    lock = write_lock(
        tmp_path / "requirements" / "base.txt",
        "--index-url https://bob:PW@pkgs.example/simple?token=T0KEN\n\n" + LOCK_LEGACY,
    )
    runner = FakePipAudit(skipped={"requests": NOT_ON_PYPI})
    with pytest.raises(audit.AuditError) as error:
        run_audit({"base": lock}, runner, env={})
    assert error.value.exit_code == 3
    assert str(error.value) == (
        "the pypi vulnerability service could check none of the 1 pinned versions "
        f"(for requests==2.19.0: {NOT_ON_PYPI}), so nothing was checked; these packages "
        "come from https://pkgs.example/simple: does the service cover them?"
    )


@pytest.mark.parametrize(
    "lock_text", ["", "# only a header\n\n", "--index-url https://x.example/simple\n"]
)
def test_an_empty_lock_is_nothing_checked_even_against_a_failing_service(
    tmp_path: Path, lock_text: str
) -> None:
    lock = write_lock(tmp_path / "requirements" / "sniper.txt", lock_text)
    runner = FakePipAudit(trouble={"problem": "answered HTTP 500", "url": "http://x/v1/query"})
    with pytest.raises(audit.AuditError) as error:
        run_audit({"sniper": lock}, runner)
    assert error.value.exit_code == 3
    assert str(error.value) == (
        f"nothing checked: {lock} pins no package versions, so there is nothing to audit"
    )
    assert runner.calls == []  # the service was not asked: there was nothing to ask about


def test_several_empty_locks_are_nothing_checked_and_one_pinned_lock_is_enough(
    tmp_path: Path,
) -> None:
    empty = {
        tier: write_lock(tmp_path / "requirements" / f"{tier}.txt", "")
        for tier in ("base", "sniper")
    }
    with pytest.raises(audit.AuditError, match=r"^nothing checked: .* pin no package versions"):
        run_audit(empty, FakePipAudit())
    mixed = {**empty, "legacy": write_lock(tmp_path / "requirements" / "legacy.txt", LOCK_LEGACY)}
    result = run_audit(mixed, FakePipAudit())
    assert (result.exit_code, result.checked) == (0, 1)


def test_allowlist_applies_then_expires_and_reports_stale_entries(
    two_tiers: dict[str, Path], tmp_path: Path
) -> None:
    allowlist = write(tmp_path / "audit-allowlist.toml", ALLOWLIST)
    runner = FakePipAudit({("jinja2", "2.10"): [vuln("PYSEC-2019-217", "CVE-2019-10906")]})
    result = run_audit(two_tiers, runner, allowlist_path=allowlist, today=date(2030, 1, 31))
    assert result.exit_code == 0
    assert [e.id for e in result.stale] == ["CVE-2020-28493"]
    result = run_audit(two_tiers, runner, allowlist_path=allowlist, today=date(2030, 2, 1))
    assert result.exit_code == 1
    assert [e.number for e in result.expired] == [1, 2]
    assert result.findings[0].status() == "FAIL (allowance expired 2030-01-31)"


def test_an_expired_entry_fails_even_when_nothing_matches_it(
    two_tiers: dict[str, Path], tmp_path: Path
) -> None:
    allowlist = write(tmp_path / "a.toml", "[[ignore]]\nid='X-1'\nreason='r'\nexpires=2020-01-01\n")
    result = run_audit(two_tiers, FakePipAudit(), allowlist_path=allowlist)
    assert result.exit_code == 1 and not result.findings
    assert "1 expired allow-list entry" in report.summary(result)


def test_a_bad_allowlist_stops_before_running_anything(
    two_tiers: dict[str, Path], tmp_path: Path
) -> None:
    runner = FakePipAudit()
    far = write(tmp_path / "a.toml", "[[ignore]]\nid='X-1'\nreason='r'\nexpires=2099-01-01\n")
    with pytest.raises(audit.AuditError, match="more than 30 days ahead") as error:
        run_audit(two_tiers, runner, allowlist_path=far, allowlist_max_days=30)
    assert error.value.exit_code == 2 and runner.calls == []


def test_the_severity_threshold_uses_the_service_records(two_tiers: dict[str, Path]) -> None:
    runner = FakePipAudit(
        {("jinja2", "2.10"): [vuln("GHSA-g3rq-g295-4j3m"), vuln("PYSEC-2019-217")]}
    )
    record = json.loads((OSV_FIXTURES / "jinja2" / "GHSA-g3rq-g295-4j3m.json").read_text())

    def fetch(service: Any, advisory: str) -> dict[str, Any] | None:
        return record if advisory == record["id"] else None

    result = run_audit(two_tiers, runner, min_severity="high", fetch=fetch)
    assert [(f.id, f.fails) for f in result.findings] == [
        ("GHSA-g3rq-g295-4j3m", False),
        ("PYSEC-2019-217", True),  # no severity known: it counts
    ]
    with pytest.raises(audit.AuditError, match="unknown severity"):
        run_audit(two_tiers, runner, min_severity="severe")


def test_the_service_trouble_pip_audit_met_is_exit_3_in_words(two_tiers: dict[str, Path]) -> None:
    trouble = {
        "problem": "is unreachable: connection refused",
        "url": "http://127.0.0.1:1/v1/query",
    }
    with pytest.raises(audit.AuditError) as error:
        run_audit(two_tiers, FakePipAudit(trouble=trouble))
    message = str(error.value)
    assert error.value.exit_code == 3
    assert message == (
        "the osv vulnerability service is unreachable: connection refused "
        "(http://127.0.0.1:1/v1/query), so nothing was checked"
    )
    assert NO_KNOWN not in message.lower()


@pytest.mark.parametrize(
    ("options", "from_pypi"),
    [
        ("--index-url https://pypi.org/simple/\n", True),
        ("--index-url=https://pypi.org/simple\n", True),
        ("--extra-index-url https://download.pytorch.org/whl/cpu\n", False),
    ],
)
def test_where_the_locks_say_their_packages_come_from_decides_the_advice(
    tmp_path: Path, options: str, from_pypi: bool
) -> None:
    lock = write_lock(tmp_path / "requirements" / "base.txt", options + "\n" + LOCK_LEGACY)
    with pytest.raises(audit.AuditError) as error:
        run_audit({"base": lock}, FakePipAudit(skipped={"requests": NOT_ON_PYPI}), env={})
    message = str(error.value)
    assert ("though they all come from PyPI" in message) == from_pypi
    assert ("does the service cover them?" in message) != from_pypi
    if not from_pypi:
        assert "come from https://pypi.org/simple, https://download.pytorch.org/whl/cpu:" in message
