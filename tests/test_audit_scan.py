"""tooling.audit.scan and the command line: pip-audit over every pinned version.

The fast tests use a fake pip-audit; the slow ones run the real pip-audit
against committed hashed locks and the loopback OSV server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.audit_support import (
    LOCKS,
    NO_KNOWN,
    OSV_FIXTURES,
    PROJECT_TEMPLATE,
    SHARED_OSV,
    FakePipAudit,
    load,
    pinned,
    tool_env,
    vuln,
    with_pylocks,
    write,
    write_lock,
)
from tests.osv_server import OSVServer

scan = load("audit.scan")
service = load("audit.service")
locks = load("audit.locks")
policy = load("audit.policy")
report = load("audit.report")
audit = load("audit")


def pins(*specs: str) -> list[Any]:
    return [locks.PinnedVersion(*s.split("=="), ("base",), ("",)) for s in specs]


def test_pip_audit_reads_the_pylocks_without_installing_or_stopping_early() -> None:
    osv = service.Service("osv", "http://alice:S3CRET@127.0.0.1:9/v1/query?token=T0KEN")
    argv = scan.pip_audit_argv(Path("locks"), Path("out.json"), osv, Path("t.json"), 5)
    # pip-audit runs guarded, with the Python that runs the audit, found without a PATH.
    assert argv[:6] == [sys.executable, "-m", "tooling.audit.guarded", "t.json", "osv", "--"]
    pip_audit = argv[6:]
    assert pip_audit[:2] == ["--locked", "locks"]
    assert "--strict" not in pip_audit  # strictness is applied to the whole report instead
    assert pip_audit[pip_audit.index("-s") + 1] == "osv"
    assert pip_audit[pip_audit.index("--timeout") + 1] == "5"
    assert pip_audit[pip_audit.index("-f") + 1] == "json"
    # The URL and its credentials travel in the environment, never on a command line.
    assert not [arg for arg in argv if "S3CRET" in arg or "T0KEN" in arg]
    env = scan.pip_audit_env({"PIP_AUDIT_FORMAT": "columns", "PATH": "/bin"}, osv)
    assert env["PIP_AUDIT_OSV_URL"] == osv.osv_url and "PIP_AUDIT_FORMAT" not in env
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(PROJECT_TEMPLATE.resolve())


def test_a_report_for_another_version_does_not_count_as_checked() -> None:
    layer = pins("rsa==4.0")
    outcome = scan.outcomes_of(
        layer, {"dependencies": [{"name": "rsa", "version": "4.9", "vulns": []}]}
    )
    assert outcome == [scan.Outcome(layer[0], skipped=scan.MISSING)]
    assert scan.outcomes_of(layer, {"dependencies": [{"name": "RSA", "version": "4.0.0"}]})[
        0
    ].checked


def test_two_versions_of_one_name_are_one_pip_audit_run_from_the_fewest_pylocks(
    tmp_path: Path,
) -> None:
    hunter = write_lock(
        tmp_path / "requirements" / "hunter.txt",
        "numpy==2.2.6 ; python_version < '3.12' \\\n    --hash=sha256:aa\n"
        "numpy==2.3.1 ; python_version >= '3.12' \\\n    --hash=sha256:bb\n"
        "rsa==4.9 \\\n    --hash=sha256:cc\n",
    )
    base = write_lock(tmp_path / "requirements" / "base.txt", "rsa==4.9 \\\n    --hash=sha256:cc\n")
    found = with_pylocks({"base": base, "hunter": hunter})
    runner = FakePipAudit(vulns={("numpy", "2.2.6"): [vuln("GHSA-x", fix=["2.2.7"])]})
    outcomes = scan.scan(
        locks.pinned_versions(found), locks.pylocks_of(found), osv_service(), env={}, run=runner
    )
    # hunter's pylock holds every version: base's adds nothing, so it is not read (nor asked twice).
    assert runner.inputs == [["numpy==2.2.6", "numpy==2.3.1", "rsa==4.9"]]
    assert [(o.pin.version, [a.id for a in o.advisories]) for o in outcomes] == [
        ("2.2.6", ["GHSA-x"]),
        ("2.3.1", []),
        ("4.9", []),
    ]


def osv_service() -> Any:
    return service.Service("osv", "http://127.0.0.1:9/v1/query")


def test_other_pip_audit_failures_are_one_line_from_its_own_message(tmp_path: Path) -> None:
    stderr = (
        "WARNING:pip_audit._cli:something\n"
        "ERROR:pip_audit._cli:requirement file in.txt contains invalid specifier at line 1\n"
    )
    osv = service.Service("osv", "http://127.0.0.1:9/v1/query")
    with pytest.raises(audit.AuditError) as error:
        scan.scan(
            *pinned(tmp_path, "rsa==4.0"),
            osv,
            env={},
            run=FakePipAudit(returncode=1, stderr=stderr),
        )
    assert error.value.exit_code == 1
    assert str(error.value) == (
        "pip-audit failed (exit 1): requirement file in.txt contains invalid specifier at line 1"
    )


@pytest.mark.parametrize(
    "crash",
    [
        "TypeError: 'NoneType' object is not iterable",
        "KeyError: 'vulns'",
        "packaging.version.InvalidVersion: Invalid version: '2019-09-12'",
    ],
)
def test_a_pip_audit_crash_is_one_line_without_its_traceback(crash: str, tmp_path: Path) -> None:
    stderr = (
        "Traceback (most recent call last):\n"
        '  File "/venv/lib/pip_audit/_service/osv.py", line 90, in query\n'
        '    for vuln in response_json["vulns"]:\n'
        f"{crash}\n"
    )
    osv = service.Service("osv", "http://127.0.0.1:9/v1/query")
    with pytest.raises(audit.AuditError) as error:
        scan.scan(
            *pinned(tmp_path, "rsa==4.0"),
            osv,
            env={},
            run=FakePipAudit(returncode=1, stderr=stderr),
        )
    name = crash.partition(":")[0].rpartition(".")[2]
    assert str(error.value) == (
        f"pip-audit stopped with an error of its own ({name}), so nothing was checked; "
        "run it by hand to see where"
    )
    assert error.value.exit_code == 1
    assert crash.partition(":")[2].strip() not in str(error.value)


def test_a_missing_pip_audit_is_named_with_the_python_it_was_looked_for_beside(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delitem(sys.modules, "pip_audit", raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "-packages" not in p])
    osv = service.Service("osv", "http://127.0.0.1:9/v1/query")
    with pytest.raises(audit.AuditError) as error:
        scan.scan(*pinned(tmp_path, "rsa==4.0"), osv, env={}, run=FakePipAudit())
    assert str(error.value) == (
        f"pip-audit is not installed beside {sys.executable}; "
        "run the check through its nox session (nox -s audit)"
    )
    assert error.value.exit_code == 2


def test_tools_are_found_beside_the_python_running_the_audit_without_a_path() -> None:
    found = audit.run_command(["pip-audit", "--version"], {"PATH": "/nonexistent"})
    assert found.returncode == 0 and "pip-audit" in found.stdout
    with pytest.raises(audit.AuditError, match=r"^no-such-tool is not installed here"):
        audit.run_command(["no-such-tool"], {"PATH": "/nonexistent"})


# --- the real pip-audit (slow) ---------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder holding the committed tiers and locks."""
    shutil.copytree(LOCKS, tmp_path / "requirements", ignore=shutil.ignore_patterns("*.md"))
    return tmp_path


