"""tests/osv_server.py: the loopback OSV service the audit tests ask."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.audit_support import FIXTURES, OSV_FIXTURES
from tests.osv_server import OSVServer, affects, rfc3339_timestamps


def osv_query(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def ids(answer: dict[str, Any]) -> list[str]:
    return sorted(v["id"] for v in answer.get("vulns", []))


def pypi(name: str, version: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {"package": {"name": name, "ecosystem": "PyPI"}}
    if version is not None:
        query["version"] = version
    return query


@pytest.fixture(scope="module")
def fixture_server() -> Iterator[OSVServer]:
    with OSVServer([OSV_FIXTURES, FIXTURES / "no-such-dir"]) as server:
        yield server


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("jinja2", "2.10", ["GHSA-g3rq-g295-4j3m", "PYSEC-2019-217"]),
        ("Jinja2", "2.10.0", ["GHSA-g3rq-g295-4j3m", "PYSEC-2019-217"]),
        ("jinja2", "2.10.1", ["GHSA-g3rq-g295-4j3m"]),
        ("jinja2", "2.11.3", []),
        ("requests", "2.19.0", ["PYSEC-2018-28"]),
        ("requests", "2.20.0", []),
        ("urllib3", "1.24.1", ["PYSEC-2023-192", "PYSEC-2023-212"]),
        ("urllib3", "1.26.17", ["PYSEC-2023-212"]),
        ("urllib3", "2.0.5", ["PYSEC-2023-192", "PYSEC-2023-212"]),
        ("urllib3", "2.0.6", ["PYSEC-2023-212"]),
        ("urllib3", "2.0.7", []),
        ("PyYAML", "5.3", ["PYSEC-2021-142"]),
        ("py", "1.11.0", ["PYSEC-2022-42969"]),  # last_affected is inclusive
        ("py", "1.11.1", []),
        ("py", None, ["PYSEC-2022-42969"]),  # no version: every advisory for the package
        ("rsa", "4.0", ["PYSEC-2020-99"]),
        ("rsa", "4.1", []),
        ("lockstep-cvss4-example", "1.0", ["LOCKSTEP-TEST-2026-4"]),
        ("unknown-package", "1.0", []),
    ],
)
def test_osv_server_answers_queries_by_osv_rules(
    fixture_server: OSVServer, name: str, version: str | None, expected: list[str]
) -> None:
    answer = osv_query(fixture_server.url, pypi(name, version))
    assert ids(answer) == expected
    if not expected:
        assert answer == {}  # what pip-audit expects when nothing is affected


def test_osv_server_batch_record_and_failure_modes(fixture_server: OSVServer) -> None:
    batch = osv_query(
        f"{fixture_server.base_url}/v1/querybatch",
        {"queries": [pypi("jinja2", "2.10"), {"package": {"purl": "pkg:pypi/requests@2.20.0"}}]},
    )
    assert [sorted(v["id"] for v in r.get("vulns", [])) for r in batch["results"]] == [
        ["GHSA-g3rq-g295-4j3m", "PYSEC-2019-217"],
        [],
    ]
    with urllib.request.urlopen(f"{fixture_server.base_url}/v1/vulns/PYSEC-2018-28") as response:
        assert json.load(response)["aliases"] == ["CVE-2018-18074", "GHSA-x84v-xcm2-53pg"]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{fixture_server.base_url}/v1/vulns/NOPE-1")
    assert missing.value.code == 404
    fixture_server.fail = True
    try:
        with pytest.raises(urllib.error.HTTPError) as failing:
            osv_query(fixture_server.url, pypi("jinja2", "2.10"))
        assert failing.value.code == 500
    finally:
        fixture_server.fail = False
    assert ("POST", "/v1/query", pypi("jinja2", "2.10")) in fixture_server.requests


def test_timestamps_are_served_in_the_rfc3339_form_pip_audit_parses() -> None:
    record = {
        "id": "X-1",
        "published": "2024-07-07 18:15:00+00:00",  # as some stored records have it
        "modified": "2024-07-08 02:00:00.123456+02:00",
        "withdrawn": "2024-07-09T00:00:00Z",
    }
    assert rfc3339_timestamps(record) == {
        "id": "X-1",
        "published": "2024-07-07T18:15:00Z",
        "modified": "2024-07-08T00:00:00.123456Z",
        "withdrawn": "2024-07-09T00:00:00Z",
    }


def test_explicit_versions_lists_and_unsorted_events() -> None:
    record = {
        "id": "X-1",
        "affected": [
            {"package": {"ecosystem": "PyPI", "name": "Foo_Bar"}, "versions": ["1.0", "1.2"]},
            {
                "package": {"ecosystem": "PyPI", "name": "foo-bar"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "3.0"},
                            {"fixed": "3.1"},
                            {"introduced": "0"},
                            {"fixed": "0.5"},
                        ],
                    }
                ],
            },
        ],
    }
    assert [
        v
        for v in ["0.1", "0.5", "1.0", "1.1", "1.2", "3.0.1", "3.1"]
        if affects(record, "foo.bar", v)
    ] == [
        "0.1",
        "1.0",
        "1.2",
        "3.0.1",
    ]
