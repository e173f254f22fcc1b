"""The generated project's audit tooling, tested straight from the template source.

`{{cookiecutter.project_slug}}/tooling/` is copied without rendering, so its
modules import as they are. The fast tests drive tooling/audit.py with fake
runners; the slow ones run the real pip-audit, cyclonedx-py and safety 2.3.5
against committed hashed locks and the loopback OSV server.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.osv_server import OSVServer, affects, rfc3339_timestamps

TEMPLATE = Path(__file__).resolve().parent.parent
PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OSV_FIXTURES = FIXTURES / "osv"
SAFETY_DB = FIXTURES / "safety-db"
LOCKS = FIXTURES / "locks"
SHARED_OSV = TEMPLATE.parent / "shared" / "data" / "osv-pypi"  # an extra, when present
NO_KNOWN = "no known vulnerabilities"


def load_audit() -> ModuleType:
    """Import tooling.audit from the template folder (registering `tooling` once).

    Without writing __pycache__ into the template, where a bake would copy it.
    """
    sys.dont_write_bytecode = True
    package_dir = PROJECT_TEMPLATE / "tooling"
    loaded = sys.modules.get("tooling")
    if loaded is None:
        spec = importlib.util.spec_from_file_location(
            "tooling", package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
        )
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules["tooling"] = loaded
        spec.loader.exec_module(loaded)
    assert Path(loaded.__file__ or "").resolve().parent == package_dir.resolve()
    return importlib.import_module("tooling.audit")


audit = load_audit()


# --- fakes -----------------------------------------------------------------------------


def dep(name: str, version: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "version": version, "vulns": list(vulns)}


def vuln(id: str, *aliases: str, fix: Sequence[str] = ()) -> dict[str, Any]:
    return {"id": id, "aliases": list(aliases), "fix_versions": list(fix), "description": "d"}


class FakePipAudit:
    """Stands in for pip-audit: records argv/env, writes a JSON report or fails."""

    def __init__(
        self, *reports: list[dict[str, Any]], returncode: int | None = None, stderr: str = ""
    ) -> None:
        self.reports = list(reports)
        self.returncode = returncode
        self.stderr = stderr
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(argv), dict(env)))
        if self.returncode is not None and not self.reports:
            return subprocess.CompletedProcess(argv, self.returncode, "", self.stderr)
        dependencies = self.reports.pop(0) if len(self.reports) > 1 else self.reports[0]
        output = Path(argv[argv.index("-o") + 1])
        output.write_text(json.dumps({"dependencies": dependencies, "fixes": []}))
        found = any(d.get("vulns") for d in dependencies)
        return subprocess.CompletedProcess(argv, 1 if found else 0, "", self.stderr)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


LOCK_A = """\
# comment
--index-url https://pypi.org/simple
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:aaa \\
    --hash=sha256:bbb
    # via click
Jinja2[i18n]==2.10 \\
    --hash=sha256:ccc
    # via -r web.in
