"""The accepted findings in `audit-allowlist.toml`: each with a reason and an expiry.

An expiry further ahead than `max_days` (the `audit-allowlist-max-days`
setting, one year by default) is refused, so "accepted forever" cannot be
written by accident.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from packaging.utils import canonicalize_name

from tooling.audit import AuditError

KEYS = frozenset({"id", "package", "reason", "expires"})
ADVISORY_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.:][A-Za-z0-9]+)+")
DEFAULT_MAX_DAYS = 365
SETTING = "audit-allowlist-max-days"


@dataclass(frozen=True)
class Allowance:
    """One accepted finding."""

    id: str
    reason: str
    expires: date
    package: str | None
    number: int  # position in the file, for messages

    def label(self) -> str:
        scope = f" for {self.package}" if self.package else ""
        return f"[[ignore]] #{self.number} ({self.id}{scope})"

    def matches(self, package: str, ids: Iterable[str]) -> bool:
        if self.package and canonicalize_name(self.package) != canonicalize_name(package):
            return False
        return self.id.upper() in {i.upper() for i in ids}


def today_utc() -> date:
    return datetime.now(UTC).date()


def load(
    path: Path | None, *, today: date | None = None, max_days: int = DEFAULT_MAX_DAYS
) -> list[Allowance]:
    """Read the allow-list; a missing file means nothing is allowed."""
    if path is None or not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise AuditError(f"{path}: not a readable TOML file: {error}") from None
    unknown = sorted(set(data) - {"ignore"})
    if unknown:
        raise AuditError(f"{path}: unknown key(s) {', '.join(unknown)}; only [[ignore]] tables")
    raw = data.get("ignore", [])
    if not isinstance(raw, list):
        raise AuditError(f"{path}: 'ignore' must be an array of tables ([[ignore]])")
    latest = (today or today_utc()) + timedelta(days=max_days)
    entries = [_allowance(path, n, item, latest, max_days) for n, item in enumerate(raw, start=1)]
    _reject_duplicates(path, entries)
    return entries


def _allowance(path: Path, number: int, item: object, latest: date, max_days: int) -> Allowance:
    where = f"{path}: [[ignore]] #{number}"
    if not isinstance(item, dict):
        raise AuditError(f"{where} is not a table")
    if isinstance(item.get("id"), str):
        where += f" ({item['id']})"
    unknown = sorted(set(item) - KEYS)
    if unknown:
        raise AuditError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key in ("id", "reason", "expires"):
        if key not in item:
            raise AuditError(f"{where}: missing '{key}'")
    advisory, reason, package = item["id"], item["reason"], item.get("package")
    if not isinstance(advisory, str) or not ADVISORY_ID.fullmatch(advisory):
        raise AuditError(f"{where}: 'id' must be an advisory id such as PYSEC-2019-217 or CVE-…")
    if not isinstance(reason, str) or not reason.strip():
        raise AuditError(f"{where}: 'reason' must say why the finding is accepted")
    if package is not None and (not isinstance(package, str) or not package.strip()):
        raise AuditError(f"{where}: 'package' must be a package name")
    expires = _expiry(where, item["expires"])
    if expires > latest:
        raise AuditError(
            f"{where}: 'expires' {expires.isoformat()} is more than {max_days} days ahead; "
            f"review it by {latest.isoformat()} at the latest (or raise {SETTING} "
            "under [tool.lockstep])"
        )
    return Allowance(advisory, reason.strip(), expires, package, number)


def _expiry(where: str, value: object) -> date:
    if isinstance(value, datetime):
        raise AuditError(f"{where}: 'expires' must be a date (YYYY-MM-DD), not a date-time")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise AuditError(f"{where}: 'expires' must be a date like 2025-06-30, got {value!r}")


def _reject_duplicates(path: Path, entries: list[Allowance]) -> None:
    seen: dict[tuple[str, str], Allowance] = {}
    for entry in entries:
        key = (entry.id.upper(), canonicalize_name(entry.package or ""))
        if key in seen:
            raise AuditError(f"{path}: {entry.label()} repeats {seen[key].label()}")
        seen[key] = entry
