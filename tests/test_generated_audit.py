"""`nox -s audit`, `nox -s safety` and `nox -s sbom` in a baked, locked project.

pip-audit queries a loopback OSV server backed by the fixture advisories (and
by ../shared/data/osv-pypi when it is there). safety 3 cannot run without its
platform: the keyless skip and the offline failure are what is run here.
Locking reaches the package index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.conftest import TEMPLATE, run_in
from tests.osv_server import OSVServer

pytestmark = [pytest.mark.network, pytest.mark.slow]

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_OSV = TEMPLATE.parent / "shared" / "data" / "osv-pypi"


@pytest.fixture(scope="module")
def osv() -> OSVServer:
    with OSVServer([FIXTURES / "osv", SHARED_OSV]) as server:
        yield server


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("audit")
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output)))
    assert run_in(project, "nox", "-s", "lock").returncode == 0
    # Warm the session environments once; the tests reuse them with -R.
    run_in(project, "nox", "-s", "audit", "sbom", "--", "--help")
    return project


@pytest.fixture
def project(locked: Path, tmp_path: Path) -> Path:
    """A copy of the locked project, its warmed session environments shared (nox -R reuses
    them; a session run without -R makes its own again, in the shared folder)."""
    copy = tmp_path / locked.name
    shutil.copytree(locked, copy, symlinks=True, ignore=shutil.ignore_patterns(".nox"))
    (copy / ".nox").symlink_to(locked / ".nox", target_is_directory=True)
    return copy


def audit(
    project: Path, osv: OSVServer, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_in(
        project,
        "nox",
        "-R",
        "-s",
        "audit",
        "--",
        *extra,
        env={"PIP_AUDIT_VULNERABILITY_SERVICE": "osv", "PIP_AUDIT_OSV_URL": osv.url, **(env or {})},
    )


def add_vulnerable_pin(project: Path) -> None:
    with (project / "requirements" / "hunter.in").open("a") as stream:
        stream.write("jinja2==2.10\n")
    result = run_in(project, "nox", "-s", "lock")
    assert result.returncode == 0, result.stderr


def test_fresh_default_locks_pass_the_audit(project: Path, osv: OSVServer) -> None:
    result = audit(project, osv)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((project / "reports" / "audit.json").read_text())
    assert report["findings"] == []
    assert "safety skipped" in result.stdout + result.stderr
    locked = set()
    for lock in (project / "requirements").glob("*.txt"):
        for line in lock.read_text().splitlines():
            if line[:1].isalnum():
                name, _, rest = line.partition("==")
                locked.add((name.lower(), rest.split()[0]))
    pinned = {(p["package"], p["version"]) for p in report["pinned_versions"]}
    assert pinned == locked and all(p["checked"] for p in report["pinned_versions"])


@pytest.mark.parametrize(
    "options",
    [
        ["--service", "osv", "--osv-url", "{url}"],
        ["--min-severity", "high"],
        ["--tier", "sniper"],
    ],
)
def test_documented_option_forms_pass_on_clean_locks(
    project: Path, osv: OSVServer, options: list[str]
) -> None:
    result = audit(project, osv, *[option.format(url=osv.url) for option in options])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "audit passed" in output
    assert "safety skipped" in output  # safety ran next, without the audit's options


def test_invoke_audit_takes_the_same_options(project: Path, osv: OSVServer) -> None:
    passed = run_in(project, "invoke", "audit", "--service", "osv", "--osv-url", osv.url)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "audit passed" in passed.stdout
    with OSVServer([FIXTURES / "osv"]) as down:
        url = down.url
    failed = run_in(project, "invoke", "audit", "--service", "osv", "--osv-url", url)
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1
    assert f"the osv vulnerability service is unreachable: connection refused ({url})" in output
    assert "Traceback" not in output and "Encountered a bad command exit code" not in output


def test_invoke_audit_keeps_the_osv_url_off_noxs_command_line(
    project: Path, tmp_path: Path
) -> None:
    stand_in = tmp_path / "bin" / "nox"
    stand_in.parent.mkdir()
    stand_in.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {tmp_path}/argv\n'
        f'printf "%s" "$LOCKSTEP_OSV_URL" > {tmp_path}/url\n'
    )
    stand_in.chmod(0o755)
    url = "https://alice:S3CRET@osv.example/v1/query"
    env = {"PATH": f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}"}
    done = run_in(project, "invoke", "audit", "--service", "osv", "--osv-url", url, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv == ["-s", "audit", "--", "--service", "osv", "--osv-url-env", "LOCKSTEP_OSV_URL"]
    assert (tmp_path / "url").read_text() == url


def test_both_versions_of_a_marker_gated_package_are_audited(project: Path, osv: OSVServer) -> None:
    with (project / "requirements" / "hunter.in").open("a") as stream:
        stream.write('rsa==4.0 ; python_version >= "3.12"\nrsa==4.9 ; python_version < "3.12"\n')
    locked = run_in(project, "nox", "-s", "lock")
    assert locked.returncode == 0, locked.stderr
    result = audit(project, osv)
    assert result.returncode == 1, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if "PYSEC-2020-99" in line)
    assert row.split()[:2] == ["rsa", "4.0"]
    report = json.loads((project / "reports" / "audit.json").read_text())
    rsa = {p["version"]: p["checked"] for p in report["pinned_versions"] if p["package"] == "rsa"}
    assert rsa == {"4.0": True, "4.9": True}


def test_known_advisory_fails_and_names_the_tier(
    project: Path, osv: OSVServer, tmp_path: Path
) -> None:
    add_vulnerable_pin(project)
    page = tmp_path / "summary.md"
    result = audit(project, osv, env={"GITHUB_STEP_SUMMARY": str(page)})
    assert result.returncode != 0
    table = result.stdout
    row = next(line for line in table.splitlines() if "PYSEC-2019-217" in line)
    assert "jinja2" in row and "2.10" in row
    assert "hunter" in row and "strategist" in row and "base" not in row.replace("base", "", 0)
    report = json.loads((project / "reports" / "audit.json").read_text())
    ids = {finding["id"] for finding in report["findings"]}
    assert "PYSEC-2019-217" in ids
    tiers = {tier for finding in report["findings"] for tier in finding["tiers"]}
    assert tiers == {"hunter", "strategist", "dev"}
    # The run's summary page: the audit's table, then safety's one line.
    sections = page.read_text().split("\n\n## ")
    audited = sections[0].splitlines()
    assert audited[0] == "## pip-audit" and audited[2].startswith("audit FAILED: ")
    assert audited[4] == (
        "| tier | package | version | advisory | severity | fixed in | allow-listed until |"
    )
    assert any(
        line.startswith("| hunter, strategist, dev | jinja2 | 2.10 | PYSEC-2019-217 | ")
        for line in audited
    )
    assert sections[1].startswith("safety\n\nsafety skipped: SAFETY_API_KEY is not set")


def allow(project: Path, advisories: list[str], expires: date) -> None:
    (project / "audit-allowlist.toml").write_text(
        "".join(
            f'[[ignore]]\nid = "{advisory}"\nreason = "test fixture, never deployed"\n'
            f"expires = {expires.isoformat()}\n\n"
            for advisory in advisories
        )
    )


def test_allow_listed_finding_passes_until_it_expires(project: Path, osv: OSVServer) -> None:
    add_vulnerable_pin(project)
    report_path = project / "reports" / "audit.json"
    assert audit(project, osv).returncode != 0
    found = sorted({finding["id"] for finding in json.loads(report_path.read_text())["findings"]})
    assert "PYSEC-2019-217" in found
    allow(project, found, date.today() + timedelta(days=30))
    allowed = audit(project, osv)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    findings = json.loads(report_path.read_text())["findings"]
    assert findings and not any(finding["fails"] for finding in findings)
    allow(project, found, date.today() - timedelta(days=1))
    expired = audit(project, osv)
    assert expired.returncode != 0
    assert "expired" in expired.stdout + expired.stderr


def test_malformed_allow_list_is_one_clear_line(project: Path, osv: OSVServer) -> None:
    (project / "audit-allowlist.toml").write_text('[[ignore]]\nid = "PYSEC-2019-217"\n')
    result = audit(project, osv)
    assert result.returncode != 0
    assert "[[ignore]] #1 (PYSEC-2019-217): missing 'reason'" in result.stdout + result.stderr


def test_an_allowance_too_far_ahead_is_refused(project: Path, osv: OSVServer) -> None:
    allow(project, ["PYSEC-2019-217"], date.today() + timedelta(days=400))
    result = audit(project, osv)
    assert result.returncode != 0
    assert "is more than 365 days ahead" in result.stdout + result.stderr
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.lockstep]", "[tool.lockstep]\naudit-allowlist-max-days = 500"
        )
    )
    result = audit(project, osv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stale allow-list [[ignore]] #1 (PYSEC-2019-217)" in result.stdout


def test_unreachable_service_fails_clearly(project: Path, osv: OSVServer) -> None:
    with OSVServer([FIXTURES / "osv"]) as down:
        url = down.url
    # The dead URL given as an argument wins over the live one in the environment.
    result = audit(project, osv, "--service", "osv", "--osv-url", url)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "no known vulnerabilities" not in output.lower()
    line = f"error: the osv vulnerability service is unreachable: connection refused ({url})"
    assert line in output and "Traceback" not in output
    direct = run_in(
        project,
        str(next((project / ".nox").glob("audit*")) / "bin" / "python"),
        "-m",
        "tooling.audit",
        "pip-audit",
        "--service",
        "osv",
        "--osv-url",
        url,
        env={"PATH": os.defpath},  # the session's tools are found beside its Python
    )
    assert direct.returncode == 3, direct.stderr
    assert direct.stderr == f"{line}, so nothing was checked\n"


def test_junk_from_the_service_never_passes_and_credentials_never_show(
    project: Path, osv: OSVServer
) -> None:
    with OSVServer([FIXTURES / "osv"]) as junk:
        junk.junk = b"null"  # valid JSON, but not an OSV answer: pip-audit alone reads "clean"
        secret = junk.url.replace("http://", "http://alice:S3CRET@") + "?token=T0KEN"
        result = run_in(
            project,
            "nox",
            "-R",
            "-s",
            "audit",
            env={"PIP_AUDIT_VULNERABILITY_SERVICE": "osv", "PIP_AUDIT_OSV_URL": secret},
        )
        asked_with = set(junk.authorizations)
        url = junk.url
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    line = (
        "error: the osv vulnerability service answered something that is not a vulnerability "
        f"report: $ is null, not an object ({url}), so nothing was checked"
    )
    assert line in output and "audit passed" not in output
    report = (project / "reports" / "audit.json").read_text()
    assert json.loads(report)["exit_code"] == 3
    assert "S3CRET" not in output + report and "T0KEN" not in output + report
    assert asked_with == {"Basic YWxpY2U6UzNDUkVU"}


def test_a_login_in_osv_url_is_not_echoed_by_nox_even_when_the_audit_fails(
    project: Path, osv: OSVServer
) -> None:
    with OSVServer([FIXTURES / "osv"]) as down:
        url = down.url
    secret = url.replace("http://", "http://alice:S3CRET@") + "?token=T0KEN#F4AG"
    result = audit(project, osv, "--service", "osv", f"--osv-url={secret}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"is unreachable: connection refused ({url}), so nothing was checked" in output
    assert "--osv-url-env LOCKSTEP_OSV_URL" in output  # what nox echoed instead
    report = (project / "reports" / "audit.json").read_text()
    for secret_part in ("alice", "S3CRET", "T0KEN", "F4AG"):
        assert secret_part not in output + report


def run_safety(project: Path, setting: str = "") -> subprocess.CompletedProcess[str]:
    """`nox -s safety` with no key in the environment, after adding a [tool.lockstep] line."""
    if setting:
        pyproject = project / "pyproject.toml"
        text = pyproject.read_text().replace("[tool.lockstep]", f"[tool.lockstep]\n{setting}")
        pyproject.write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("SAFETY_DB", "SAFETY_API_KEY")}
    return subprocess.run(
        ["nox", "-s", "safety"], cwd=project, capture_output=True, text=True, check=False, env=env
    )


def test_without_a_key_safety_is_one_line_and_nothing_installed(project: Path) -> None:
    result = run_safety(project)
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "SAFETY_API_KEY" in line]
    assert said == [
        "nox > Session safety skipped: SAFETY_API_KEY is not set; set it to run `safety scan`, "
        "or opt into safety's free database (non-commercial use only, CC BY-NC-SA 4.0) with "
        "`safety-free-database = true` in [tool.lockstep]."
    ]
    assert "pip install" not in result.stderr and "uv pip install" not in result.stderr


def test_safety_skip_can_be_made_a_failure(project: Path) -> None:
    result = run_safety(project, "safety-required = true")
    assert result.returncode != 0
    assert "safety cannot run (safety-required = true): SAFETY_API_KEY is not set" in (
        result.stderr
    )


def test_the_free_database_opt_in_runs_the_locked_safety_3(project: Path) -> None:
    """Installed from its hashed lock only; offline, safety 3 fails in one line (exit 3)."""
    result = run_safety(project, "safety-free-database = true")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "--require-hashes -r" in output and "requirements/tools/safety.txt" in output
    assert "error: safety could not reach its service: httpx.ConnectError" in output
    assert "Traceback" not in output
    installed = project / ".nox" / "safety" / "bin" / "safety"
    version = subprocess.run([installed, "--version"], capture_output=True, text=True, check=False)
    assert version.stdout.startswith("safety, version 3."), version.stdout + version.stderr


def test_sbom_is_reproducible_and_lists_every_locked_package(project: Path) -> None:
    first = run_in(project, "nox", "-R", "-s", "sbom")
    assert first.returncode == 0, first.stderr
    sboms = {p.name: p.read_bytes() for p in (project / "sbom").glob("*.cdx.json")}
    assert set(sboms) == {
        f"{tier}.cdx.json" for tier in ("base", "sniper", "hunter", "strategist", "dev")
    }
    shutil.rmtree(project / "sbom")
    second = run_in(project, "nox", "-R", "-s", "sbom")
    assert second.returncode == 0, second.stderr
    assert {p.name: p.read_bytes() for p in (project / "sbom").glob("*.cdx.json")} == sboms
    hunter = json.loads(sboms["hunter.cdx.json"])
    components = {c["name"].lower(): c for c in hunter["components"]}
    lock = (project / "requirements" / "hunter.txt").read_text()
    locked = {
        line.split("==")[0]
        for line in lock.splitlines()
        if "==" in line and not line.startswith(" ")
    }
    assert set(components) >= locked
    for name in locked:
        hashes = [
            h for ref in components[name]["externalReferences"] for h in ref.get("hashes", [])
        ]
        assert hashes and all(h["alg"] == "SHA-256" for h in hashes), name
