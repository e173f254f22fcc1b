"""tooling.audit.report: a table and a JSON report that account for every pinned version."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from tests.audit_support import OSV, FakePipAudit, load, two_tier_locks, vuln, write, write_lock

policy = load("audit.policy")
report = load("audit.report")


def audited(tmp_path: Path, runner: FakePipAudit, **options: Any) -> Any:
    return policy.audit_locks(
        two_tier_locks(tmp_path), run=runner, env=dict(OSV), today=date(2029, 6, 1), **options
    )


def test_the_table_has_a_row_per_finding_and_per_unchecked_version(tmp_path: Path) -> None:
    runner = FakePipAudit(
        {
            ("jinja2", "2.10"): [
                vuln("PYSEC-2019-217", "CVE-2019-10906", "GHSA-462w-v97r-4m45", fix=["2.10.1"])
            ]
        },
        skipped={"colorama": "Dependency not found on PyPI", "requests": "no answer"},
    )
    table = report.render_table(audited(tmp_path, runner)).splitlines()
    assert table[0].split() == [
        "package",
        "version",
        "tiers",
        "advisory",
        "(aliases)",
        "fixed",
        "in",
        "severity",
        "status",
    ]
    assert table[1].split() == [
        "jinja2",
        "2.10",
        "web",
        "PYSEC-2019-217",
        "(CVE-2019-10906,",
        "GHSA-462w-v97r-4m45)",
        "2.10.1",
        "unknown",
        "FAIL",
    ]
    assert "colorama  0.4.6" in table[2] and "NOT CHECKED: Dependency not found on PyPI" in table[2]
    assert "requests  2.32.3" in table[3] and "base, web" in table[3]
    assert "NOT CHECKED: no answer" in table[3]
    assert table[-1].startswith(
        "audit FAILED: 1 vulnerability in 1 pinned version, 2 pinned versions NOT checked "
        "(3 pinned versions of 3 packages in 2 locks, 1 checked with pip-audit via osv at "
    )


def test_the_summary_counts_pinned_versions_not_names(tmp_path: Path) -> None:
    locks = two_tier_locks(tmp_path)
    locks["legacy"] = write_lock(tmp_path / "requirements" / "legacy.txt", "requests==2.19.0\n")
    result = policy.audit_locks(locks, run=FakePipAudit(), env=dict(OSV))
    assert report.summary(result).startswith(
        "audit passed: no failing vulnerabilities (4 pinned versions of 3 packages in 3 locks, "
        "4 checked with pip-audit"
    )


def test_allow_list_lines_in_the_table(tmp_path: Path) -> None:
    allowlist = write(
        tmp_path / "a.toml",
        "[[ignore]]\nid='CVE-2019-10906'\nreason='r'\nexpires=2029-06-30\n"
        "[[ignore]]\nid='X-1'\npackage='Jinja2'\nreason='r'\nexpires=2029-06-30\n"
        "[[ignore]]\nid='X-2'\nreason='r'\nexpires=2029-05-31\n",
    )
    runner = FakePipAudit({("jinja2", "2.10"): [vuln("PYSEC-2019-217", "CVE-2019-10906")]})
    table = report.render_table(audited(tmp_path, runner, allowlist_path=allowlist))
    assert "allowed until 2029-06-30" in table
    assert "stale allow-list [[ignore]] #2 (X-1 for Jinja2): matches no finding" in table
    assert "EXPIRED allow-list [[ignore]] #3 (X-2) on 2029-05-31" in table
    assert table.splitlines()[-1].startswith("audit FAILED: 1 expired allow-list entry (")


def test_the_json_report_lists_every_pinned_version(tmp_path: Path) -> None:
    runner = FakePipAudit(
        {("jinja2", "2.10"): [vuln("PYSEC-2019-217", fix=["2.10.1"])]},
        skipped={"requests": "no answer"},
    )
    data = json.loads(json.dumps(report.to_json(audited(tmp_path, runner))))
    assert data["exit_code"] == 1
    assert [
        (p["package"], p["version"], p["tiers"], p["markers"], p["checked"], p["unchecked_reason"])
        for p in data["pinned_versions"]
    ] == [
        ("colorama", "0.4.6", ["web"], ["sys_platform == 'win32'"], True, None),
        ("jinja2", "2.10", ["web"], [], True, None),
        ("requests", "2.32.3", ["base", "web"], [], False, "no answer"),
    ]
    assert [(f["id"], f["tiers"], f["fails"]) for f in data["findings"]] == [
        ("PYSEC-2019-217", ["web"], True)
    ]


def test_reports_are_written_atomically_with_sorted_keys(tmp_path: Path) -> None:
    path = report.write_report({"b": 1, "a": [2]}, tmp_path / "reports" / "audit.json")
    assert path.read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'
    assert list(path.parent.iterdir()) == [path]