requests==2.32.3 --hash=sha256:ddd
"""
LOCK_B = "requests==2.32.3 --hash=sha256:ddd\n"


@pytest.fixture
def two_tiers(tmp_path: Path) -> dict[str, Path]:
    return {
        "base": write(tmp_path / "requirements" / "base.txt", LOCK_B),
        "web": write(tmp_path / "requirements" / "web.txt", LOCK_A),
    }


OSV = {"PIP_AUDIT_VULNERABILITY_SERVICE": "osv", "PIP_AUDIT_OSV_URL": "http://127.0.0.1:1/v1/query"}


def run_audit(locks: Mapping[str, Path], runner: FakePipAudit, **options: Any) -> Any:
    options.setdefault("env", dict(OSV))
    return audit.audit_locks(locks, run=runner, **options)


# --- the module itself -----------------------------------------------------------------


def test_module_is_plain_python_without_template_syntax() -> None:
    text = (PROJECT_TEMPLATE / "tooling" / "audit.py").read_text(encoding="utf-8")
    assert "{{" not in text and "{%" not in text and "cookiecutter" not in text


# --- locks -----------------------------------------------------------------------------


def test_parse_lock_reads_names_versions_markers_and_hashes(tmp_path: Path) -> None:
    lock = write(tmp_path / "web.txt", LOCK_A + "foo @ https://x.invalid/foo.tar.gz\n-e ./src\n")
    entries = audit.parse_lock(lock)
    assert [(e.name, e.version, e.marker) for e in entries] == [
        ("colorama", "0.4.6", "sys_platform == 'win32'"),
        ("jinja2", "2.10", None),
        ("requests", "2.32.3", None),
        ("foo", None, None),
    ]
    assert entries[0].hashes == ("sha256:aaa", "sha256:bbb")


def test_committed_fixture_locks_parse_with_every_hash() -> None:
    entries = audit.parse_lock(LOCKS / "web.txt")
    assert {e.name for e in entries} >= {"jinja2", "markupsafe", "requests", "colorama"}
    assert all(e.version and e.hashes for e in entries)


def test_discover_locks_follows_the_tier_files(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements"
    write(requirements / "base.in", "requests\n")
    write(requirements / "web.in", "-r base.in\njinja2\n")
    write(requirements / "base.txt", LOCK_B)
    with pytest.raises(audit.AuditError) as missing:
        audit.discover_locks(requirements)
    assert missing.value.exit_code == 2
    assert "web.txt" in str(missing.value)
    write(requirements / "web.txt", LOCK_A)
    assert list(audit.discover_locks(requirements)) == ["base", "web"]
    assert list(audit.discover_locks(requirements, ["web"])) == ["web"]
    with pytest.raises(audit.AuditError, match="unknown tier"):
        audit.discover_locks(requirements, ["nope"])


# --- service ---------------------------------------------------------------------------


def test_service_defaults_to_pypi_and_honours_env_then_arguments() -> None:
    assert audit.resolve_service({}) == audit.Service("pypi")
    assert audit.resolve_service(OSV) == audit.Service("osv", OSV["PIP_AUDIT_OSV_URL"])
    explicit = audit.resolve_service(OSV, "osv", "http://127.0.0.1:9/v1/query")
    assert explicit.osv_url == "http://127.0.0.1:9/v1/query"
    assert audit.resolve_service({"PIP_AUDIT_VULNERABILITY_SERVICE": "osv"}).osv_url == (
        "https://api.osv.dev/v1/query"
    )
    assert audit.resolve_service(OSV, "pypi") == audit.Service("pypi")


@pytest.mark.parametrize(
    ("env", "service", "url", "message"),
    [
        ({"PIP_AUDIT_VULNERABILITY_SERVICE": "snyk"}, None, None, "unknown vulnerability service"),
        ({}, "pypi", "http://127.0.0.1:9/v1/query", "only applies to the osv service"),
        ({}, "osv", "ftp://example.invalid/", "not an http"),
    ],
)
def test_bad_service_settings_are_configuration_errors(
    env: dict[str, str], service: str | None, url: str | None, message: str
) -> None:
    with pytest.raises(audit.AuditError, match=message) as error:
        audit.resolve_service(env, service, url)
    assert error.value.exit_code == 2


# --- allow-list ------------------------------------------------------------------------

GOOD_ALLOWLIST = """\
[[ignore]]
id = "PYSEC-2019-217"
reason = "The sandbox is not used."
expires = 2030-01-31

