"""tooling.audit.safety: a second opinion, or a plain sentence why it did not run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.audit_support import LOCKS, SAFETY_DB, load, tool_env, two_tier_locks, write

safety = load("audit.safety")
audit = load("audit")


@pytest.fixture
def two_tiers(tmp_path: Path) -> dict[str, Path]:
    return two_tier_locks(tmp_path)


def test_the_plan_prefers_a_key_then_a_local_database(tmp_path: Path) -> None:
    assert safety.plan_safety({"SAFETY_API_KEY": "k"}, SAFETY_DB).mode == "scan"
    plan = safety.plan_safety({}, SAFETY_DB)
    assert (plan.mode, plan.requirement, plan.db) == ("check", "safety==2.3.5", SAFETY_DB)
    assert safety.plan_safety({"SAFETY_DB": str(SAFETY_DB)}).mode == "check"
    assert safety.plan_safety({}).mode == "skip"
    with pytest.raises(audit.AuditError, match=r"lacks insecure\.json, insecure_full\.json"):
        safety.plan_safety({}, tmp_path)


def test_a_skip_says_why_and_can_be_made_a_failure(two_tiers: dict[str, Path]) -> None:
    plan = safety.plan_safety({})
    result = safety.run_safety(two_tiers, plan, env={})
    assert result.exit_code == 0
    assert result.message.startswith("safety skipped: no SAFETY_API_KEY")
    with pytest.raises(audit.AuditError, match=r"safety skipped: .* required") as error:
        safety.run_safety(two_tiers, plan, require=True, env={})
    assert error.value.exit_code == 2


def test_locks_that_pin_nothing_are_nothing_checked_for_safety_too(tmp_path: Path) -> None:
    empty = {"sniper": write(tmp_path / "requirements" / "sniper.txt", "# nothing\n")}
    calls: list[Sequence[str]] = []

    def run(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, json.dumps({"vulnerabilities": []}), "")

    with pytest.raises(audit.AuditError, match=r"^nothing checked: .*sniper\.txt pins no") as error:
        safety.run_safety(empty, safety.plan_safety({}, SAFETY_DB), env={}, run=run)
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


def test_check_runs_offline_over_every_pinned_version(two_tiers: dict[str, Path]) -> None:
    calls: list[tuple[list[str], dict[str, str], list[str]]] = []

    def runner(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        given = Path(argv[argv.index("-r") + 1]).read_text().splitlines()
        calls.append((list(argv), dict(env), given))
        return subprocess.CompletedProcess(argv, 64, json.dumps(REPORT), "")

    plan = safety.plan_safety({}, SAFETY_DB)
    result = safety.run_safety(two_tiers, plan, env={"SAFETY_API_KEY": "k"}, run=runner)
    argv, env, given = calls[0]
    assert argv[:4] == ["safety", "check", "--db", str(SAFETY_DB)] and argv[-1] == "--json"
    assert "SAFETY_API_KEY" not in env  # 2.3.5 would go online with it
    assert given == ["colorama==0.4.6", "jinja2==2.10", "requests==2.32.3"]  # markers dropped
    assert result.exit_code == 1
    only = result.findings[0]
    assert (only.package, only.tiers, only.id, only.severity.level) == (
        "jinja2",
        ("web",),
        "90001",
        "high",
    )
    assert only.advisory.aliases == ("pyup.io-90001", "CVE-2019-10906")


@pytest.mark.parametrize(("code", "exit_code"), [(65, 2), (66, 3), (67, 2), (68, 3), (69, 2)])
def test_safety_error_codes_map_to_ours(
    two_tiers: dict[str, Path], code: int, exit_code: int
) -> None:
    def runner(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, code, "", "boom")

    with pytest.raises(audit.AuditError) as error:
        safety.run_safety(two_tiers, safety.plan_safety({}, SAFETY_DB), env={}, run=runner)
    assert error.value.exit_code == exit_code


@pytest.fixture(scope="session")
def safety_235(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """safety 2.3.5 in its own virtual environment (its pins clash with pip-audit's).

    Kept in pytest's cache folder between runs when the cache is enabled.
    """
    cache = getattr(request.config, "cache", None)
    name = "safety-2.3.5-venv"
    venv = Path(cache.mkdir(name)) if cache is not None else tmp_path_factory.mktemp(name)
    executable = venv / "bin" / "safety"
    if not executable.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "safety==2.3.5"],
            check=True,
        )
    return executable


@pytest.mark.slow
@pytest.mark.network  # installs safety 2.3.5 from the package index (once, then cached)
def test_real_safety_235_reads_the_fixture_database(tmp_path: Path, safety_235: Path) -> None:
    found = {t: LOCKS / f"{t}.txt" for t in ("base", "web")}
    plan = safety.plan_safety({}, SAFETY_DB)
    env = {
        **tool_env(),
        "SAFETY_API_KEY": "must-not-be-used",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }  # prove offline
    command = [str(safety_235)]
    result = safety.run_safety(found, plan, env=env, command=command)
    assert result.exit_code == 1, result.message
    assert [(f.package, f.tiers, f.id) for f in result.findings] == [("jinja2", ("web",), "90001")]
    assert "CVE-2019-10906" in result.findings[0].advisory.aliases
    allowlist = write(
        tmp_path / "audit-allowlist.toml",
        "[[ignore]]\nid = 'CVE-2019-10906'\nreason = 'No user templates.'\nexpires = 2099-01-01\n",
    )
    allowed = safety.run_safety(
        found, plan, env=env, command=command, allowlist_path=allowlist, allowlist_max_days=40000
    )
    assert allowed.exit_code == 0
    clean = safety.run_safety({"base": found["base"]}, plan, env=env, command=command)
    assert clean.exit_code == 0 and clean.findings == []


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
