"""Severities of advisories: CVSS 3 and 4 vectors scored with `cvss`, else the label.

Scores follow the qualitative bands CVSS defines (low < 4, medium < 7,
high < 9, critical). A record with no vector and no label has no severity,
and a finding without a severity always counts against a threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tooling.audit import EXIT_CONFIG, AuditError

LEVELS = ("low", "medium", "high", "critical")
_LABELS = {
    "LOW": "low",
    "MODERATE": "medium",
    "MEDIUM": "medium",
    "HIGH": "high",
    "CRITICAL": "critical",
}
# Newest CVSS first: OSV records often carry both, and 4.0 is the better measure.
_VECTOR_TYPES = ("CVSS_V4", "CVSS_V3")


@dataclass(frozen=True)
class Severity:
    level: str  # one of LEVELS, or "none"
    score: float | None
    source: str  # the CVSS vector or the label it came from

    def rank(self) -> int:
        return LEVELS.index(self.level) if self.level in LEVELS else -1

    def __str__(self) -> str:
        return f"{self.level} {self.score}" if self.score is not None else self.level


def level_for_score(score: float) -> str:
    if score == 0:
        return "none"
    if score < 4:
        return "low"
    if score < 7:
        return "medium"
    return "high" if score < 9 else "critical"


def score_vector(kind: str, vector: str) -> float | None:
    """The base score of a CVSS_V3 or CVSS_V4 vector; None when it is malformed."""
    try:
        # Imported here: only the audit session installs cvss; safety and sbom do not need it.
        import cvss
    except ImportError:
        raise AuditError(
            "the cvss package is not installed here; run the audit with `nox -s audit`",
            EXIT_CONFIG,
        ) from None
    try:
        if kind == "CVSS_V4":
            return float(cvss.CVSS4(vector).base_score)
        return float(cvss.CVSS3(vector).scores()[0])
    except cvss.CVSSError:
        return None


def record_severity(record: Mapping[str, Any]) -> Severity | None:
    """Severity of an OSV record: its CVSS 4 or 3 vector, else its database label."""
    entries = [item for item in record.get("severity") or [] if isinstance(item, dict)]
    for kind in _VECTOR_TYPES:
        for item in entries:
            if item.get("type") != kind:
                continue
            vector = str(item.get("score", ""))
            score = score_vector(kind, vector)
            if score is not None:
                return Severity(level_for_score(score), score, vector)
    label = str((record.get("database_specific") or {}).get("severity", "")).upper()
    if label in _LABELS:
        return Severity(_LABELS[label], None, label)
    return None
