"""A service answer is checked before it counts: tooling.audit.answers and .guarded.

pip-audit reads `null` or `[]` from OSV as "no known vulnerabilities" and
crashes on `{"vulns": null}`; the audit must say instead that the service
answered something that is not a vulnerability report (exit 3), and pass
nothing. The slow tests run the real pip-audit against a loopback server
answering junk.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.audit_support import (
    LOCKS,
    NO_KNOWN,
    OSV_FIXTURES,
    PROJECT_TEMPLATE,
    FakePipAudit,
    load,
    pinned,
    tool_env,
)
from tests.osv_server import OSVServer

answers = load("audit.answers")
guarded = load("audit.guarded")
locks = load("audit.locks")
policy = load("audit.policy")
scan = load("audit.scan")
service = load("audit.service")
audit = load("audit")

NOT_A_REPORT = "answered something that is not a vulnerability report"
AFFECTED = [{"package": {"name": "rsa", "ecosystem": "PyPI"}}]


def record(**fields: Any) -> dict[str, Any]:
    return {"id": "PYSEC-2020-99", "affected": AFFECTED, **fields}


def pypi_release(*vulns: dict[str, Any]) -> dict[str, Any]:
    return {"info": {"name": "rsa", "version": "4.0"}, "vulnerabilities": list(vulns)}


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"vulns": []},
        {
            "vulns": [
                record(aliases=["CVE-2020-13757"], summary="s", published="2020-06-01T00:00:00Z")
            ]
        },
        {"vulns": [record(published="2020-06-01T00:00:00.123456Z", schema_version="1.6.0")]},
        {"vulns": [{"id": "PYSEC-1", "withdrawn": "2021-01-01T00:00:00Z"}]},  # pip-audit skips it
        {
            "vulns": [
                record(
                    affected=[
                        {
                            "package": {"name": "x", "ecosystem": "npm"},
                            "ranges": [
                                {
                                    "type": "SEMVER",
                                    "events": [{"introduced": "0"}, {"fixed": "1.0.0-rc.1+b"}],
                                }
                            ],
                        }
                    ]
                )
            ]
        },
    ],
)
def test_well_formed_osv_answers_count(answer: Any) -> None:
    assert answers.problem(answers.OSV_QUERY_ANSWER, json.dumps(answer).encode()) is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"null", "$ is null, not an object"),
        (b"[]", "$ is an array, not an object"),
        (b'"no vulnerabilities"', "$ is a string, not an object"),
        (b"0", "$ is a number, not an object"),
        (b"false", "$ is false, not an object"),
        (b'{"vulns": null}', "$.vulns is null, not an array"),
        (b'{"vulns": {}}', "$.vulns is an object, not an array"),
        (b'{"vulns": [null]}', "$.vulns[0] is null, not an object"),
        (b'{"results": []}', "$: 'vulns' is a required property"),
        (b'{"vulns": [{"id": "X"}]}', "$.vulns[0]: 'affected' is a required property"),
        (b'{"vulns": [{"affected": []}]}', "$.vulns[0]: 'id' is a required property"),
        (b'{"vulns": [{"id": 7, "affected": []}]}', "$.vulns[0].id is a number, not a string"),
        (
            b'{"vulns": [{"id": "X", "affected": [], "aliases": "CVE-1"}]}',
            "$.vulns[0].aliases is a string, not an array",
        ),
        (
            b'{"vulns": [{"id": "X", "affected": [{"package": "rsa"}]}]}',
            "$.vulns[0].affected[0].package is a string, not an object",
        ),
        (
            b'{"vulns": [{"id": "X", "affected": [], "schema_version": "2.0.0"}]}',
            '$.vulns[0].schema_version is "2.0.0", which pip-audit cannot read',
        ),
        (
            b'{"vulns": [{"id": "X", "affected": [], "published": "2020-06-01 00:00:00+00:00"}]}',
            '$.vulns[0].published is "2020-06-01 00:00:00+00:00", which pip-audit cannot read',
        ),
        (
            json.dumps(
                {
                    "vulns": [
                        record(
                            affected=[
                                {
                                    "package": AFFECTED[0]["package"],
                                    "ranges": [
                                        {
                                            "type": "ECOSYSTEM",
                                            "events": [
                                                {"introduced": "0"},
                                                {"fixed": "2019-09-12"},
                                            ],
                                        }
                                    ],
                                }
                            ]
                        )
                    ]
                }
            ).encode(),
            '$.vulns[0].affected[0].ranges[0].events[1].fixed is "2019-09-12", '
            "which pip-audit cannot read",
        ),
        (
            b'{"vulns": [{"id": "X", "affected": [], "database_specific": ["HIGH"]}]}',
            "$.vulns[0].database_specific is an array, not an object",
        ),
        (
            b'{"vulns": [{"id": "X", "affected": [], "severity": [{"type": "CVSS_V3"}]}]}',
            "$.vulns[0].severity[0]: 'score' is a required property",
        ),
        (
            b"<html><body>Service Unavailable</body></html>",
            "not JSON: <html><body>Service Unavailable</body></html>",
        ),
        (b'{"vulns": [{"id": "PYSEC-', 'not JSON: {"vulns": [{"id": "PYSEC-'),
        (b"", "an empty answer"),
        (b"  \n", "an empty answer"),
    ],
)
def test_anything_else_from_osv_is_named_with_where_it_goes_wrong(
    body: bytes, problem: str
) -> None:
    assert answers.problem(answers.OSV_QUERY_ANSWER, body) == problem


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (pypi_release(), None),
        (
            pypi_release({"id": "PYSEC-1", "aliases": [], "fixed_in": ["4.1"], "summary": None}),
            None,
        ),
        ({}, "$: 'info' is a required property"),
        (None, "$ is null, not an object"),
        ({"info": {}, "vulnerabilities": None}, "$.vulnerabilities is null, not an array"),
        ({"info": {}}, "$: 'vulnerabilities' is a required property"),
        (
            pypi_release({"id": "PYSEC-1", "aliases": []}),
            "$.vulnerabilities[0]: 'fixed_in' is a required property",
        ),
        (
            pypi_release({"id": "PYSEC-1", "aliases": None, "fixed_in": []}),
            "$.vulnerabilities[0].aliases is null, not an array",
        ),
        (
            pypi_release({"id": "PYSEC-1", "aliases": [], "fixed_in": ["next week"]}),
            '$.vulnerabilities[0].fixed_in[0] is "next week", which pip-audit cannot read',
        ),
    ],
)
def test_pypi_release_answers(answer: Any, problem: str | None) -> None:
    assert answers.problem(answers.PYPI_RELEASE_ANSWER, json.dumps(answer).encode()) == problem


def test_every_fixture_advisory_is_a_well_formed_record() -> None:
    from tests.osv_server import AdvisoryIndex

    served = AdvisoryIndex.load([OSV_FIXTURES]).by_id.values()
    assert len(served) == 9
    for advisory in served:
        assert answers.problem(answers.OSV_RECORD, json.dumps(advisory).encode()) is None


# --- the guard, in this process, against a loopback server ------------------------------


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install the guard for one service; the test's end puts requests back as it was."""
    monkeypatch.setattr(requests.Session, "send", requests.Session.send)

    def install(service: str) -> Any:
        ledger = guarded.Ledger()
        guarded.check_answers(service, ledger)
        return ledger

    return install