[[ignore]]
id = "CVE-2020-28493"
package = "Jinja2"
reason = "urlize is never called."
expires = "2030-01-31"
"""


def test_allowlist_reads_entries_and_a_missing_file_allows_nothing(tmp_path: Path) -> None:
    entries = audit.load_allowlist(write(tmp_path / "a.toml", GOOD_ALLOWLIST))
    assert [(e.id, e.package, e.expires) for e in entries] == [
        ("PYSEC-2019-217", None, date(2030, 1, 31)),
        ("CVE-2020-28493", "Jinja2", date(2030, 1, 31)),
    ]
    assert audit.load_allowlist(tmp_path / "absent.toml") == []
    assert audit.load_allowlist(None) == []


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
            GOOD_ALLOWLIST
            + "\n[[ignore]]\nid = 'pysec-2019-217'\nreason = 'r'\nexpires = 2031-01-01\n",
            "#3 (pysec-2019-217) repeats [[ignore]] #1 (PYSEC-2019-217)",
        ),
    ],
)
def test_malformed_allowlist_entries_fail_naming_the_entry(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "audit-allowlist.toml", text)
    with pytest.raises(audit.AuditError) as error:
        audit.load_allowlist(path)
    assert error.value.exit_code == 2
    assert message in str(error.value)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


def finding(id: str = "PYSEC-2019-217", *aliases: str, package: str = "jinja2") -> Any:
    return audit.Finding(package, "2.10", ("web",), id, aliases, ("2.10.1",))


def allowance(id: str, expires: date, package: str | None = None, number: int = 1) -> Any:
    return audit.Allowance(id, "reason", expires, package, number)


def test_allowlist_matches_ids_or_aliases_until_the_expiry_day() -> None:
    entries = [
        allowance("CVE-2019-10906", date(2030, 1, 31)),
        allowance("GHSA-OTHER", date(2030, 1, 31), number=2),
        allowance("PYSEC-2019-217", date(2030, 1, 31), package="requests", number=3),
    ]
    found = [finding("PYSEC-2019-217", "CVE-2019-10906")]
    marked, stale, expired = audit.apply_allowlist(found, entries, date(2030, 1, 31))
    assert marked[0].allowed_by == entries[0] and not marked[0].fails
    assert [e.number for e in stale] == [2, 3]  # 3 is scoped to another package
    assert expired == []
    marked, stale, expired = audit.apply_allowlist(found, entries, date(2030, 2, 1))
    assert marked[0].fails and marked[0].expired_allowance == entries[0]
    assert [e.number for e in expired] == [1, 2, 3] and stale == []


# --- severity --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vector", "score", "level"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N", 8.1, "high"),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:N", 8.6, "high"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "medium"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", 5.3, "medium"),
        ("CVSS:3.1/AV:A/AC:H/PR:H/UI:N/S:U/C:H/I:N/A:N", 4.2, "medium"),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:L/I:N/A:N", 2.8, "low"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "none"),
    ],
)
def test_cvss3_base_scores_match_the_specification(vector: str, score: float, level: str) -> None:
    assert audit.cvss3_base_score(vector) == score
    assert audit.level_for_score(score) == level


def test_record_severity_prefers_the_vector_then_the_label() -> None:
    ghsa = json.loads((OSV_FIXTURES / "jinja2" / "GHSA-g3rq-g295-4j3m.json").read_text())
    assert audit.record_severity(ghsa) == audit.Severity(
        "medium", 5.3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"
    )
    assert audit.record_severity({"database_specific": {"severity": "CRITICAL"}}).level == (
        "critical"
    )
    assert (
        audit.record_severity({"severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N"}]}) is None
    )
    assert audit.record_severity({}) is None


def test_threshold_ignores_known_low_findings_but_never_unknown_ones() -> None:
    low = dataclasses.replace(finding("A-1"), severity=audit.Severity("medium", 5.3, "v"))
    high = dataclasses.replace(finding("A-2"), severity=audit.Severity("high", 8.1, "v"))
    unknown = finding("A-3")
    marked = audit.apply_threshold([low, high, unknown], "high")
    assert [f.fails for f in marked] == [False, True, True]
    assert audit.apply_threshold([low], None)[0].fails


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

    def fetch(url: str) -> dict[str, Any] | None:
        asked.append(url)
        return records.get(url.rsplit("/", 1)[-1])

    service = audit.Service("osv", "http://127.0.0.1:1/v1/query")
    found, notes = audit.add_severities([finding("PYSEC-1", "CVE-1", "GHSA-1")], service, fetch)
    assert found[0].severity.level == "critical" and notes == []
    assert asked[0] == "http://127.0.0.1:1/v1/vulns/PYSEC-1"
    found, notes = audit.add_severities([finding()], audit.Service("pypi"), fetch)
    assert found[0].severity is None and "every finding counts" in notes[0]


# --- audit_locks with a fake pip-audit -------------------------------------------------


def test_clean_locks_pass_with_one_strict_offline_run(two_tiers: dict[str, Path]) -> None:
    runner = FakePipAudit([dep("jinja2", "2.10"), dep("requests", "2.32.3")])
    result = run_audit(two_tiers, runner)
    assert result.exit_code == 0
    argv, _ = runner.calls[0]
    assert len(runner.calls) == 1
    for flag in ("--strict", "--disable-pip", "--require-hashes", "--progress-spinner"):
        assert flag in argv
    assert argv[argv.index("-s") + 1] == "osv"
    assert argv[argv.index("--osv-url") + 1] == OSV["PIP_AUDIT_OSV_URL"]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-r"] == [
        str(two_tiers["base"]),
        str(two_tiers["web"]),
    ]
    assert [u.package for u in result.not_applicable] == ["colorama"]
    assert result.summary().startswith("audit passed")


def test_findings_name_the_tiers_that_hold_the_package(two_tiers: dict[str, Path]) -> None:
    runner = FakePipAudit(
        [
            dep(
                "jinja2",
                "2.10",
                vuln("PYSEC-2019-217", "GHSA-462w-v97r-4m45", "CVE-2019-10906", fix=["2.10.1"]),
            ),
            dep("requests", "2.32.3", vuln("GHSA-9hjg-9r4m-mvj7", fix=["2.32.4"])),
        ]
    )
    result = run_audit(two_tiers, runner)
    assert result.exit_code == 1
    assert [(f.package, f.tiers, f.id) for f in result.failing] == [
        ("jinja2", ("web",), "PYSEC-2019-217"),
        ("requests", ("base", "web"), "GHSA-9hjg-9r4m-mvj7"),
    ]
    assert result.findings[0].aliases == ("CVE-2019-10906", "GHSA-462w-v97r-4m45")
    table = audit.render_table(result)
    for text in (
        "jinja2",
        "2.10",
        "web",
        "PYSEC-2019-217 (CVE-2019-10906, GHSA-462w-v97r-4m45)",
        "2.10.1",
        "base, web",
        "FAIL",
        "audit FAILED",
    ):
        assert text in table
    report = result.to_json()
    assert report["exit_code"] == 1
    assert report["findings"][0]["tiers"] == ["web"]
    json.dumps(report)  # serialisable as is


def test_allowlist_applies_then_expires_and_reports_stale_entries(
    two_tiers: dict[str, Path], tmp_path: Path
) -> None:
    allowlist = write(tmp_path / "audit-allowlist.toml", GOOD_ALLOWLIST)
    report = [
        dep("jinja2", "2.10", vuln("PYSEC-2019-217", "CVE-2019-10906")),
        dep("requests", "2.32.3"),
    ]
    result = run_audit(
        two_tiers, FakePipAudit(report), allowlist=allowlist, today=date(2030, 1, 31)
    )
    assert result.exit_code == 0
    assert [e.id for e in result.stale] == ["CVE-2020-28493"]
    assert "stale allow-list [[ignore]] #2 (CVE-2020-28493 for Jinja2)" in audit.render_table(
        result
    )
    result = run_audit(two_tiers, FakePipAudit(report), allowlist=allowlist, today=date(2030, 2, 1))
    assert result.exit_code == 1
    assert [e.number for e in result.expired] == [1, 2]
    table = audit.render_table(result)
    assert "EXPIRED allow-list [[ignore]] #1 (PYSEC-2019-217) on 2030-01-31" in table
    assert "FAIL (allowance expired 2030-01-31)" in table


def test_expired_entry_fails_even_when_nothing_matches_it(
    two_tiers: dict[str, Path], tmp_path: Path
) -> None:
    allowlist = write(tmp_path / "a.toml", "[[ignore]]\nid='X-1'\nreason='r'\nexpires=2020-01-01\n")
    report = [dep("jinja2", "2.10"), dep("requests", "2.32.3")]
    result = run_audit(two_tiers, FakePipAudit(report), allowlist=allowlist)
    assert result.exit_code == 1 and not result.findings
    assert "1 expired allow-list entry" in result.summary()


def test_bad_allowlist_stops_before_running_anything(
    two_tiers: dict[str, Path], tmp_path: Path
) -> None:
    runner = FakePipAudit([])
    with pytest.raises(audit.AuditError) as error:
        run_audit(two_tiers, runner, allowlist=write(tmp_path / "a.toml", "[[ignore]]\nid='X-1'\n"))
    assert error.value.exit_code == 2 and runner.calls == []


def test_severity_threshold_uses_the_service_records(two_tiers: dict[str, Path]) -> None:
    report = [dep("jinja2", "2.10", vuln("GHSA-g3rq-g295-4j3m"), vuln("PYSEC-2019-217"))]
    records = {
        "GHSA-g3rq-g295-4j3m": json.loads(
            (OSV_FIXTURES / "jinja2" / "GHSA-g3rq-g295-4j3m.json").read_text()
        )
    }

    def fetch(url: str) -> dict[str, Any] | None:
        return records.get(url.rsplit("/", 1)[-1])

    result = run_audit(two_tiers, FakePipAudit(report), min_severity="high", fetch=fetch)
    assert [(f.id, f.fails) for f in result.findings] == [
        ("GHSA-g3rq-g295-4j3m", False),
        ("PYSEC-2019-217", True),  # no severity known: it counts
    ]
    assert "below threshold (medium)" in audit.render_table(result)
    with pytest.raises(audit.AuditError, match="unknown severity"):
        run_audit(two_tiers, FakePipAudit(report), min_severity="severe")


def test_a_lock_entry_missing_from_the_report_is_unchecked(two_tiers: dict[str, Path]) -> None:
    result = run_audit(two_tiers, FakePipAudit([dep("requests", "2.32.3")]))
    assert result.exit_code == 1
    assert [(u.package, u.tiers) for u in result.unchecked] == [("jinja2", ("web",))]
    assert "NOT CHECKED jinja2 2.10 [web]" in audit.render_table(result)


def test_skipped_dependencies_in_the_report_are_unchecked(two_tiers: dict[str, Path]) -> None:
    report = [
        dep("requests", "2.32.3"),
        dep("jinja2", "2.10"),
        {"name": "x", "skip_reason": "gone"},
    ]
    result = run_audit(two_tiers, FakePipAudit(report))
    assert result.exit_code == 1 and result.unchecked[0].reason == "gone"


def test_tiers_pinning_different_versions_are_audited_one_by_one(tmp_path: Path) -> None:
    locks = {
        "base": write(tmp_path / "base.txt", "requests==2.32.3 --hash=sha256:a\n"),
        "legacy": write(tmp_path / "legacy.txt", "requests==2.19.0 --hash=sha256:b\n"),
    }
    runner = FakePipAudit(
        [dep("requests", "2.32.3")], [dep("requests", "2.19.0", vuln("PYSEC-2018-28"))]
    )
    result = run_audit(locks, runner)
    assert len(runner.calls) == 2
    assert [(f.package, f.version, f.tiers) for f in result.failing] == [
        ("requests", "2.19.0", ("legacy",))
    ]
    assert "audited per tier" in result.notes[0]


CONNECTION_REFUSED = """\
WARNING:pip_audit._cli:The --require-hashes flag with --service osv only enforces hash presence
Traceback (most recent call last):
  File "pip_audit/_service/osv.py", line 70, in query
