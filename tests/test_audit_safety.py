"""tooling.audit.safety: safety 3 as a second opinion, or one line saying why it did not run.

safety 3 contacts its platform before any command, so nothing here runs it: the
tests check the command lines it is given, the reports it may answer, and the
keyless skip (tests/test_generated_audit.py runs the session itself).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.audit_support import SAFETY_DB, load, two_tier_locks, write

safety = load("audit.safety")
audit = load("audit")
main = load("audit.__main__")


@pytest.fixture
def two_tiers(tmp_path: Path) -> dict[str, Path]:
    return two_tier_locks(tmp_path)


def test_a_key_runs_scan_and_the_free_database_needs_an_opt_in(tmp_path: Path) -> None:
    assert safety.plan_safety({"SAFETY_API_KEY": "k"}).mode == "scan"
    assert safety.plan_safety({"SAFETY_API_KEY": "k"}, free_database=True).mode == "scan"
    # A local copy of the free database is still the free database: no opt-in, no run.
    assert safety.plan_safety({"SAFETY_DB": str(SAFETY_DB)}).mode == "skip"
    assert safety.plan_safety({}, db=SAFETY_DB).mode == "skip"
    online = safety.plan_safety({}, free_database=True)
    assert (online.mode, online.db) == ("check", None)
    local = safety.plan_safety({"SAFETY_DB": str(SAFETY_DB)}, free_database=True)
    assert (local.mode, local.db) == ("check", SAFETY_DB)
    with pytest.raises(audit.AuditError, match=r"lacks insecure\.json, insecure_full\.json"):
        safety.plan_safety({}, free_database=True, db=tmp_path)


def test_without_a_key_safety_is_skipped_in_one_line_that_says_how_to_enable_it(
    two_tiers: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[Sequence[str]] = []

    def run(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    result = safety.run_safety(two_tiers, safety.plan_safety({}), env={}, run=run)
    assert (result.exit_code, calls) == (0, [])
    folder = two_tiers["base"].parent
    write(folder / "base.in", "requests\n")
    write(folder / "web.in", "-r base.in\njinja2\n")
    code = main.main(
        ["safety", "--requirements", str(folder), "--report", str(folder / "r.json")], env={}
    )
    out, err = capsys.readouterr()
    assert (code, err, out.count("\n")) == (0, "", 1)
    assert out.startswith("safety skipped: SAFETY_API_KEY is not set; set it to run `safety scan`")
    assert "non-commercial use only, CC BY-NC-SA 4.0" in out
    assert "`safety-free-database = true` in [tool.lockstep]" in out
    assert not (folder / "r.json").exists()  # no report claims safety looked


def test_a_required_safety_that_cannot_run_fails_in_one_line(two_tiers: dict[str, Path]) -> None:
    with pytest.raises(
        audit.AuditError,
        match=r"^safety cannot run \(safety-required = true\): SAFETY_API_KEY is not set",
    ) as error:
        safety.run_safety(two_tiers, safety.plan_safety({}), require=True, env={})
    assert error.value.exit_code == 2


def test_locks_that_pin_nothing_are_nothing_checked_for_safety_too(tmp_path: Path) -> None:
    empty = {"sniper": write(tmp_path / "requirements" / "sniper.txt", "# nothing\n")}
    calls: list[Sequence[str]] = []

    def run(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, json.dumps({"vulnerabilities": []}), "")

    plan = safety.plan_safety({}, free_database=True)
    with pytest.raises(audit.AuditError, match=r"^nothing checked: .*sniper\.txt pins no") as error:
        safety.run_safety(empty, plan, env={}, run=run)
    assert error.value.exit_code == 3 and calls == []


REPORT = {
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


def recording(code: int, stdout: str, calls: list[tuple[list[str], dict[str, str], list[str]]]):
    """A runner that answers `stdout` and keeps the command line and the pins it was given."""

    def runner(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        flag = "-r" if "-r" in argv else "--target"
        given = Path(argv[argv.index(flag) + 1])
        path = given if flag == "-r" else given / "requirements.txt"
        calls.append((list(argv), dict(env), path.read_text().splitlines()))
        return subprocess.CompletedProcess(argv, code, stdout, "")

    return runner


PINNED = ["colorama==0.4.6", "jinja2==2.10", "requests==2.32.3"]  # markers dropped


def test_the_opted_in_free_database_is_safety_check_over_every_pinned_version(
    two_tiers: dict[str, Path],
) -> None:
    calls: list[tuple[list[str], dict[str, str], list[str]]] = []
    plan = safety.plan_safety({}, free_database=True, db=SAFETY_DB)
    result = safety.run_safety(
        two_tiers, plan, env={}, run=recording(64, json.dumps(REPORT), calls)
    )
    argv, _, given = calls[0]
    assert argv[:4] == ["safety", "check", "--db", str(SAFETY_DB)] and argv[-1] == "--json"
    assert given == PINNED
    assert result.exit_code == 1 and result.mode == "check"
    only = result.findings[0]
    assert (only.package, only.tiers, only.id, only.severity.level) == (
        "jinja2",
        ("web",),
        "90001",
        "high",
    )
    assert only.advisory.aliases == ("pyup.io-90001", "CVE-2019-10906")
    online = safety.plan_safety({}, free_database=True)
    safety.run_safety(two_tiers, online, env={}, run=recording(0, '{"vulnerabilities": []}', calls))
    assert "--db" not in calls[1][0]


def scan_report(*specs: tuple[str, str, list[str]], schema: str = "3.0") -> str:
    """A `safety scan --output json` report: (name, raw spec, vulnerability ids)."""
    dependencies = [
        {
            "name": name,
            "specifications": [
                {
                    "raw": raw,
                    "vulnerabilities": {
                        "known_vulnerabilities": [
                            {"id": v, "vulnerable_spec": "<2.10.1"} for v in ids
                        ],
                        "remediation": {"vulnerabilities_found": len(ids), "recommended": "2.10.1"}
                        if ids
                        else None,
                    },
                }
            ],
        }
        for name, raw, ids in specs
    ]
    files = [
        {
            "location": "/tmp/x",
            "type": "requirements.txt",
            "categories": ["python"],
            "results": {"dependencies": dependencies},
        }
    ]
    return json.dumps(
        {
            "meta": {"schema_version": schema},
            "scan_results": {"projects": [{"id": "p", "files": files}]},
        }
    )


ALL_PINS = [
    ("colorama", "colorama==0.4.6", []),
    ("Jinja2", "jinja2==2.10", ["70612"]),
    ("requests", "requests==2.32.3", []),
]


def test_with_a_key_safety_scan_reads_a_folder_holding_every_pinned_version(
    two_tiers: dict[str, Path], tmp_path: Path
) -> None:
    calls: list[tuple[list[str], dict[str, str], list[str]]] = []
    plan = safety.plan_safety({"SAFETY_API_KEY": "s3cret"})
    env = {"SAFETY_API_KEY": "s3cret"}
    result = safety.run_safety(
        two_tiers, plan, env=env, run=recording(64, scan_report(*ALL_PINS), calls)
    )
    argv, seen_env, given = calls[0]
    target = argv[argv.index("--target") + 1]
    assert argv == ["safety", "--stage", "cicd", "scan", "--target", target, "--output", "json"]
    assert "s3cret" not in " ".join(argv) and seen_env["SAFETY_API_KEY"] == "s3cret"
    assert given == PINNED
    assert result.exit_code == 1
    assert [
        (f.package, f.version, f.tiers, f.id, f.advisory.fix_versions) for f in result.findings
    ] == [("jinja2", "2.10", ("web",), "70612", ("2.10.1",))]
    allowlist = write(
        tmp_path / "audit-allowlist.toml",
        "[[ignore]]\nid = 'pyup.io-70612'\nreason = 'No user templates.'\nexpires = 2099-01-01\n",
    )
    allowed = safety.run_safety(
        two_tiers,
        plan,
        env=env,
        run=recording(64, scan_report(*ALL_PINS), calls),
        allowlist_path=allowlist,
        allowlist_max_days=40000,
    )
    assert allowed.exit_code == 0 and allowed.findings[0].allowed_by is not None


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        (
            scan_report(*ALL_PINS[:2]),
            r"leaves out 1 pinned version\(s\) \(requests==2\.32\.3\): they were not checked",
        ),
        (scan_report(*ALL_PINS, schema="2.0"), r"^safety printed no scan report: "),
        ('{"vulnerabilities": []}', r"^safety printed no scan report: "),
        ("<html>rate limited</html>", r"^safety printed no scan report: "),
        (scan_report(*ALL_PINS).replace('"raw"', '"spec"'), r"^safety printed no scan report: "),
    ],
)
def test_a_scan_answer_counts_only_when_it_is_a_report_of_every_pinned_version(
    two_tiers: dict[str, Path], stdout: str, message: str
) -> None:
    plan = safety.plan_safety({"SAFETY_API_KEY": "k"})
    with pytest.raises(audit.AuditError, match=message) as error:
        safety.run_safety(two_tiers, plan, env={}, run=recording(0, stdout, []))
    assert error.value.exit_code == 1


def test_vulnerabilities_signalled_but_not_reported_are_no_clean_bill(
    two_tiers: dict[str, Path],
) -> None:
    plan = safety.plan_safety({"SAFETY_API_KEY": "k"})
    with pytest.raises(audit.AuditError, match=r"exited 64 .* reported none") as error:
        safety.run_safety(
            two_tiers,
            plan,
            env={},
            run=recording(64, scan_report(*ALL_PINS[::2], ("jinja2", "jinja2==2.10", [])), []),
        )
    assert error.value.exit_code == 1


@pytest.mark.parametrize(("code", "exit_code"), [(65, 2), (66, 3), (67, 2), (68, 3), (69, 2)])
def test_safety_error_codes_map_to_ours(
    two_tiers: dict[str, Path], code: int, exit_code: int
) -> None:
    def runner(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, code, "", "boom")

    with pytest.raises(audit.AuditError) as error:
        safety.run_safety(
            two_tiers, safety.plan_safety({"SAFETY_API_KEY": "k"}), env={}, run=runner
        )
    assert error.value.exit_code == exit_code


def test_an_unreachable_platform_is_one_line_from_the_traceback(two_tiers: dict[str, Path]) -> None:
    traceback = "Traceback (most recent call last):\n  File ...\nhttpx.ConnectError: [Errno -2] Name or service not known\n"

    def runner(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", traceback)

    with pytest.raises(audit.AuditError) as error:
        safety.run_safety(
            two_tiers, safety.plan_safety({"SAFETY_API_KEY": "k"}), env={}, run=runner
        )
    assert (
        str(error.value)
        == "safety could not reach its service: httpx.ConnectError: [Errno -2] Name or service not known"
    )
    assert error.value.exit_code == 3


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "null",
        '{"vulnerabilities": null}',
        '{"vulnerabilities": [null]}',
        '{"vulnerabilities": [{"package_name": "jinja2"}]}',
        '{"vulnerabilities": [{"vulnerability_id": "1", "package_name": "jinja2", '
        '"analyzed_version": "2.10", "severity": {"cvssv3": {"base_score": "high"}}}]}',
        "<html>rate limited</html>",
    ],
)
def test_a_safety_report_that_is_not_one_is_one_line_never_a_traceback(stdout: str) -> None:
    with pytest.raises(audit.AuditError) as error:
        safety.safety_findings(stdout, [])
    assert str(error.value).startswith("safety printed no vulnerability report: ")
    assert error.value.exit_code == 1
