"""The audit's table for people and its JSON report for machines.

The table has a row for every finding and every pinned version that could
not be checked; the summary counts pinned versions (one package locked at two
versions is two), so a reader can see that nothing was left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tooling import summary as step_summary
from tooling.audit import EXIT_OK
from tooling.audit.allowlist import Allowance
from tooling.audit.policy import AuditResult, Finding, Unchecked
from tooling.audit.severity import Severity

HEADER = ("package", "version", "tiers", "advisory (aliases)", "fixed in", "severity", "status")


def _plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def summary(result: AuditResult) -> str:
    names = len({pin.name for pin in result.pins})
    counted = (
        f"{_plural(len(result.pins), 'pinned version')} of {_plural(names, 'package')} "
        f"in {_plural(len(result.locks), 'lock')}, {result.checked} checked "
        f"with {result.tool} via {result.service}"
    )
    details = [counted]
    if allowed := sum(f.allowed_by is not None for f in result.findings):
        details.append(f"{allowed} allowed")
    if below := sum(f.below_threshold for f in result.findings):
        details.append(f"{below} below {result.min_severity}")
    if result.exit_code == EXIT_OK:
        return f"audit passed: no failing vulnerabilities ({'; '.join(details)})"
    problems = []
    if result.failing:
        versions = len({(f.package, f.version) for f in result.failing})
        problems.append(
            f"{_plural(len(result.failing), 'vulnerability', 'vulnerabilities')} in "
            f"{_plural(versions, 'pinned version')}"
        )
    if result.unchecked:
        problems.append(f"{_plural(len(result.unchecked), 'pinned version')} NOT checked")
    if result.expired:
        problems.append(
            _plural(len(result.expired), "expired allow-list entry", "expired allow-list entries")
        )
    return f"audit FAILED: {', '.join(problems)} ({'; '.join(details)})"


def _finding_row(finding: Finding) -> tuple[str, ...]:
    advisory = finding.advisory
    aliases = f" ({', '.join(advisory.aliases)})" if advisory.aliases else ""
    return (
        finding.package,
        finding.version,
        ", ".join(finding.tiers),
        advisory.id + aliases,
        ", ".join(advisory.fix_versions) or "no fix yet",
        _severity_text(finding.severity),
        finding.status(),
    )


def _unchecked_row(item: Unchecked) -> tuple[str, ...]:
    pin = item.pin
    return (
        pin.name,
        pin.version,
        ", ".join(pin.tiers),
        "-",
        "-",
        "-",
        f"NOT CHECKED: {item.reason}",
    )


def render_table(result: AuditResult) -> str:
    """Findings and unchecked versions in one table, then the allow-list and the summary."""
    lines = []
    rows = [_finding_row(f) for f in result.findings] + [
        _unchecked_row(u) for u in result.unchecked
    ]
    if rows:
        lines += _columns([HEADER, *rows])
    for entry in result.expired:
        lines.append(
            f"EXPIRED allow-list {entry.label()} on {entry.expires.isoformat()}: "
            "review the finding again, then extend or remove the entry"
        )
    for entry in result.stale:
        lines.append(f"stale allow-list {entry.label()}: matches no finding in these locks")
    lines += [f"note: {note}" for note in result.notes]
    lines.append(summary(result))
    return "\n".join(lines)


SUMMARY_HEADER = (
    "tier",
    "package",
    "version",
    "advisory",
    "severity",
    "fixed in",
    "allow-listed until",
)


def summary_section(
    title: str,
    verdict: str,
    findings: Sequence[Finding],
    unchecked: Sequence[Unchecked] = (),
    expired: Sequence[Allowance] = (),
) -> str:
    """A step-summary section: the verdict, then one row per finding and unchecked version."""
    rows = [
        (
            ", ".join(f.tiers),
            f.package,
            f.version,
            f.advisory.id,
            _severity_text(f.severity),
            ", ".join(f.advisory.fix_versions) or "no fix yet",
            f.allowed_by.expires.isoformat() if f.allowed_by else "",
        )
        for f in findings
    ]
    rows += [
        (", ".join(u.pin.tiers), u.pin.name, u.pin.version, f"NOT CHECKED: {u.reason}", "", "", "")
        for u in unchecked
    ]
    lines = [f"## {title}", "", verdict]
    if rows:
        lines += ["", *step_summary.table(SUMMARY_HEADER, rows)]
    lines += [
        f"- EXPIRED allow-list {entry.label()} on {entry.expires.isoformat()}" for entry in expired
    ]
    return "\n".join(lines)


def markdown(result: AuditResult) -> str:
    """The audit's step summary."""
    return summary_section(
        "pip-audit", summary(result), result.findings, result.unchecked, result.expired
    )


def _severity_text(severity: Severity | None) -> str:
    return "unknown" if severity is None else str(severity)


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def allowance_json(entry: Allowance) -> dict[str, Any]:
    return {
        "id": entry.id,
        "package": entry.package,
        "reason": entry.reason,
        "expires": entry.expires.isoformat(),
        "entry": entry.number,
    }


def finding_json(finding: Finding) -> dict[str, Any]:
    severity = finding.severity
    advisory = finding.advisory
    return {
        "package": finding.package,
        "version": finding.version,
        "tiers": list(finding.tiers),
        "id": advisory.id,
        "aliases": list(advisory.aliases),
        "fix_versions": list(advisory.fix_versions),
        "description": advisory.description,
        "severity": None
        if severity is None
        else {"level": severity.level, "score": severity.score, "source": severity.source},
        "fails": finding.fails,
        "status": finding.status(),
        "allowed_by": None if finding.allowed_by is None else allowance_json(finding.allowed_by),
    }


def to_json(result: AuditResult) -> dict[str, Any]:
    unchecked = {item.pin.key: item.reason for item in result.unchecked}
    return {
        "tool": result.tool,
        "service": result.service,
        "checked_on": result.checked_on.isoformat(),
        "exit_code": result.exit_code,
        "summary": summary(result),
        "min_severity": result.min_severity,
        "locks": result.locks,
        "pinned_versions": [
            {
                "package": pin.name,
                "version": pin.version,
                "tiers": list(pin.tiers),
                "markers": [m for m in pin.markers if m],
                "checked": pin.key not in unchecked,
                "unchecked_reason": unchecked.get(pin.key),
            }
            for pin in result.pins
        ],
        "findings": [finding_json(f) for f in result.findings],
        "allowlist": {
            "stale": [allowance_json(a) for a in result.stale],
            "expired": [allowance_json(a) for a in result.expired],
        },
        "notes": result.notes,
    }


def write_report(data: Mapping[str, Any], path: Path) -> Path:
    """Write a JSON report atomically (sorted keys, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    scratch.replace(path)
    return path