def real_audit(project: Path, tiers: Sequence[str], url: str, **options: Any) -> Any:
    pytest.importorskip("pip_audit")
    found = {tier: project / "requirements" / f"{tier}.txt" for tier in tiers}
    return policy.audit_locks(found, service="osv", osv_url=url, env=tool_env(), **options)


@pytest.mark.slow
def test_real_both_marker_gated_versions_are_audited(project: Path) -> None:
    with OSVServer([OSV_FIXTURES, SHARED_OSV]) as server:
        result = real_audit(project, ["markers"], server.url)
    assert result.exit_code == 1, report.render_table(result)
    rsa = {(f.version, f.id) for f in result.failing if f.package == "rsa"}
    assert ("4.0", "PYSEC-2020-99") in rsa
    assert {version for version, _ in rsa} == {"4.0"}  # 4.9 is checked and clean
    assert {(p.name, p.version) for p in result.pins} == {
        ("pyasn1", "0.6.5"),
        ("rsa", "4.0"),
        ("rsa", "4.9"),
    }
    assert result.checked == 3 and not result.unchecked
    table = report.render_table(result)
    row = next(line for line in table.splitlines() if "PYSEC-2020-99" in line)
    assert row.split()[:3] == ["rsa", "4.0", "markers"]
    assert "3 pinned versions of 2 packages in 1 lock, 3 checked" in table


@pytest.mark.slow
def test_real_clean_lock_passes_and_windows_only_pins_are_checked(project: Path) -> None:
    with OSVServer([OSV_FIXTURES, SHARED_OSV]) as server:
        result = real_audit(project, ["base"], server.url)
    assert result.exit_code == 0, report.render_table(result)
    assert len(result.pins) == result.checked == 7 and not result.findings
    assert "colorama" in {p.name for p in result.pins}
    assert {path for _, path, _ in server.requests} == {"/v1/query"}  # pip-audit never batches


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
            project, ["web"], server.url, allowlist_path=allowlist, today=date(2030, 1, 31)
        )
        after = real_audit(
            project, ["web"], server.url, allowlist_path=allowlist, today=date(2030, 2, 1)
        )
    assert before.exit_code == 0, report.render_table(before)
    assert all(f.allowed_by for f in before.findings) and len(before.findings) == 2
    assert after.exit_code == 1
    assert [e.number for e in after.expired] == [1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["down", "http-500"])