requests.exceptions.ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=9): Max retries \
exceeded with url: /v1/query (Caused by NewConnectionError("Failed to establish a new connection: \
[Errno 111] Connection refused"))
"""
SERVICE_500 = """\
requests.exceptions.HTTPError: 500 Server Error: Internal Server Error for url: http://x/v1/query

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
pip_audit._service.interface.ServiceError
"""
CONNECT_TIMEOUT = """\
ERROR:pip_audit._cli:Could not connect to OSV's vulnerability feed
ERROR:pip_audit._cli:Tip: your network may be blocking this service. Try another service \
with `-s SERVICE`
"""


@pytest.mark.parametrize("stderr", [CONNECTION_REFUSED, SERVICE_500, CONNECT_TIMEOUT])
def test_service_trouble_is_exit_3_and_never_claims_the_locks_are_clean(
    two_tiers: dict[str, Path], stderr: str
) -> None:
    with pytest.raises(audit.AuditError) as error:
        run_audit(two_tiers, FakePipAudit(returncode=1, stderr=stderr))
    message = str(error.value)
    assert error.value.exit_code == 3
    assert "unreachable or failing, so nothing was checked" in message
    assert "osv at http://127.0.0.1:1/v1/query" in message
    assert NO_KNOWN not in message.lower() and "\n" not in message


@pytest.mark.parametrize(
    ("stderr", "returncode", "exit_code", "text"),
    [
        (
            "ERROR:pip_audit._cli:requirement foo==1.0 does not contain a hash\n",
            1,
            2,
            "rejected the locks",
        ),
        ("pip-audit: error: argument -s: invalid choice\n", 2, 2, "rejected the locks"),
        (
            "ERROR:pip_audit._cli:foo: URL requirements cannot be pinned to a specific "
            "package version\n",
            1,
            1,
            "could not check a package, which fails the audit: foo: URL requirements",
        ),
        ("Traceback (most recent call last):\nKeyError: 'vulns'\n", 1, 1, "KeyError: 'vulns'"),
    ],
)
def test_other_pip_audit_failures_are_explained(
    two_tiers: dict[str, Path], stderr: str, returncode: int, exit_code: int, text: str
) -> None:
    with pytest.raises(audit.AuditError) as error:
        run_audit(two_tiers, FakePipAudit(returncode=returncode, stderr=stderr))
    assert error.value.exit_code == exit_code
    assert text in str(error.value)


def test_missing_pip_audit_is_a_configuration_error(two_tiers: dict[str, Path]) -> None:
    with pytest.raises(audit.AuditError, match="not installed") as error:
        audit.audit_locks(two_tiers, env=dict(OSV), pip_audit=["/nonexistent/pip-audit"])
    assert error.value.exit_code == 2


def test_report_is_written_atomically_with_sorted_keys(tmp_path: Path) -> None:
    path = audit.write_report({"b": 1, "a": [2]}, tmp_path / "reports" / "audit.json")
    assert path.read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'
    assert list(path.parent.iterdir()) == [path]


# --- safety (fake runner) --------------------------------------------------------------


def test_safety_plan_prefers_a_key_then_a_local_database(tmp_path: Path) -> None:
    assert audit.plan_safety({"SAFETY_API_KEY": "k"}, SAFETY_DB).mode == "scan"
    plan = audit.plan_safety({}, SAFETY_DB)
    assert (plan.mode, plan.requirement, plan.db) == ("check", "safety==2.3.5", SAFETY_DB)
    assert audit.plan_safety({"SAFETY_DB": str(SAFETY_DB)}).mode == "check"
    assert audit.plan_safety({}).mode == "skip"
    with pytest.raises(audit.AuditError, match=r"lacks insecure\.json, insecure_full\.json"):
        audit.plan_safety({}, tmp_path)


def test_safety_skip_says_why_and_can_be_made_a_failure(two_tiers: dict[str, Path]) -> None:
    plan = audit.plan_safety({})
    result = audit.run_safety(two_tiers, plan, env={})
    assert result.exit_code == 0
    assert result.message.startswith("safety skipped: no SAFETY_API_KEY")
    with pytest.raises(audit.AuditError, match=r"safety skipped: .* required") as error:
        audit.run_safety(two_tiers, plan, require=True, env={})
    assert error.value.exit_code == 2


SAFETY_REPORT = {
    "vulnerabilities": [
        {
            "vulnerability_id": "90001",
            "package_name": "jinja2",
            "analyzed_version": "2.10",
            "CVE": "CVE-2019-10906",
            "fixed_versions": ["2.10.1"],
            "advisory": "sandbox escape",
            "severity": {"cvssv3": {"base_score": 8.6}},
        }
    ]
}


def test_safety_check_runs_offline_without_the_api_key(two_tiers: dict[str, Path]) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []

    def runner(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        calls.append((list(argv), dict(env)))
        return subprocess.CompletedProcess(argv, 64, json.dumps(SAFETY_REPORT), "")

    plan = audit.plan_safety({}, SAFETY_DB)
    result = audit.run_safety(two_tiers, plan, env={"SAFETY_API_KEY": "k"}, run=runner)
    argv, env = calls[0]
    assert argv[:4] == ["safety", "check", "--db", str(SAFETY_DB)] and argv[-1] == "--json"
    assert "SAFETY_API_KEY" not in env  # 2.3.5 would go online with it
    assert result.exit_code == 1
    only = result.findings[0]
    assert (only.package, only.tiers, only.id, only.severity.level) == (
        "jinja2",
        ("web",),
        "90001",
        "high",
    )
    assert only.aliases == ("pyup.io-90001", "CVE-2019-10906")


@pytest.mark.parametrize(("code", "exit_code"), [(65, 2), (66, 3), (67, 2), (68, 3), (69, 2)])
def test_safety_error_codes_map_to_ours(
    two_tiers: dict[str, Path], code: int, exit_code: int
) -> None:
    def runner(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, code, "", "boom")

    with pytest.raises(audit.AuditError) as error:
        audit.run_safety(two_tiers, audit.plan_safety({}, SAFETY_DB), env={}, run=runner)
    assert error.value.exit_code == exit_code


# --- SBOM checks (no tool) -------------------------------------------------------------


def test_sbom_problems_name_missing_packages_and_hashes(tmp_path: Path) -> None:
    lock = write(tmp_path / "web.txt", LOCK_A)
    sbom = {
        "components": [
            {
                "name": "Jinja2",
                "version": "2.10",
                "externalReferences": [{"hashes": [{"alg": "SHA-256", "content": "ccc"}]}],
            },
            {
                "name": "colorama",
                "version": "0.4.6",
                "externalReferences": [{"hashes": [{"alg": "SHA-256", "content": "aaa"}]}],
            },
        ]
    }
    path = write(tmp_path / "web.cdx.json", json.dumps(sbom))
    assert audit.sbom_problems(lock, path) == [
        "colorama==0.4.6 lacks 1 hash(es)",
        "requests==2.32.3 is missing",
    ]


def test_sbom_command_line_is_reproducible_json() -> None:
    argv = audit.sbom_argv(Path("requirements/base.txt"), Path("sbom/base.cdx.json"))
    assert argv == [
        "cyclonedx-py",
        "requirements",
        "requirements/base.txt",
        "--output-reproducible",
        "--spec-version",
        "1.6",
        "--output-format",
        "JSON",
        "-o",
        "sbom/base.cdx.json",
    ]


# --- the loopback OSV server -----------------------------------------------------------


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


# --- real tools (slow) -----------------------------------------------------------------


def tool_env() -> dict[str, str]:
    """The environment the tools run in: no PIP_AUDIT_* leaking in, loopback not proxied."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_AUDIT_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


