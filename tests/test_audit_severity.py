"""tooling.audit.severity: CVSS 3 and 4 through the cvss library, labels, thresholds."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from tests.audit_support import OSV_FIXTURES, load

severity = load("audit.severity")
policy = load("audit.policy")
scan = load("audit.scan")
service = load("audit.service")


@pytest.mark.parametrize(
    ("kind", "vector", "score", "level"),
    [
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N", 8.1, "high"),
        ("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:N", 8.6, "high"),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "medium"),
        ("CVSS_V3", "CVSS:3.1/AV:A/AC:H/PR:H/UI:N/S:U/C:H/I:N/A:N", 4.2, "medium"),
        ("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:L/I:N/A:N", 2.8, "low"),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "none"),
        (
            "CVSS_V4",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            9.3,
            "critical",
        ),
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", 0.0, "none"),
    ],
)
def test_vectors_are_scored_as_the_specifications_say(
    kind: str, vector: str, score: float, level: str
) -> None:
    assert severity.score_vector(kind, vector) == score
    assert severity.level_for_score(score) == level


def test_a_cvss4_only_advisory_gets_its_severity() -> None:
    path = OSV_FIXTURES / "lockstep-cvss4-example" / "LOCKSTEP-TEST-2026-4.json"
    found = severity.record_severity(json.loads(path.read_text()))
    assert (found.level, found.score) == ("critical", 9.3)
    assert found.source.startswith("CVSS:4.0/")


def test_the_newest_vector_wins_then_a_scorable_one_then_the_label() -> None:
    v3 = {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}
    v4 = {
        "type": "CVSS_V4",
        "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
    }
    broken_v4 = {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N"}
    assert severity.record_severity({"severity": [v3, v4]}).score == 9.3
    assert severity.record_severity({"severity": [broken_v4, v3]}).score == 5.3
    labelled = {"severity": [broken_v4], "database_specific": {"severity": "MODERATE"}}
    assert severity.record_severity(labelled) == severity.Severity("medium", None, "MODERATE")
    assert severity.record_severity({"severity": [broken_v4]}) is None
    assert severity.record_severity({}) is None


def test_the_fixture_record_with_a_cvss3_vector() -> None:
    ghsa = json.loads((OSV_FIXTURES / "jinja2" / "GHSA-g3rq-g295-4j3m.json").read_text())
    assert severity.record_severity(ghsa) == severity.Severity(
        "medium", 5.3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"
    )


def finding(id: str, *aliases: str) -> Any:
    return policy.Finding("jinja2", "2.10", ("web",), scan.Advisory(id, aliases, ()))


def test_threshold_lets_known_lower_findings_pass_but_never_unknown_ones() -> None:
    low = dataclasses.replace(finding("A-1"), severity=severity.Severity("medium", 5.3, "v"))
    high = dataclasses.replace(finding("A-2"), severity=severity.Severity("high", 8.1, "v"))
    unknown = finding("A-3")
    marked = policy.apply_threshold([low, high, unknown], "high")
    assert [f.fails for f in marked] == [False, True, True]
    assert policy.apply_threshold([low], None)[0].fails


def test_severities_come_from_the_record_or_an_alias() -> None:
    records = {
        "PYSEC-1": {"id": "PYSEC-1"},  # no severity: try the aliases
        "GHSA-1": {
            "severity": [
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}
            ]
        },
    }
    asked: list[str] = []

    def fetch(where: Any, advisory: str) -> dict[str, Any] | None:
        asked.append(f"{where.records_url}/{advisory}")
        return records.get(advisory)

    osv = service.Service("osv", "http://127.0.0.1:1/v1/query")
    found, notes = policy.add_severities([finding("PYSEC-1", "CVE-1", "GHSA-1")], osv, fetch)
    assert found[0].severity.level == "critical" and notes == []
    assert asked[0] == "http://127.0.0.1:1/v1/vulns/PYSEC-1"
    found, notes = policy.add_severities([finding("X-1")], service.Service("pypi"), fetch)
    assert found[0].severity is None and "every finding counts" in notes[0]
