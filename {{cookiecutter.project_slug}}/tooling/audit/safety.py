"""A second opinion from safety, or a plain sentence saying why it did not run.

With SAFETY_API_KEY, safety 3 scans the project online. Without one, safety
2.3.5 checks every pinned version offline against a local database
(SAFETY_DB or --db). Otherwise safety is skipped, which fails only when the
project requires it (`safety-required = true`).
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

OFFLINE = "safety==2.3.5"
ONLINE = "safety>=3"


@dataclass(frozen=True)
class SafetyPlan:
    """How safety can run here: 'scan' (3.x, API key), 'check' (2.3.5, local db) or 'skip'."""

    mode: str
    requirement: str | None
    reason: str
    db: Path | None = None


def plan_safety(env: Mapping[str, str], db: Path | None = None) -> SafetyPlan:
    """Choose how to run safety: an API key wins, then a local database, else skip."""
    if env.get("SAFETY_API_KEY"):
        return SafetyPlan("scan", ONLINE, "SAFETY_API_KEY is set: safety scan")
    db = db or (Path(env["SAFETY_DB"]) if env.get("SAFETY_DB") else None)
    if db is not None:
        missing = [n for n in ("insecure.json", "insecure_full.json") if not (db / n).is_file()]
        if missing:
            raise AuditError(f"safety database {db} lacks {', '.join(missing)}")
        return SafetyPlan("check", OFFLINE, f"local database {db}: safety 2.3.5 check", db)
    return SafetyPlan(
        "skip",
        None,
        "no SAFETY_API_KEY for safety 3 and no local database (SAFETY_DB or --db) for safety 2.3.5",
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
_SERVICE_TROUBLE = re.compile(r"requests\.exceptions\.|Could not connect|ConnectionError")


def safety_argv(
    plan: SafetyPlan, requirements: Path, target: Path, command: Sequence[str] = ("safety",)
) -> list[str]:
    if plan.mode == "check":
        return [*command, "check", "--db", str(plan.db), "-r", str(requirements), "--json"]
    if plan.mode == "scan":
        return [*command, "scan", "--target", str(target), "--output", "json"]
    raise AuditError(f"safety has nothing to run in mode {plan.mode!r}")


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
    """Run safety as a second opinion, or say plainly why it did not run."""
    if plan.mode == "skip":
        message = f"safety skipped: {plan.reason}"
        if require:
            raise AuditError(f"{message} (and it is required)", EXIT_CONFIG)
        return SafetyResult("skip", EXIT_OK, message)
    today = today or allowlist.today_utc()
    pins = versions_to_check(locks)
    entries = allowlist.load(allowlist_path, today=today, max_days=allowlist_max_days)
    env = dict(os.environ if env is None else env)
    if plan.mode == "check":
        env.pop("SAFETY_API_KEY", None)  # 2.3.5 would prefer the online database
    target = next(iter(locks.values())).parent
    with tempfile.TemporaryDirectory(prefix="safety-") as scratch:
        # Every pinned version, without markers: safety checks each line as given.
        requirements = Path(scratch) / "pinned.txt"
        requirements.write_text("".join(f"{pin}\n" for pin in pins), encoding="utf-8")
        completed = run(safety_argv(plan, requirements, target, command), env)
    if completed.returncode in _EXITS:
        code, what = _EXITS[completed.returncode]
        raise AuditError(f"{what}: {clip(completed.stderr or completed.stdout)}", code)
    if completed.returncode not in (0, 64):
        trouble = completed.stderr + completed.stdout
        code = EXIT_SERVICE if _SERVICE_TROUBLE.search(trouble) else EXIT_FINDINGS
        raise AuditError(f"safety failed (exit {completed.returncode}): {clip(trouble)}", code)
    if plan.mode == "scan":
        verdict = EXIT_FINDINGS if completed.returncode == 64 else EXIT_OK
        word = "found vulnerabilities" if verdict else "found no known vulnerabilities"
        return SafetyResult("scan", verdict, f"safety scan {word}")
    findings = safety_findings(completed.stdout, pins)
    findings, _, _ = apply_allowlist(findings, entries, today)
    failing = [f for f in findings if f.fails]
    verdict = EXIT_FINDINGS if failing else EXIT_OK
    message = (
        f"safety 2.3.5 ({plan.db}): {len(pins)} pinned versions checked, "
        f"{len(failing)} failing finding(s), {len(findings)} in total"
    )
    return SafetyResult("check", verdict, message, findings)


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