def test_pypi_answers_are_checked_and_a_404_is_left_to_pip_audit(guard: Any) -> None:
    ledger = guard("pypi")
    with OSVServer([OSV_FIXTURES]) as server:
        server.junk = json.dumps(pypi_release()).encode()
        url = f"{server.base_url}/pypi/rsa/4.0/json"
        assert requests.get(url, timeout=5).json()["vulnerabilities"] == []
        server.junk = None
        assert requests.get(f"{server.base_url}/pypi/nope/1/json", timeout=5).status_code == 404
        assert (ledger.answers, ledger.problem) == (1, None)  # a 404 is no answer that passed
        server.junk = b'{"info": {}, "vulnerabilities": null}'
        with pytest.raises(guarded._Stop):
            requests.get(url, timeout=5)
    assert (ledger.answers, ledger.problem, ledger.url) == (
        1,
        f"{NOT_A_REPORT}: $.vulnerabilities is null, not an array",
        url,
    )


def test_the_first_problem_is_kept_and_the_url_shown_without_secrets(
    guard: Any, tmp_path: Path
) -> None:
    ledger = guard("osv")
    with OSVServer([OSV_FIXTURES], fail=True) as server:
        url = server.url
        secret = f"http://alice:S3CRET@{url.removeprefix('http://')}?token=T0KEN#F4AG"
        with pytest.raises(guarded._Stop):
            requests.post(secret, data="{}", timeout=5)
        server.fail, server.junk = False, b"null"
        with pytest.raises(guarded._Stop):
            requests.post(url, data="{}", timeout=5)
        assert server.authorizations[0] == "Basic YWxpY2U6UzNDUkVU"  # still sent, as alice
    ledger.save(tmp_path / "ledger.json")
    assert json.loads((tmp_path / "ledger.json").read_text()) == {
        "answers": 0,
        "problem": "answered HTTP 500",
        "url": url,
    }


def test_a_query_redirected_to_another_host_is_stopped(guard: Any) -> None:
    ledger = guard("osv")
    with OSVServer([OSV_FIXTURES]) as server, OSVServer([OSV_FIXTURES]) as other:
        server.redirect = other.base_url.replace("127.0.0.1", "localhost")
        with pytest.raises(guarded._Stop):
            requests.post(server.url, data="{}", timeout=5)
        assert other.requests == []
        url = server.url
        host, foreign = url.split("/")[2], server.redirect.removeprefix("http://")
    assert (ledger.answers, ledger.url) == (0, url)
    assert ledger.problem is not None
    assert ledger.problem.startswith(
        f"redirected the query from {host} to another host, {foreign}: "
    )


