"""The audit's settings under [tool.lockstep] in pyproject.toml, as command-line options.

| key                        | type                         | default |
|----------------------------|------------------------------|---------|
| `audit-min-severity`       | low, medium, high, critical  | none    |
| `audit-allowlist-max-days` | whole number of days, >= 1   | 365     |
| `safety-required`          | true or false                | false   |

The nox sessions turn them into options of `python -m tooling.audit`, so the
module itself reads only its command line; options given after `--` win.
"""

from __future__ import annotations

from collections.abc import Mapping

from tooling.audit import AuditError
from tooling.audit.allowlist import DEFAULT_MAX_DAYS
from tooling.audit.severity import LEVELS

MIN_SEVERITY = "audit-min-severity"
ALLOWLIST_MAX_DAYS = "audit-allowlist-max-days"
SAFETY_REQUIRED = "safety-required"
KEYS = (MIN_SEVERITY, ALLOWLIST_MAX_DAYS, SAFETY_REQUIRED)


def allowlist_max_days(settings: Mapping[str, object]) -> int:
    value = settings.get(ALLOWLIST_MAX_DAYS, DEFAULT_MAX_DAYS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AuditError(
            f"[tool.lockstep] {ALLOWLIST_MAX_DAYS} must be a whole number of days (1 or more), "
            f"got {value!r}"
        )
    return value


def settings_arguments(command: str, settings: Mapping[str, object]) -> list[str]:
    """Options that carry the project's settings to `python -m tooling.audit COMMAND`."""
    arguments: list[str] = []
    if command in ("pip-audit", "safety"):
        arguments += ["--allowlist-max-days", str(allowlist_max_days(settings))]
    threshold = settings.get(MIN_SEVERITY)
    if threshold is not None and threshold not in LEVELS:
        raise AuditError(
            f"[tool.lockstep] {MIN_SEVERITY} must be one of {', '.join(LEVELS)}, got {threshold!r}"
        )
    if command == "pip-audit" and threshold is not None:
        arguments += ["--min-severity", str(threshold)]
    required = settings.get(SAFETY_REQUIRED, False)
    if not isinstance(required, bool):
        raise AuditError(
            f"[tool.lockstep] {SAFETY_REQUIRED} must be true or false, got {required!r}"
        )
    if command == "safety" and required:
        arguments.append("--require")
    return arguments