PIP_AUDIT = (sys.executable, "-m", "pip_audit")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder holding the committed tiers and locks."""
    shutil.copytree(LOCKS, tmp_path / "requirements", ignore=shutil.ignore_patterns("*.md"))
    return tmp_path


def real_audit(project: Path, tiers: Sequence[str], url: str, **options: Any) -> Any:
    pytest.importorskip("pip_audit")
    locks = {tier: project / "requirements" / f"{tier}.txt" for tier in tiers}
    return audit.audit_locks(
        locks, service="osv", osv_url=url, env=tool_env(), pip_audit=PIP_AUDIT, **options
    )


@pytest.mark.slow
def test_real_pip_audit_passes_a_clean_lock(project: Path) -> None:
    with OSVServer([OSV_FIXTURES, SHARED_OSV]) as server:
        result = real_audit(project, ["base"], server.url)
    assert result.exit_code == 0, audit.render_table(result)
    assert result.packages == 6 and not result.findings and not result.unchecked
    assert [u.package for u in result.not_applicable] == ["colorama"]
    assert {path for _, path, _ in server.requests} == {"/v1/query"}  # pip-audit never batches


@pytest.mark.slow
def test_real_pip_audit_fails_jinja2_in_the_web_tier_only(project: Path) -> None:
    with OSVServer([OSV_FIXTURES, SHARED_OSV]) as server:
        result = real_audit(project, ["base", "web"], server.url)
    assert result.exit_code == 1
    failing = {f.id: f for f in result.failing}
    assert "PYSEC-2019-217" in failing
    jinja = failing["PYSEC-2019-217"]
    assert (jinja.package, jinja.version, jinja.tiers) == ("jinja2", "2.10", ("web",))
    assert set(jinja.aliases) >= {"CVE-2019-10906", "GHSA-462w-v97r-4m45"}
    assert jinja.fix_versions == ("2.10.1",)
    assert {f.package for f in result.failing} == {"jinja2"}
    assert "PYSEC-2019-217" in audit.render_table(result)


@pytest.mark.slow
def test_real_allowlist_passes_until_expiry_then_fails(project: Path) -> None:
    allowlist = write(
        project / "audit-allowlist.toml",
        """\