def test_real_service_trouble_is_exit_3_in_one_line(project: Path, failure: str) -> None:
    with OSVServer([OSV_FIXTURES], fail=failure == "http-500") as server:
        url = server.url
        if failure == "down":
            server.stop()
        with pytest.raises(audit.AuditError) as error:
            real_audit(project, ["base"], url, timeout=5)
    message = str(error.value)
    assert error.value.exit_code == 3
    what = "is unreachable: connection refused" if failure == "down" else "answered HTTP 500"
    assert message == f"the osv vulnerability service {what} ({url}), so nothing was checked"
    assert NO_KNOWN not in message.lower()


def write_cvss4_lock(project: Path) -> None:
    """requirements/extra.txt, pinning the fixtures' package whose advisory has a CVSS 4 vector."""
    write_lock(
        project / "requirements" / "extra.txt",
        "lockstep-cvss4-example==1.0 \\\n    --hash=sha256:00\n",
    )


@pytest.mark.slow
def test_real_severity_threshold_with_cvss3_and_cvss4_vectors(project: Path) -> None:
    write_cvss4_lock(project)
    with OSVServer([OSV_FIXTURES]) as server:
        result = real_audit(project, ["base", "legacy", "extra"], server.url, min_severity="high")
    by_id = {f.id: f for f in result.findings}
    cvss4 = by_id["LOCKSTEP-TEST-2026-4"]
    assert (cvss4.severity.level, cvss4.severity.score, cvss4.fails) == ("critical", 9.3, True)
    assert by_id["PYSEC-2023-192"].severity.level == "high" and by_id["PYSEC-2023-192"].fails
    assert by_id["PYSEC-2023-212"].below_threshold and not by_id["PYSEC-2023-212"].fails
    assert by_id["PYSEC-2018-28"].severity is None and by_id["PYSEC-2018-28"].fails
    assert by_id["PYSEC-2018-28"].tiers == ("legacy",)
    assert "critical 9.3" in report.render_table(result)
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
    written = json.loads((project / "reports" / "audit.json").read_text())
    assert written["service"] == f"osv at {env['PIP_AUDIT_OSV_URL']}"
    assert {f["id"] for f in written["findings"]} == {"PYSEC-2019-217", "CVE-2020-28493"}
    down = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert down.returncode == 3
    assert down.stderr == (
        f"error: the osv vulnerability service is unreachable: connection refused "
        f"({env['PIP_AUDIT_OSV_URL']}), so nothing was checked\n"
    )
    assert NO_KNOWN not in (down.stdout + down.stderr).lower()
    written = json.loads((project / "reports" / "audit.json").read_text())
    assert written["exit_code"] == 3 and "findings" not in written


# --- credentials: sent to the service, never shown or written (slow) -----------------------

SECRETS = ("alice", "S3CRET", "T0KEN", "F4AG")


def with_secrets(url: str, how: str) -> str:
    """`url` carrying a secret the way a user would put it there."""
    if how == "user info":
        return url.replace("http://", "http://alice:S3CRET@")
    if how == "query token":
        return f"{url}?token=T0KEN"
    return url.replace("http://", "http://alice:S3CRET@") + "?key=T0KEN#F4AG"