def test_versions_pip_audit_checked_without_a_checked_answer_do_not_count(
    tmp_path: Path,
) -> None:
    """A pip-audit that asked the service some way the guard does not see passes nothing."""
    pins, pylocks = pinned(tmp_path, "rsa==4.0", "six==1.16.0")
    osv = service.Service("osv", "http://127.0.0.1:9/v1/query")
    with pytest.raises(audit.AuditError) as error:
        scan.scan(pins, pylocks, osv, env={}, run=FakePipAudit(answers=1))
    assert error.value.exit_code == 2
    assert str(error.value) == (
        "pip-audit reports 2 pinned versions checked, but only 1 of the service's answers went "
        "through the audit's check, so none of them counts; install the pip-audit of "
        "requirements/tools/audit.txt (nox -s audit does)"
    )
    skipped = FakePipAudit(answers=1, skipped={"six": "Dependency not found on PyPI"})
    assert [o.checked for o in scan.scan(pins, pylocks, osv, env={}, run=skipped)] == [True, False]


# --- the real pip-audit, guarded, against a server answering junk (slow) ------------------


def guarded_audit(url: str, tiers: tuple[str, ...] = ("base",), **options: Any) -> Any:
    found = {tier: LOCKS / f"{tier}.txt" for tier in tiers}
    return policy.audit_locks(found, service="osv", osv_url=url, env=tool_env(), **options)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("junk", "problem"),
    [
        (b"null", "$ is null, not an object"),
        (b"[]", "$ is an array, not an object"),
        (b'{"vulns": null}', "$.vulns is null, not an array"),
        (b'{"vulns": [{"id": "PYSEC-X"}]}', "$.vulns[0]: 'affected' is a required property"),
        (b'{"vulns": [{"id": 1, "affected": []}]}', "$.vulns[0].id is a number, not a string"),
        (
            b"<!doctype html><title>Sign in</title>",
            "not JSON: <!doctype html><title>Sign in</title>",
        ),
        (b'{"vulns": [', 'not JSON: {"vulns": ['),
    ],
)
def test_real_pip_audit_never_counts_junk(junk: bytes, problem: str) -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        server.junk = junk
        url = server.url
        with pytest.raises(audit.AuditError) as error:
            guarded_audit(url)
    assert error.value.exit_code == 3
    assert str(error.value) == (
        f"the osv vulnerability service {NOT_A_REPORT}: {problem} ({url}), so nothing was checked"
    )


@pytest.mark.slow
def test_real_pip_audit_never_counts_an_answer_cut_short() -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        server.junk, server.cut_short = b"{}", True
        url = server.url
        with pytest.raises(audit.AuditError) as error:
            guarded_audit(url)
    assert (error.value.exit_code, str(error.value)) == (
        3,
        f"the osv vulnerability service {NOT_A_REPORT}: the answer was cut short "
        f"({url}), so nothing was checked",
    )


@pytest.mark.slow
def test_real_pip_audit_refuses_a_redirect_to_another_host() -> None:
    with OSVServer([OSV_FIXTURES]) as server, OSVServer([OSV_FIXTURES]) as other:
        server.redirect = other.base_url.replace("127.0.0.1", "localhost")
        url = server.url
        with pytest.raises(audit.AuditError) as error:
            guarded_audit(url)
        assert other.requests == []
    assert error.value.exit_code == 3
    assert str(error.value).startswith(
        f"the osv vulnerability service redirected the query from {url.split('/')[2]} to "
        f"another host, {server.redirect.removeprefix('http://')}: "
    )


@pytest.mark.slow
def test_the_cli_reports_junk_as_exit_3_and_writes_no_verdict(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tooling.audit", "pip-audit", "--tier=base"]
    command += ["--requirements", str(LOCKS), "--report", str(tmp_path / "audit.json")]
    env = {**tool_env(), "PYTHONPATH": str(PROJECT_TEMPLATE), "PYTHONDONTWRITEBYTECODE": "1"}
    with OSVServer([OSV_FIXTURES]) as server:
        server.junk = b'{"vulns": null}'
        url = server.url
        command += ["--service", "osv", "--osv-url", url]
        found = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    output = found.stdout + found.stderr
    assert found.returncode == 3, output
    assert found.stderr == (
        f"error: the osv vulnerability service {NOT_A_REPORT}: $.vulns is null, not an array "
        f"({url}), so nothing was checked\n"
    )
    assert "TypeError" not in output and "Traceback" not in output
    assert NO_KNOWN not in output.lower() and "passed" not in output
    written = json.loads((tmp_path / "audit.json").read_text())
    assert written["exit_code"] == 3 and "findings" not in written
