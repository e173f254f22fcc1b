"""The verdict: what pip-audit found, what it could not check, and the allow-list.

- Every pinned version is accounted for: checked, not checked (with why), or
  found vulnerable (failing, allowed, or below the severity threshold).
- A version that could not be checked fails the audit, like pip-audit's
  `--strict`; when the service could check none of them, nothing was checked
  and that is a service problem (exit 3), not a finding.
- An allowed finding passes until its entry expires; an expired entry fails
  the audit; an entry that matches nothing is reported as stale.
- With a severity threshold, a finding whose advisory carries a lower
  severity is reported but does not fail. A finding without one always counts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from tooling import public_url
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
from tooling.audit.allowlist import Allowance
from tooling.audit.locks import (
    PYPI_INDEX,
    PinnedVersion,
    index_urls,
    pylocks_of,
    versions_to_check,
)
from tooling.audit.scan import Advisory, Outcome, scan
from tooling.audit.service import Service, fetch_record, resolve_service
from tooling.audit.severity import LEVELS, Severity, record_severity

RecordFetcher = Callable[[Service, str], dict[str, Any] | None]


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    tiers: tuple[str, ...]
    advisory: Advisory
    severity: Severity | None = None
    allowed_by: Allowance | None = None
    expired_allowance: Allowance | None = None
    below_threshold: bool = False

    @property
    def id(self) -> str:
        return self.advisory.id

    @property
    def fails(self) -> bool:
        return self.allowed_by is None and not self.below_threshold

    def status(self) -> str:
        if self.allowed_by is not None:
            return f"allowed until {self.allowed_by.expires.isoformat()}"
        if self.below_threshold and self.severity is not None:
            return f"below threshold ({self.severity.level})"
        if self.expired_allowance is not None:
            return f"FAIL (allowance expired {self.expired_allowance.expires.isoformat()})"
        return "FAIL"


@dataclass(frozen=True)
class Unchecked:
    pin: PinnedVersion
    reason: str


@dataclass
class AuditResult:
    """Everything one audit found, with its verdict."""

    tool: str
    service: str
    locks: dict[str, str]
    pins: list[PinnedVersion]
    findings: list[Finding] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
    stale: list[Allowance] = field(default_factory=list)
    expired: list[Allowance] = field(default_factory=list)
    min_severity: str | None = None
    notes: list[str] = field(default_factory=list)
    checked_on: date = field(default_factory=allowlist.today_utc)

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.fails]

    @property
    def checked(self) -> int:
        return len(self.pins) - len(self.unchecked)

    @property
    def exit_code(self) -> int:
        return EXIT_FINDINGS if self.failing or self.unchecked or self.expired else EXIT_OK


def none_checked(service: Service, outcomes: Sequence[Outcome], locks: Mapping[str, Path]) -> str:
    """Why a service that answered could check none of the pinned versions, in one line."""
    first = next(outcome for outcome in outcomes if outcome.skipped)
    example = f"for {first.pin}: {clip(str(first.skipped), 120)}"
    counted = f"{service.subject()} could check none of the {len(outcomes)} pinned versions"
    indexes = [public_url(url).rstrip("/") for url in index_urls(locks)]
    if service.name != "pypi" or indexes != [PYPI_INDEX]:
        return (
            f"{counted} ({example}), so nothing was checked; these packages come from "
            f"{', '.join(indexes)}: does the service cover them?"
        )
    return (
        f"{counted}, though they all come from PyPI ({example}), so nothing was checked; "
        "PyPI's JSON API is not answering as it should here (a proxy or mirror in between?): "
        "try again later, or use --service osv"
    )


def findings_of(outcomes: Sequence[Outcome]) -> tuple[list[Finding], list[Unchecked]]:
    findings, unchecked = [], []
    for outcome in outcomes:
        pin = outcome.pin
        if outcome.skipped is not None:
            unchecked.append(Unchecked(pin, outcome.skipped))
        findings += [Finding(pin.name, pin.version, pin.tiers, a) for a in outcome.advisories]
    return findings, unchecked


def apply_allowlist(
    findings: Sequence[Finding], entries: Sequence[Allowance], today: date
) -> tuple[list[Finding], list[Allowance], list[Allowance]]:
    """Mark allowed findings; return (findings, stale entries, expired entries)."""
    active = [e for e in entries if e.expires >= today]
    expired = [e for e in entries if e.expires < today]
    used: set[int] = set()
    marked = []
    for finding in findings:
        ids = finding.advisory.ids
        allowed = next((e for e in active if e.matches(finding.package, ids)), None)
        lapsed = next((e for e in expired if e.matches(finding.package, ids)), None)
        if allowed is not None:
            used.add(allowed.number)
        marked.append(replace(finding, allowed_by=allowed, expired_allowance=lapsed))
    stale = [e for e in active if e.number not in used]
    return marked, stale, expired


def apply_threshold(findings: Sequence[Finding], min_severity: str | None) -> list[Finding]:
    """Mark findings whose known severity is below the threshold."""
    if min_severity is None:
        return list(findings)
    floor = LEVELS.index(min_severity)
    return [
        replace(f, below_threshold=f.severity is not None and f.severity.rank() < floor)
        for f in findings
    ]


def add_severities(
    findings: Sequence[Finding], service: Service, fetch: RecordFetcher = fetch_record
) -> tuple[list[Finding], list[str]]:
    """Look each advisory (or an alias) up on the OSV service for a severity."""
    if service.records_url is None:
        note = f"severities need the osv service; with {service.describe()} every finding counts"
        return list(findings), [note]
    cache: dict[str, Severity | None] = {}
    result = []
    for finding in findings:
        severity = None
        for advisory in finding.advisory.ids:
            if advisory not in cache:
                record = fetch(service, advisory)
                cache[advisory] = record_severity(record) if record else None
            if (severity := cache[advisory]) is not None:
                break
        result.append(replace(finding, severity=severity))
    return result, []


def audit_locks(
    locks: Mapping[str, Path],
    *,
    allowlist_path: Path | None = None,
    allowlist_max_days: int = allowlist.DEFAULT_MAX_DAYS,
    service: str | None = None,
    osv_url: str | None = None,
    min_severity: str | None = None,
    env: Mapping[str, str] | None = None,
    run: Runner = run_command,
    fetch: RecordFetcher = fetch_record,
    timeout: int | None = None,
    today: date | None = None,
) -> AuditResult:
    """Audit every pinned version of every lock and apply the project's policy.

    Raises AuditError (exit 2 or 3, sometimes 1) when no verdict is possible;
    otherwise returns the result, whose exit_code is 0 or 1.
    """
    env = dict(os.environ if env is None else env)
    today = today or allowlist.today_utc()
    if min_severity is not None and min_severity not in LEVELS:
        raise AuditError(f"unknown severity {min_severity!r}; use {', '.join(LEVELS)}", EXIT_CONFIG)
    pins = versions_to_check(locks)
    pylocks = pylocks_of(locks)
    entries = allowlist.load(allowlist_path, today=today, max_days=allowlist_max_days)
    chosen = resolve_service(env, service, osv_url)
    outcomes = scan(pins, pylocks, chosen, env=env, run=run, timeout=timeout)
    if not any(outcome.checked for outcome in outcomes):
        raise AuditError(none_checked(chosen, outcomes, locks), EXIT_SERVICE)
    findings, unchecked = findings_of(outcomes)
    notes: list[str] = []
    if min_severity is not None and findings:
        findings, notes = add_severities(findings, chosen, fetch)
    findings = apply_threshold(findings, min_severity)
    findings, stale, expired = apply_allowlist(findings, entries, today)
    return AuditResult(
        tool="pip-audit",
        service=chosen.describe(),
        locks={tier: str(path) for tier, path in locks.items()},
        pins=pins,
        findings=sorted(findings, key=lambda f: (f.package, f.version, f.id)),
        unchecked=unchecked,
        stale=stale,
        expired=expired,
        min_severity=min_severity,
        notes=notes,
        checked_on=today,
    )