def run_cli(project: Path, *options: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tooling.audit", "pip-audit", *options]
    env = {**tool_env(), "PYTHONPATH": str(PROJECT_TEMPLATE), "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["user info", "query token", "all of them"])
@pytest.mark.parametrize("given", ["--osv-url", "PIP_AUDIT_OSV_URL"])
def test_cli_sends_credentials_but_never_shows_or_writes_them(
    project: Path, how: str, given: str
) -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        url = with_secrets(server.url, how)
        options = ["--tier=base", "--service", "osv"]
        env = {"PIP_AUDIT_OSV_URL": url} if given == "PIP_AUDIT_OSV_URL" else {}
        if given == "--osv-url":
            options += ["--osv-url", url]
        passed = run_cli(project, *options, "--min-severity", "high", env=env)
        asked = [path for _, path, _ in server.requests]
        sent = set(server.authorizations)
        shown = server.url
        server.stop()
        refused = run_cli(project, *options, env=env)
    assert passed.returncode == 0, passed.stderr
    assert "audit passed: no failing vulnerabilities (7 pinned versions" in passed.stdout
    assert f"with pip-audit via osv at {shown})" in passed.stdout
    assert refused.returncode == 3
    assert refused.stderr == (
        f"error: the osv vulnerability service is unreachable: connection refused ({shown}), "
        "so nothing was checked\n"
    )
    report = (project / "reports" / "audit.json").read_text()
    for text in (passed.stdout, passed.stderr, refused.stdout, refused.stderr, report):
        assert not [secret for secret in SECRETS if secret in text], text
    # ... and yet the service was asked with them
    assert ("?token=T0KEN" in asked[0] or "?key=T0KEN" in asked[0]) == (how != "user info")
    assert sent == ({"Basic YWxpY2U6UzNDUkVU"} if how != "query token" else {None})


@pytest.mark.slow
def test_real_severity_lookup_uses_the_credentials_too(project: Path) -> None:
    write_cvss4_lock(project)
    with OSVServer([OSV_FIXTURES]) as server:
        shown = server.url
        result = real_audit(
            project, ["extra"], with_secrets(shown, "all of them"), min_severity="high"
        )
    assert [(f.id, f.severity.level) for f in result.findings] == [
        ("LOCKSTEP-TEST-2026-4", "critical")
    ]
    assert ("GET", "/v1/vulns/LOCKSTEP-TEST-2026-4?key=T0KEN", None) in server.requests
    assert set(server.authorizations) == {"Basic YWxpY2U6UzNDUkVU"}
    assert result.service == f"osv at {shown}"


@pytest.mark.slow
@pytest.mark.parametrize("cause", ["no DNS answer", "refused", "TLS", "timeout", "HTTP 500"])
def test_real_unreachable_service_is_diagnosed_by_cause(project: Path, cause: str) -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        url = server.url
        if cause == "no DNS answer":
            url = "http://osv.no-such-host.invalid/v1/query"
        elif cause == "refused":
            server.stop()
        elif cause == "TLS":
            url = url.replace("http://", "https://")
        elif cause == "timeout":
            server.delay = 3
        else:
            server.junk = None
            server.fail = True
        with pytest.raises(audit.AuditError) as error:
            real_audit(project, ["base"], with_secrets(url, "all of them"), timeout=1)
        server.delay = 0
    expected = {
        "no DNS answer": "is unreachable: its host name has no DNS answer",
        "refused": "is unreachable: connection refused",
        "TLS": "is unreachable: TLS failed (wrong version number)",
        "timeout": "did not answer within 1 s",
        "HTTP 500": "answered HTTP 500",
    }[cause]
    assert error.value.exit_code == 3
    assert str(error.value) == (
        f"the osv vulnerability service {expected} ({url}), so nothing was checked"
    )


@pytest.mark.slow
def test_cli_finds_pip_audit_beside_its_python_without_a_path(project: Path) -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        options = ["--tier=base", "--service", "osv", "--osv-url", server.url]
        found = run_cli(project, *options, env={"PATH": os.defpath})
    assert found.returncode == 0, found.stderr
    assert "audit passed" in found.stdout


@pytest.mark.slow
def test_cli_an_empty_tier_is_nothing_checked_even_against_a_failing_service(
    project: Path,
) -> None:
    write(project / "requirements" / "empty.in", "# nothing yet\n")
    write_lock(project / "requirements" / "empty.txt", "# This file was autogenerated by uv.\n")
    with OSVServer([OSV_FIXTURES], fail=True) as server:
        options = ["--tier=empty", "--service", "osv", "--osv-url", server.url]
        found = run_cli(project, *options, env={})
        assert server.requests == []
    assert found.returncode == 3
    assert found.stderr == (
        "error: nothing checked: requirements/empty.txt pins no package versions, "
        "so there is nothing to audit\n"
    )
    assert "passed" not in found.stdout + found.stderr
    written = json.loads((project / "reports" / "audit.json").read_text())
    assert written["exit_code"] == 3 and written["summary"].startswith(
        "audit could not run: nothing checked"
    )


@pytest.mark.slow
def test_cli_takes_the_osv_url_from_a_named_variable(project: Path) -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        options = ["--tier=base", "--service", "osv", "--osv-url-env", "MY_OSV"]
        found = run_cli(project, *options, env={"MY_OSV": with_secrets(server.url, "user info")})
        assert set(server.authorizations) == {"Basic YWxpY2U6UzNDUkVU"}
    assert found.returncode == 0, found.stderr
    unset = run_cli(project, *options, env={})
    assert (unset.returncode, unset.stderr) == (
        2,
        "error: --osv-url-env MY_OSV: that variable is not set\n",
    )
    both = run_cli(project, *options, "--osv-url", "http://127.0.0.1:9/v1/query", env={})
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
