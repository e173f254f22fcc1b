"""A second opinion from safety 3 (hash-locked in requirements/tools/safety.txt), or one line why not.

With SAFETY_API_KEY, `safety scan` checks every pinned version against Safety's
commercial database. Without a key, safety runs only when the project opts into
the free database (`safety-free-database = true`): `safety check`, deprecated in
safety 3 but the one keyless command, online or from a local copy (--db or
SAFETY_DB). That database is for non-commercial use only (CC BY-NC-SA 4.0).
Otherwise safety is skipped, which fails only when the project requires it
(`safety-required = true`). Both commands need the network: safety 3 contacts
its platform before it runs any command.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from tooling.audit import (
    EXIT_CONFIG,
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_SERVICE,
    AuditError,
    Runner,
    allowlist,
    clip,
    run_command,
)
from tooling.audit.locks import PinnedVersion, version_key, versions_to_check
from tooling.audit.policy import Finding, apply_allowlist
from tooling.audit.report import finding_json
from tooling.audit.scan import Advisory
from tooling.audit.severity import Severity, level_for_score

NO_KEY = (
    "SAFETY_API_KEY is not set; set it to run `safety scan`, or opt into safety's free "
    "database (non-commercial use only, CC BY-NC-SA 4.0) with "
    "`safety-free-database = true` in [tool.lockstep]"
)


@dataclass(frozen=True)
class SafetyPlan:
    """How safety runs here: 'scan' (API key), 'check' (free database, opted in) or 'skip'."""

    mode: str
    reason: str
    db: Path | None = None


def plan_safety(
    env: Mapping[str, str], *, free_database: bool = False, db: Path | None = None
) -> SafetyPlan:
    """An API key wins; then the free database if the project opted in; else skip."""
    if env.get("SAFETY_API_KEY"):
        return SafetyPlan("scan", "SAFETY_API_KEY is set: safety scan")
    if not free_database:
        return SafetyPlan("skip", NO_KEY)
    db = db or (Path(env["SAFETY_DB"]) if env.get("SAFETY_DB") else None)
    if db is not None:
        missing = [n for n in ("insecure.json", "insecure_full.json") if not (db / n).is_file()]
        if missing:
            raise AuditError(f"safety database {db} lacks {', '.join(missing)}")
    where = f"local copy {db}" if db else "online"
    return SafetyPlan(
        "check", f"safety check, free database ({where}, non-commercial use only)", db
    )


@dataclass
class SafetyResult:
    mode: str
    exit_code: int
    message: str
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": "safety",
            "mode": self.mode,
            "exit_code": self.exit_code,
            "summary": self.message,
            "findings": [finding_json(f) for f in self.findings],
        }


_EXITS = {
    65: (EXIT_CONFIG, "safety rejected the API key"),
    66: (EXIT_SERVICE, "safety's service is rate limiting this key"),
    67: (EXIT_CONFIG, "safety could not load the local database"),
    68: (EXIT_SERVICE, "safety could not fetch its database"),
    69: (EXIT_CONFIG, "safety's database is malformed"),
}
_SERVICE_TROUBLE = re.compile(
    r"requests\.exceptions\.|httpx\.|Could not connect|ConnectionError|ConnectError"
)


def safety_argv(
    plan: SafetyPlan, requirements: Path, command: Sequence[str] = ("safety",)
) -> list[str]:
    """The command line; the key stays in the environment (SAFETY_API_KEY), never in argv."""
    if plan.mode == "check":
        db = ["--db", str(plan.db)] if plan.db else []
        return [*command, "check", *db, "-r", str(requirements), "--json"]
    if plan.mode == "scan":  # an API key is refused in safety's default 'development' stage
        target = str(requirements.parent)
        return [*command, "--stage", "cicd", "scan", "--target", target, "--output", "json"]
    raise AuditError(f"safety has nothing to run in mode {plan.mode!r}")


def skip_reason(plan: SafetyPlan, require: bool) -> str:
    """Why safety is skipped, in one line; an error when the project requires safety."""
    if require:
        raise AuditError(f"safety cannot run (safety-required = true): {plan.reason}", EXIT_CONFIG)
    return plan.reason


def run_safety(
    locks: Mapping[str, Path],
    plan: SafetyPlan,
    *,
    require: bool = False,
    allowlist_path: Path | None = None,
    allowlist_max_days: int = allowlist.DEFAULT_MAX_DAYS,
    env: Mapping[str, str] | None = None,
    run: Runner = run_command,
    command: Sequence[str] = ("safety",),
    today: date | None = None,
) -> SafetyResult:
    """Run safety as a second opinion, or say in one line why it did not run."""
    if plan.mode == "skip":
        return SafetyResult("skip", EXIT_OK, f"safety skipped: {skip_reason(plan, require)}")
    today = today or allowlist.today_utc()
    pins = versions_to_check(locks)
    entries = allowlist.load(allowlist_path, today=today, max_days=allowlist_max_days)
    env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix="safety-") as scratch:
        # Every pinned version, without markers: safety checks each line as given.
        # `safety scan` reads files whose names end in requirements.txt.
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text("".join(f"{pin}\n" for pin in pins), encoding="utf-8")
        completed = run(safety_argv(plan, requirements, command), env)
    if completed.returncode in _EXITS:
        code, what = _EXITS[completed.returncode]
        raise AuditError(f"{what}: {clip(completed.stderr or completed.stdout)}", code)
    if completed.returncode not in (0, 64):
        trouble = completed.stderr + completed.stdout
        last = (trouble.strip().splitlines() or [""])[-1]  # a traceback's last line says what
        if _SERVICE_TROUBLE.search(trouble):
            raise AuditError(f"safety could not reach its service: {clip(last)}", EXIT_SERVICE)
        raise AuditError(
            f"safety failed (exit {completed.returncode}): {clip(last)}", EXIT_FINDINGS
        )
    read = scan_findings if plan.mode == "scan" else safety_findings
    findings = read(completed.stdout, pins)
    if completed.returncode == 64 and not findings:
        raise AuditError("safety exited 64 (vulnerabilities) but reported none", EXIT_FINDINGS)
    findings, _, _ = apply_allowlist(findings, entries, today)
    failing = [f for f in findings if f.fails]
    verdict = EXIT_FINDINGS if failing else EXIT_OK
    message = (
        f"safety {plan.mode} ({plan.reason}): {len(pins)} pinned versions checked, "
        f"{len(failing)} failing finding(s), {len(findings)} in total"
    )
    return SafetyResult(plan.mode, verdict, message, findings)


def scan_findings(stdout: str, pins: Sequence[PinnedVersion]) -> list[Finding]:
    """Findings from `safety scan --output json` (report schema 3.0), every pin accounted for.

    The report lists every dependency it analysed; a pinned version it does not
    list was not checked, so the answer does not count.
    """
    tiers_of = {pin.key: pin.tiers for pin in pins}
    seen: set[Any] = set()
    findings = []
    try:
        report = json.loads(stdout)
        if report["meta"]["schema_version"] != "3.0":
            raise ValueError("unknown schema")
        for project in report["scan_results"]["projects"]:
            for file in project["files"]:
                for dependency in file["results"]["dependencies"]:
                    name = canonicalize_name(str(dependency["name"]))
                    for spec in dependency["specifications"]:
                        version = str(spec["raw"]).partition("==")[2].strip()
                        key = version_key(name, version)
                        seen.add(key)
                        remediation = spec["vulnerabilities"].get("remediation") or {}
                        fixed = remediation.get("recommended")
                        for vuln in spec["vulnerabilities"]["known_vulnerabilities"]:
                            advisory = Advisory(
                                id=str(vuln["id"]),
                                aliases=(f"pyup.io-{vuln['id']}",),
                                fix_versions=(str(fixed),) if fixed else (),
                                description=str(vuln["vulnerable_spec"]),
                            )
                            findings.append(
                                Finding(key[0], version, tiers_of.get(key, ()), advisory, None)
                            )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AuditError(f"safety printed no scan report: {clip(stdout)}", EXIT_FINDINGS) from None
    missing = [pin for pin in pins if pin.key not in seen]
    if missing:
        names = ", ".join(str(pin) for pin in missing[:5])
        raise AuditError(
            f"safety's scan report leaves out {len(missing)} pinned version(s) ({names}): "
            "they were not checked",
            EXIT_FINDINGS,
        )
    return sorted(findings, key=lambda f: (f.package, f.version, f.id))


def safety_findings(stdout: str, pins: Sequence[PinnedVersion]) -> list[Finding]:
    """Findings from `safety check --json` (2.x report); anything else is no report."""
    tiers_of = {pin.key: pin.tiers for pin in pins}
    try:
        findings = [_finding(vuln, tiers_of) for vuln in json.loads(stdout)["vulnerabilities"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AuditError(
            f"safety printed no vulnerability report: {clip(stdout)}", EXIT_FINDINGS
        ) from None
    return sorted(findings, key=lambda f: (f.package, f.version, f.id))


def _finding(vuln: Mapping[str, Any], tiers_of: Mapping[Any, tuple[str, ...]]) -> Finding:
    name, version = str(vuln["package_name"]), str(vuln["analyzed_version"])
    aliases = [f"pyup.io-{vuln['vulnerability_id']}"]
    if vuln.get("CVE"):
        aliases.append(str(vuln["CVE"]))
    score = (((vuln.get("severity") or {}).get("cvssv3")) or {}).get("base_score")
    severity = (
        Severity(level_for_score(float(score)), float(score), "safety cvssv3")
        if score is not None
        else None
    )
    key = version_key(canonicalize_name(name), version)
    advisory = Advisory(
        id=str(vuln["vulnerability_id"]),
        aliases=tuple(aliases),
        fix_versions=tuple(vuln.get("fixed_versions") or ()),
        description=str(vuln.get("advisory", "")),
    )
    return Finding(key[0], version, tiers_of.get(key, ()), advisory, severity)