[[ignore]]
id = "CVE-2019-10906"   # an alias of PYSEC-2019-217
reason = "Templates come from our own repository, never from users."
expires = 2030-01-31

[[ignore]]
id = "GHSA-g3rq-g295-4j3m"
package = "jinja2"
reason = "urlize is not used."
expires = 2030-01-31
""",
    )
    with OSVServer([OSV_FIXTURES]) as server:
        before = real_audit(
            project, ["web"], server.url, allowlist=allowlist, today=date(2030, 1, 31)
        )
        after = real_audit(
            project, ["web"], server.url, allowlist=allowlist, today=date(2030, 2, 1)
        )
    assert before.exit_code == 0, audit.render_table(before)
    assert all(f.allowed_by for f in before.findings) and len(before.findings) == 2
    assert after.exit_code == 1
    assert [e.number for e in after.expired] == [1, 2]
    assert "EXPIRED allow-list [[ignore]] #1 (CVE-2019-10906)" in audit.render_table(after)


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["down", "http-500"])
def test_real_service_trouble_is_exit_3(project: Path, failure: str) -> None:
    with OSVServer([OSV_FIXTURES], fail=failure == "http-500") as server:
        url = server.url
        if failure == "down":
            server.stop()
        with pytest.raises(audit.AuditError) as error:
            real_audit(project, ["base"], url, timeout=5)
    assert error.value.exit_code == 3
    assert "unreachable or failing, so nothing was checked" in str(error.value)
    assert NO_KNOWN not in str(error.value).lower()


@pytest.mark.slow
def test_real_severity_threshold_on_tiers_that_disagree(project: Path) -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        result = real_audit(project, ["base", "legacy"], server.url, min_severity="high")
    by_id = {f.id: f for f in result.findings}
    assert by_id["PYSEC-2023-192"].severity.level == "high" and by_id["PYSEC-2023-192"].fails
    assert by_id["PYSEC-2023-212"].below_threshold and not by_id["PYSEC-2023-212"].fails
    assert by_id["PYSEC-2018-28"].severity is None and by_id["PYSEC-2018-28"].fails
    assert by_id["PYSEC-2018-28"].tiers == ("legacy",)
    assert "audited per tier" in result.notes[0]
    assert result.exit_code == 1


@pytest.mark.slow
def test_cli_writes_the_report_and_exits_with_the_verdict(project: Path) -> None:
    pytest.importorskip("pip_audit")
    command = [sys.executable, "-m", "tooling.audit", "pip-audit", "--tier=base", "--tier=web"]
    env = {
        **tool_env(),
        "PYTHONPATH": str(PROJECT_TEMPLATE),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PIP_AUDIT_VULNERABILITY_SERVICE": "osv",
    }
    with OSVServer([OSV_FIXTURES]) as server:
        env["PIP_AUDIT_OSV_URL"] = server.url
        found = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert found.returncode == 1, found.stderr
    assert "PYSEC-2019-217 (CVE-2019-10906, GHSA-462w-v97r-4m45)" in found.stdout
    report = json.loads((project / "reports" / "audit.json").read_text())
    assert report["service"] == f"osv at {env['PIP_AUDIT_OSV_URL']}"
    assert {f["id"] for f in report["findings"]} == {"PYSEC-2019-217", "CVE-2020-28493"}
    down = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert down.returncode == 3
    assert down.stderr.startswith("error: vulnerability service osv at ")
    assert NO_KNOWN not in (down.stdout + down.stderr).lower()
    report = json.loads((project / "reports" / "audit.json").read_text())
    assert report["exit_code"] == 3 and "findings" not in report


@pytest.mark.slow
def test_sbom_is_byte_identical_and_lists_every_package_with_hashes(project: Path) -> None:
    pytest.importorskip("cyclonedx_py")
    locks = {"web": project / "requirements" / "web.txt"}  # web holds all of base too
    command = (sys.executable, "-m", "cyclonedx_py")
    first = audit.write_sboms(locks, project / "sbom1", env=tool_env(), command=command)
    second = audit.write_sboms(locks, project / "sbom2", env=tool_env(), command=command)
    for tier in locks:
        assert first[tier].name == f"{tier}.cdx.json"
        assert first[tier].read_bytes() == second[tier].read_bytes()
        assert audit.sbom_problems(locks[tier], first[tier]) == []
    web = json.loads(first["web"].read_text())
    names = {c["name"] for c in web["components"]}
    assert names == {e.name for e in audit.parse_lock(locks["web"])}
    assert "serialNumber" not in web and "timestamp" not in web["metadata"]
    assert [p.name for p in (project / "sbom1").iterdir()] == ["web.cdx.json"]


@pytest.fixture(scope="session")
def safety_235(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """safety 2.3.5 in its own virtual environment (its pins clash with pip-audit).

    Kept in pytest's cache folder between runs when the cache is enabled.
    """
    cache = getattr(request.config, "cache", None)
    name = "safety-2.3.5-venv"
    venv = Path(cache.mkdir(name)) if cache is not None else tmp_path_factory.mktemp(name)
    safety = venv / "bin" / "safety"
    if not safety.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "safety==2.3.5"],
            check=True,
        )
    return safety


@pytest.mark.slow
@pytest.mark.network  # installs safety 2.3.5 from the package index (once, then cached)
def test_real_safety_235_reads_the_fixture_database(project: Path, safety_235: Path) -> None:
    locks = {t: project / "requirements" / f"{t}.txt" for t in ("base", "web")}
    plan = audit.plan_safety({}, SAFETY_DB)
    env = {
        **tool_env(),
        "SAFETY_API_KEY": "must-not-be-used",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }  # prove offline
    result = audit.run_safety(locks, plan, env=env, command=[str(safety_235)])
    assert result.exit_code == 1, result.message
    assert [(f.package, f.tiers, f.id) for f in result.findings] == [("jinja2", ("web",), "90001")]
    assert "CVE-2019-10906" in result.findings[0].aliases
    allowlist = write(
        project / "audit-allowlist.toml",
        "[[ignore]]\nid = 'CVE-2019-10906'\nreason = 'No user templates.'\nexpires = 2099-01-01\n",
    )
    allowed = audit.run_safety(locks, plan, env=env, command=[str(safety_235)], allowlist=allowlist)
    assert allowed.exit_code == 0
    clean = audit.run_safety({"base": locks["base"]}, plan, env=env, command=[str(safety_235)])
    assert clean.exit_code == 0 and clean.findings == []


def test_sboms_are_all_or_nothing(tmp_path: Path) -> None:
    locks = {
        "base": write(tmp_path / "base.txt", LOCK_B),
        "web": write(tmp_path / "web.txt", LOCK_A),
    }
    good = {
        "components": [
            {
                "name": "requests",
                "version": "2.32.3",
                "externalReferences": [{"hashes": [{"content": "ddd"}]}],
            }
        ]
    }

    def runner(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        if "base.txt" in argv[2]:
            write(Path(argv[argv.index("-o") + 1]), json.dumps(good))
            return subprocess.CompletedProcess(argv, 0, "", "")
        return subprocess.CompletedProcess(argv, 1, "", "cannot parse web.txt")

    with pytest.raises(audit.AuditError, match=r"cyclonedx-py failed for .*web\.txt: cannot parse"):
        audit.write_sboms(locks, tmp_path / "sbom", env={}, run=runner)
    assert list((tmp_path / "sbom").iterdir()) == []
    written = audit.write_sboms({"base": locks["base"]}, tmp_path / "sbom", env={}, run=runner)
    assert written == {"base": tmp_path / "sbom" / "base.cdx.json"}
    assert json.loads(written["base"].read_text()) == good
