"""Supply-chain checks for the hashed locks: pip-audit, safety and CycloneDX SBOMs.

Policy, in one place:

- pip-audit reads every tier lock as is (``--disable-pip``: the locks are already
  resolved and hashed, so nothing is installed or resolved) and always runs with
  ``--strict``: a package that could not be checked fails the audit.
- Each finding names the tiers whose lock holds the package.
- Accepted findings live in ``audit-allowlist.toml``, each with a reason and an
  expiry date. A malformed entry is a configuration error; an expired entry
  fails the audit until someone reviews it again; an entry that matches nothing
  is reported as stale.
- With a severity threshold, a finding whose advisory carries a severity below
  it is reported but does not fail. A finding without a severity always counts.

Exit codes, shared by every check here::

    0  clean
    1  findings (or a package that could not be checked, or an expired allowance)
    2  configuration error (bad allow-list, missing lock, unknown service, ...)
    3  the vulnerability service is unreachable or failing: nothing was checked

Run it as ``python -m tooling.audit {pip-audit,safety,sbom} --help``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tooling import ToolingError, tiers

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_CONFIG = 2
EXIT_SERVICE = 3

SERVICES = ("pypi", "osv", "esms")
DEFAULT_OSV_URL = "https://api.osv.dev/v1/query"
SEVERITY_LEVELS = ("low", "medium", "high", "critical")
ALLOWLIST_KEYS = frozenset({"id", "package", "reason", "expires"})
ADVISORY_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.:][A-Za-z0-9]+)+")

Runner = Callable[[Sequence[str], Mapping[str, str]], subprocess.CompletedProcess[str]]
RecordFetcher = Callable[[str], dict[str, Any] | None]


class AuditError(ToolingError):
    """A one-line reason the check could not give a verdict, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a tool, capturing its output; a missing executable is a configuration error."""
    try:
        return subprocess.run(
            list(argv), env=dict(env), capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise AuditError(
            f"{argv[0]} is not installed here; install it into this environment first"
        ) from None


# --- locks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LockEntry:
    """One requirement of a hashed lock."""

    name: str
    version: str | None
    marker: str | None
    hashes: tuple[str, ...]
    line: int


_REQUIREMENT = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*"
    r"(?:===?\s*(?P<version>[^\s;]+))?\s*(?:;\s*(?P<marker>.*))?"
)


def canonical_name(name: str) -> str:
    """PEP 503 normalised package name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(path: Path) -> list[LockEntry]:
    """The requirements of a lock (name, pinned version, marker, hashes)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise AuditError(f"cannot read lock {path}: {error.strerror}") from None
    entries = []
    for number, line in tiers.logical_lines(text):
        if line.startswith("-"):
            continue  # options such as --index-url; -e lines are left to pip-audit
        requirement, *options = re.split(r"\s+(?=--hash[=\s])", line)
        hashes = tuple(h for o in options for h in re.findall(r"--hash[=\s]+(\S+)", o))
        match = _REQUIREMENT.fullmatch(requirement.strip())
        if match is None or "@" in requirement:
            name = requirement.split("@")[0].strip() or requirement
            entries.append(LockEntry(canonical_name(name), None, None, hashes, number))
            continue
        entries.append(
            LockEntry(
                canonical_name(match["name"]),
                match["version"],
                (match["marker"] or "").strip() or None,
                hashes,
                number,
            )
        )
    return entries


def discover_locks(requirements_dir: Path, only: Iterable[str] = ()) -> dict[str, Path]:
    """Tier name -> lock path, parents first; every tier must have its lock."""
    graph = tiers.read_tiers(requirements_dir)
    wanted = list(only) or list(graph)
    unknown = [name for name in wanted if name not in graph]
    if unknown:
        raise AuditError(f"unknown tier(s) {', '.join(unknown)}; tiers are: {', '.join(graph)}")
    locks = {name: requirements_dir / f"{name}.txt" for name in graph if name in wanted}
    missing = [str(path) for path in locks.values() if not path.is_file()]
    if missing:
        raise AuditError(f"missing lock(s) {', '.join(missing)}: run `nox -s lock` first")
    return locks


def read_locks(locks: Mapping[str, Path]) -> dict[str, list[LockEntry]]:
    if not locks:
        raise AuditError("no locks to check")
    return {tier: parse_lock(path) for tier, path in locks.items()}


def tiers_holding(parsed: Mapping[str, list[LockEntry]], name: str, version: str) -> list[str]:
    """Tiers whose lock pins `name` at `version` (by name alone if no version matches)."""
    name = canonical_name(name)
    exact = [
        tier
        for tier, entries in parsed.items()
        if any(e.name == name and _same_version(e.version, version) for e in entries)
    ]
    return exact or [t for t, entries in parsed.items() if any(e.name == name for e in entries)]


def _same_version(pinned: str | None, reported: str) -> bool:
    if pinned is None:
        return False
    strip = re.compile(r"^v|(\.0+)+$")
    return strip.sub("", pinned.lower()) == strip.sub("", reported.lower())


def inconsistent_pins(parsed: Mapping[str, list[LockEntry]]) -> list[str]:
    """Packages pinned to different versions in different tiers (same marker)."""
    versions: dict[tuple[str, str | None], set[str | None]] = {}
    for entries in parsed.values():
        for entry in entries:
            versions.setdefault((entry.name, entry.marker), set()).add(entry.version)
    return sorted(name for (name, _), found in versions.items() if len(found) > 1)


# --- service ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    name: str
    osv_url: str | None = None

    def describe(self) -> str:
        return f"{self.name} at {self.osv_url}" if self.name == "osv" else self.name


def resolve_service(
    env: Mapping[str, str], service: str | None = None, osv_url: str | None = None
) -> Service:
    """The service pip-audit will ask: explicit values, then PIP_AUDIT_* env, then pypi."""
    name = (service or env.get("PIP_AUDIT_VULNERABILITY_SERVICE") or "pypi").strip().lower()
    if name not in SERVICES:
        raise AuditError(
            f"unknown vulnerability service {name!r} (from --service or "
            f"PIP_AUDIT_VULNERABILITY_SERVICE); choose one of {', '.join(SERVICES)}"
        )
    if name != "osv":
        if osv_url:
            raise AuditError("--osv-url only applies to the osv service; add --service osv")
        return Service(name)
    url = osv_url or env.get("PIP_AUDIT_OSV_URL") or DEFAULT_OSV_URL
    if not re.match(r"https?://[^/\s]+", url):
        raise AuditError(f"OSV URL {url!r} is not an http(s) URL")
    return Service("osv", url)


# --- allow-list ------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    """One accepted finding from the allow-list."""

    id: str
    reason: str
    expires: date
    package: str | None
    number: int  # position in the file, for messages

    def label(self) -> str:
        scope = f" for {self.package}" if self.package else ""
        return f"[[ignore]] #{self.number} ({self.id}{scope})"

    def matches(self, package: str, ids: Iterable[str]) -> bool:
        if self.package and canonical_name(self.package) != canonical_name(package):
            return False
        return self.id.upper() in {i.upper() for i in ids}


def load_allowlist(path: Path | None) -> list[Allowance]:
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
    entries = [_allowance(path, number, item) for number, item in enumerate(raw, start=1)]
    _reject_duplicates(path, entries)
    return entries


def _allowance(path: Path, number: int, item: object) -> Allowance:
    where = f"{path}: [[ignore]] #{number}"
    if not isinstance(item, dict):
        raise AuditError(f"{where} is not a table")
    if isinstance(item.get("id"), str):
        where += f" ({item['id']})"
    unknown = sorted(set(item) - ALLOWLIST_KEYS)
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
    return Allowance(advisory, reason.strip(), _expiry(where, item["expires"]), package, number)


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
        key = (entry.id.upper(), canonical_name(entry.package or ""))
        if key in seen:
            raise AuditError(f"{path}: {entry.label()} repeats {seen[key].label()}")
        seen[key] = entry


def today_utc() -> date:
    return datetime.now(UTC).date()


# --- severity --------------------------------------------------------------------------


@dataclass(frozen=True)
class Severity:
    level: str  # one of SEVERITY_LEVELS, or "none"
    score: float | None
    source: str  # the CVSS vector or the label it came from

    def rank(self) -> int:
        return SEVERITY_LEVELS.index(self.level) if self.level in SEVERITY_LEVELS else -1


_CVSS3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS3_PRIVILEGES = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.x base score of a vector such as CVSS:3.1/AV:N/AC:L/..."""
    parts = vector.strip().split("/")
    if not re.fullmatch(r"CVSS:3\.[01]", parts[0]):
        raise ValueError(f"not a CVSS v3 vector: {vector}")
    metrics = dict(part.split(":", 1) for part in parts[1:] if ":" in part)
    try:
        scope = metrics["S"]
        w = {key: table[metrics[key]] for key, table in _CVSS3_WEIGHTS.items()}
        privileges = _CVSS3_PRIVILEGES[scope][metrics["PR"]]
    except KeyError as error:
        raise ValueError(f"incomplete CVSS v3 vector {vector}: {error}") from None
    iss = 1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"])
    changed = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    impact = 6.42 * iss if scope == "U" else changed
    exploitability = 8.22 * w["AV"] * w["AC"] * privileges * w["UI"]
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _roundup(min(total, 10.0))


def _roundup(value: float) -> float:
    integer = round(value * 100_000)
    if integer % 10_000 == 0:
        return integer / 100_000
    return (math.floor(integer / 10_000) + 1) / 10


def level_for_score(score: float) -> str:
    if score == 0:
        return "none"
    if score < 4:
        return "low"
    if score < 7:
        return "medium"
    return "high" if score < 9 else "critical"


_LABELS = {"LOW": "low", "MODERATE": "medium", "MEDIUM": "medium", "HIGH": "high"}


def record_severity(record: Mapping[str, Any]) -> Severity | None:
    """Severity of an OSV record: its CVSS v3 vector, else its database label."""
    for item in record.get("severity") or []:
        if isinstance(item, dict) and item.get("type") == "CVSS_V3":
            try:
                score = cvss3_base_score(str(item.get("score", "")))
            except ValueError:
                continue
            return Severity(level_for_score(score), score, str(item["score"]))
    label = str((record.get("database_specific") or {}).get("severity", "")).upper()
    if label in _LABELS or label == "CRITICAL":
        return Severity(_LABELS.get(label, "critical"), None, label)
    return None


def fetch_record(url: str, timeout: float = 15) -> dict[str, Any] | None:
    """GET an OSV record; None when the service does not know the id."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: dict[str, Any] = json.load(response)
            return data
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise AuditError(
            f"the OSV service answered HTTP {error.code} for {url}; severities are unknown",
            EXIT_SERVICE,
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise AuditError(
            f"the OSV service is unreachable ({url}: {error}); severities are unknown",
            EXIT_SERVICE,
        ) from None


def vulns_url(osv_url: str) -> str | None:
    """https://host/v1/query -> https://host/v1/vulns (the record endpoint)."""
    base, _, last = osv_url.rstrip("/").rpartition("/")
    return f"{base}/vulns" if last == "query" and base else None


# --- findings and results --------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    tiers: tuple[str, ...]
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]
    description: str = ""
    severity: Severity | None = None
    allowed_by: Allowance | None = None
    expired_allowance: Allowance | None = None
    below_threshold: bool = False

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

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
    package: str
    version: str | None
    tiers: tuple[str, ...]
    reason: str


@dataclass
class AuditResult:
    """Everything one audit found, with its verdict."""

    tool: str
    service: str
    locks: dict[str, str]
    packages: int
    findings: list[Finding] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
    not_applicable: list[Unchecked] = field(default_factory=list)
    stale: list[Allowance] = field(default_factory=list)
    expired: list[Allowance] = field(default_factory=list)
    min_severity: str | None = None
    notes: list[str] = field(default_factory=list)
    checked_on: date = field(default_factory=today_utc)

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.fails]

    @property
    def exit_code(self) -> int:
        return EXIT_FINDINGS if self.failing or self.unchecked or self.expired else EXIT_OK

    def summary(self) -> str:
        locks = f"{len(self.locks)} lock{'s' if len(self.locks) != 1 else ''}"
        details = [
            f"checked {self.packages} packages in {locks} with {self.tool} via {self.service}"
        ]
        if allowed := sum(f.allowed_by is not None for f in self.findings):
            details.append(f"{allowed} allowed")
        if below := sum(f.below_threshold for f in self.findings):
            details.append(f"{below} below {self.min_severity}")
        if self.exit_code == EXIT_OK:
            return f"audit passed: no failing vulnerabilities ({'; '.join(details)})"
        problems = []
        if self.failing:
            packages = len({f.package for f in self.failing})
            problems.append(f"{len(self.failing)} vulnerabilities in {packages} package(s)")
        if self.unchecked:
            problems.append(f"{len(self.unchecked)} package(s) could not be checked")
        if self.expired:
            problems.append(f"{len(self.expired)} expired allow-list entry(ies)")
        return f"audit FAILED: {', '.join(problems)} ({'; '.join(details)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "service": self.service,
            "checked_on": self.checked_on.isoformat(),
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "min_severity": self.min_severity,
            "locks": self.locks,
            "packages": self.packages,
            "findings": [_finding_json(f) for f in self.findings],
            "unchecked": [_unchecked_json(u) for u in self.unchecked],
            "not_applicable": [_unchecked_json(u) for u in self.not_applicable],
            "allowlist": {
                "stale": [_allowance_json(a) for a in self.stale],
                "expired": [_allowance_json(a) for a in self.expired],
            },
            "notes": self.notes,
        }


def _allowance_json(entry: Allowance) -> dict[str, Any]:
    return {
        "id": entry.id,
        "package": entry.package,
        "reason": entry.reason,
        "expires": entry.expires.isoformat(),
        "entry": entry.number,
    }


def _finding_json(finding: Finding) -> dict[str, Any]:
    severity = finding.severity
    return {
        "package": finding.package,
        "version": finding.version,
        "tiers": list(finding.tiers),
        "id": finding.id,
        "aliases": list(finding.aliases),
        "fix_versions": list(finding.fix_versions),
        "description": finding.description,
        "severity": None
        if severity is None
        else {"level": severity.level, "score": severity.score, "source": severity.source},
        "fails": finding.fails,
        "status": finding.status(),
        "allowed_by": None if finding.allowed_by is None else _allowance_json(finding.allowed_by),
    }


def _unchecked_json(item: Unchecked) -> dict[str, Any]:
    return {
        "package": item.package,
        "version": item.version,
        "tiers": list(item.tiers),
        "reason": item.reason,
    }


def apply_allowlist(
    findings: list[Finding], entries: list[Allowance], today: date
) -> tuple[list[Finding], list[Allowance], list[Allowance]]:
    """Mark allowed findings; return (findings, stale entries, expired entries)."""
    active = [e for e in entries if e.expires >= today]
    expired = [e for e in entries if e.expires < today]
    used: set[int] = set()
    marked = []
    for finding in findings:
        allowed = next((e for e in active if e.matches(finding.package, finding.ids)), None)
        lapsed = next((e for e in expired if e.matches(finding.package, finding.ids)), None)
        if allowed is not None:
            used.add(allowed.number)
        marked.append(replace(finding, allowed_by=allowed, expired_allowance=lapsed))
    stale = [e for e in active if e.number not in used]
    return marked, stale, expired


def apply_threshold(findings: list[Finding], min_severity: str | None) -> list[Finding]:
    """Mark findings whose known severity is below the threshold."""
    if min_severity is None:
        return findings
    floor = SEVERITY_LEVELS.index(min_severity)
    return [
        replace(f, below_threshold=f.severity is not None and f.severity.rank() < floor)
        for f in findings
    ]


def add_severities(
    findings: list[Finding], service: Service, fetch: RecordFetcher = fetch_record
) -> tuple[list[Finding], list[str]]:
    """Look each advisory (or an alias) up on the OSV service for a severity."""
    base = vulns_url(service.osv_url) if service.osv_url else None
    if base is None:
        note = f"severities need the osv service; with {service.describe()} every finding counts"
        return findings, [note]
    cache: dict[str, Severity | None] = {}
    result = []
    for finding in findings:
        severity = None
        for advisory in finding.ids:
            if advisory not in cache:
                record = fetch(f"{base}/{advisory}")
                cache[advisory] = record_severity(record) if record else None
            if (severity := cache[advisory]) is not None:
                break
        result.append(replace(finding, severity=severity))
    return result, []


# --- pip-audit -------------------------------------------------------------------------


def pip_audit_argv(
    lock_paths: Sequence[Path],
    output: Path,
    service: Service,
    *,
    command: Sequence[str] = ("pip-audit",),
    timeout: int | None = None,
) -> list[str]:
    argv = [*command, "--strict", "--disable-pip", "--require-hashes"]
    for path in lock_paths:
        argv += ["-r", str(path)]
    argv += ["--progress-spinner", "off", "-f", "json", "--aliases", "on", "--desc", "on"]
    argv += ["-o", str(output), "-s", service.name]
    if service.osv_url:
        argv += ["--osv-url", service.osv_url]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    return argv


_SERVICE_TROUBLE = re.compile(
    r"requests\.exceptions\.|urllib3\.exceptions\.|pip_audit\._service\.interface\."
    r"(?:ServiceError|ConnectionError)|Tip: your network may be blocking|Could not connect to"
)
_INPUT_TROUBLE = re.compile(
    r"does not contain a hash|is not pinned|duplicate requirements|invalid requirements input"
    r"|contains invalid specifier|can only be used with"
)
_FATAL = re.compile(r"^ERROR:pip_audit\._cli:(?P<message>.*)$", re.MULTILINE)


def explain_pip_audit_failure(
    returncode: int, stderr: str, service: Service, locks: Mapping[str, Path]
) -> AuditError:
    """Turn a pip-audit run that produced no report into one line and an exit code."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else f"exit status {returncode}, no output"
    fatal = [m["message"].strip() for m in _FATAL.finditer(stderr)]
    if _SERVICE_TROUBLE.search(stderr):
        detail = fatal[0] if fatal and not fatal[0].startswith("Tip:") else last
        return AuditError(
            f"vulnerability service {service.describe()} is unreachable or failing, so nothing "
            f"was checked (pip-audit: {_clip(detail)})",
            EXIT_SERVICE,
        )
    if returncode == 2 or _INPUT_TROUBLE.search(stderr):
        lock_list = ", ".join(str(p) for p in locks.values())
        return AuditError(
            f"pip-audit rejected the locks ({lock_list}): {_clip(fatal[-1] if fatal else last)}"
        )
    if fatal:
        return AuditError(
            f"pip-audit could not check a package, which fails the audit: {_clip(fatal[-1])}",
            EXIT_FINDINGS,
        )
    return AuditError(f"pip-audit failed (exit {returncode}): {_clip(last)}", EXIT_FINDINGS)


def _clip(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_pip_audit(
    lock_paths: Mapping[str, Path],
    service: Service,
    *,
    env: Mapping[str, str],
    run: Runner = run_command,
    command: Sequence[str] = ("pip-audit",),
    timeout: int | None = None,
) -> list[dict[str, Any]]:
    """One pip-audit run over the given locks; returns its 'dependencies' list."""
    with tempfile.TemporaryDirectory(prefix="audit-") as scratch:
        output = Path(scratch) / "pip-audit.json"
        argv = pip_audit_argv(
            list(lock_paths.values()), output, service, command=command, timeout=timeout
        )
        completed = run(argv, env)
        report = _read_json(output)
    if report is None or completed.returncode not in (0, 1):
        raise explain_pip_audit_failure(completed.returncode, completed.stderr, service, lock_paths)
    dependencies = report.get("dependencies")
    if not isinstance(dependencies, list):
        raise AuditError("pip-audit wrote a report without a 'dependencies' list", EXIT_FINDINGS)
    return dependencies


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def findings_from(
    dependencies: list[dict[str, Any]], parsed: Mapping[str, list[LockEntry]]
) -> tuple[list[Finding], list[Unchecked]]:
    findings, skipped = [], []
    for dep in dependencies:
        name, version = str(dep.get("name", "?")), str(dep.get("version", ""))
        holders = tuple(tiers_holding(parsed, name, version))
        if "skip_reason" in dep:
            skipped.append(Unchecked(name, version or None, holders, str(dep["skip_reason"])))
            continue
        for vuln in dep.get("vulns", []):
            findings.append(
                Finding(
                    package=canonical_name(name),
                    version=version,
                    tiers=holders,
                    id=str(vuln["id"]),
                    aliases=tuple(sorted(vuln.get("aliases", []))),
                    fix_versions=tuple(vuln.get("fix_versions", [])),
                    description=str(vuln.get("description", "")),
                )
            )
    return findings, skipped


def missing_from_report(
    dependencies: list[dict[str, Any]], parsed: Mapping[str, list[LockEntry]]
) -> tuple[list[Unchecked], list[Unchecked]]:
    """Lock entries pip-audit did not report: (unchecked, not applicable by marker)."""
    reported = {canonical_name(str(d.get("name", ""))) for d in dependencies}
    unchecked: dict[str, Unchecked] = {}
    not_applicable: dict[str, Unchecked] = {}
    for tier, entries in parsed.items():
        for entry in entries:
            if entry.name in reported:
                continue
            bucket = not_applicable if entry.marker else unchecked
            reason = (
                f"marker not true for this interpreter: {entry.marker}"
                if entry.marker
                else "listed in the lock but missing from pip-audit's report"
            )
            key = f"{entry.name}=={entry.version}"
            known = bucket.get(key)
            holders = (*known.tiers, tier) if known else (tier,)
            bucket[key] = Unchecked(entry.name, entry.version, holders, reason)
    return list(unchecked.values()), list(not_applicable.values())


def audit_locks(
    locks: Mapping[str, Path],
    *,
    allowlist: Path | None = None,
    service: str | None = None,
    osv_url: str | None = None,
    min_severity: str | None = None,
    per_tier: bool = False,
    env: Mapping[str, str] | None = None,
    run: Runner = run_command,
    pip_audit: Sequence[str] = ("pip-audit",),
    fetch: RecordFetcher = fetch_record,
    timeout: int | None = None,
    today: date | None = None,
) -> AuditResult:
    """Audit every lock with pip-audit and apply the project's policy.

    Raises AuditError (exit 2 or 3, sometimes 1) when no verdict is possible;
    otherwise returns the result, whose exit_code is 0 or 1.
    """
    env = dict(os.environ if env is None else env)
    today = today or today_utc()
    if min_severity is not None and min_severity not in SEVERITY_LEVELS:
        raise AuditError(f"unknown severity {min_severity!r}; use {', '.join(SEVERITY_LEVELS)}")
    parsed = read_locks(locks)
    entries = load_allowlist(allowlist)
    chosen = resolve_service(env, service, osv_url)
    notes = []
    conflicts = inconsistent_pins(parsed)
    if conflicts and not per_tier:
        per_tier = True
        notes.append(f"tiers pin different versions of {', '.join(conflicts)}: audited per tier")
    groups = [{t: p} for t, p in locks.items()] if per_tier else [dict(locks)]
    dependencies: list[dict[str, Any]] = []
    for group in groups:
        dependencies += run_pip_audit(
            group, chosen, env=env, run=run, command=pip_audit, timeout=timeout
        )
    dependencies = _unique(dependencies)
    findings, skipped = findings_from(dependencies, parsed)
    unchecked, not_applicable = missing_from_report(dependencies, parsed)
    if min_severity is not None and findings:
        findings, severity_notes = add_severities(findings, chosen, fetch)
        notes += severity_notes
    findings = apply_threshold(findings, min_severity)
    findings, stale, expired = apply_allowlist(findings, entries, today)
    return AuditResult(
        tool="pip-audit",
        service=chosen.describe(),
        locks={tier: str(path) for tier, path in locks.items()},
        packages=len({(d.get("name"), d.get("version")) for d in dependencies}),
        findings=sorted(findings, key=lambda f: (f.package, f.version, f.id)),
        unchecked=skipped + unchecked,
        not_applicable=not_applicable,
        stale=stale,
        expired=expired,
        min_severity=min_severity,
        notes=notes,
        checked_on=today,
    )


def _unique(dependencies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for dep in dependencies:
        seen.setdefault((str(dep.get("name")), str(dep.get("version"))), dep)
    return list(seen.values())


# --- output ----------------------------------------------------------------------------


def render_table(result: AuditResult) -> str:
    """A readable report: findings, then anything unchecked, stale or expired."""
    lines = []
    if result.findings:
        header = (
            "package",
            "version",
            "tiers",
            "advisory (aliases)",
            "fixed in",
            "severity",
            "status",
        )
        rows = [header] + [
            (
                f.package,
                f.version,
                ", ".join(f.tiers) or "?",
                f.id + (f" ({', '.join(f.aliases)})" if f.aliases else ""),
                ", ".join(f.fix_versions) or "no fix yet",
                _severity_text(f.severity),
                f.status(),
            )
            for f in result.findings
        ]
        lines += _columns(rows)
    for item in result.unchecked:
        where = ", ".join(item.tiers) or "?"
        lines.append(f"NOT CHECKED {item.package} {item.version or ''} [{where}]: {item.reason}")
    for entry in result.expired:
        lines.append(
            f"EXPIRED allow-list {entry.label()} on {entry.expires.isoformat()}: "
            "review the finding again, then extend or remove the entry"
        )
    for entry in result.stale:
        lines.append(f"stale allow-list {entry.label()}: matches no finding in these locks")
    for item in result.not_applicable:
        lines.append(f"not applicable here: {item.package} {item.version or ''} ({item.reason})")
    lines += [f"note: {note}" for note in result.notes]
    lines.append(result.summary())
    return "\n".join(lines)


def _severity_text(severity: Severity | None) -> str:
    if severity is None:
        return "unknown"
    return f"{severity.level} {severity.score}" if severity.score is not None else severity.level


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def write_report(data: Mapping[str, Any], path: Path) -> Path:
    """Write a JSON report atomically (sorted keys, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    scratch.replace(path)
    return path


# --- safety ----------------------------------------------------------------------------


SAFETY_OFFLINE = "safety==2.3.5"
SAFETY_ONLINE = "safety>=3"


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
        return SafetyPlan("scan", SAFETY_ONLINE, "SAFETY_API_KEY is set: safety scan")
    db = db or (Path(env["SAFETY_DB"]) if env.get("SAFETY_DB") else None)
    if db is not None:
        missing = [n for n in ("insecure.json", "insecure_full.json") if not (db / n).is_file()]
        if missing:
            raise AuditError(f"safety database {db} lacks {', '.join(missing)}")
        return SafetyPlan("check", SAFETY_OFFLINE, f"local database {db}: safety 2.3.5 check", db)
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
            "findings": [_finding_json(f) for f in self.findings],
        }


_SAFETY_EXITS = {
    65: (EXIT_CONFIG, "safety rejected the API key"),
    66: (EXIT_SERVICE, "safety's service is rate limiting this key"),
    67: (EXIT_CONFIG, "safety could not load the local database"),
    68: (EXIT_SERVICE, "safety could not fetch its database"),
    69: (EXIT_CONFIG, "safety's database is malformed"),
}


def safety_argv(
    plan: SafetyPlan, lock_paths: Sequence[Path], command: Sequence[str] = ("safety",)
) -> list[str]:
    if plan.mode == "check":
        argv = [*command, "check", "--db", str(plan.db)]
        for path in lock_paths:
            argv += ["-r", str(path)]
        return [*argv, "--json"]
    if plan.mode == "scan":
        targets = sorted({str(p.parent) for p in lock_paths})
        return [*command, "scan", "--target", targets[0], "--output", "json"]
    raise AuditError(f"safety has nothing to run in mode {plan.mode!r}")


def run_safety(
    locks: Mapping[str, Path],
    plan: SafetyPlan,
    *,
    require: bool = False,
    allowlist: Path | None = None,
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
    parsed = read_locks(locks)
    entries = load_allowlist(allowlist)
    env = dict(os.environ if env is None else env)
    if plan.mode == "check":
        env.pop("SAFETY_API_KEY", None)  # 2.3.5 would prefer the online database
    completed = run(safety_argv(plan, list(locks.values()), command), env)
    if completed.returncode in _SAFETY_EXITS:
        code, what = _SAFETY_EXITS[completed.returncode]
        raise AuditError(f"{what}: {_clip(completed.stderr or completed.stdout)}", code)
    if completed.returncode not in (0, 64):
        trouble = completed.stderr + completed.stdout
        code = EXIT_SERVICE if _SERVICE_TROUBLE.search(trouble) else EXIT_FINDINGS
        raise AuditError(f"safety failed (exit {completed.returncode}): {_clip(trouble)}", code)
    if plan.mode == "scan":
        verdict = EXIT_FINDINGS if completed.returncode == 64 else EXIT_OK
        word = "found vulnerabilities" if verdict else "found no known vulnerabilities"
        return SafetyResult("scan", verdict, f"safety scan {word}")
    findings = safety_findings(completed.stdout, parsed)
    findings, _, _ = apply_allowlist(findings, entries, today or today_utc())
    failing = [f for f in findings if f.fails]
    verdict = EXIT_FINDINGS if failing else EXIT_OK
    message = (
        f"safety 2.3.5 ({plan.db}): {len(failing)} failing finding(s), {len(findings)} in total"
    )
    return SafetyResult("check", verdict, message, findings)


def safety_findings(stdout: str, parsed: Mapping[str, list[LockEntry]]) -> list[Finding]:
    """Findings from `safety check --json` (2.x report)."""
    try:
        report = json.loads(stdout)
        vulns = report["vulnerabilities"]
    except (ValueError, KeyError, TypeError):
        raise AuditError(f"safety printed no JSON report: {_clip(stdout)}", EXIT_FINDINGS) from None
    findings = []
    for vuln in vulns:
        name, version = str(vuln["package_name"]), str(vuln["analyzed_version"])
        aliases = [f"pyup.io-{vuln['vulnerability_id']}"]
        if vuln.get("CVE"):
            aliases.append(str(vuln["CVE"]))
        cvss = ((vuln.get("severity") or {}).get("cvssv3")) or {}
        score = cvss.get("base_score")
        severity = (
            Severity(level_for_score(float(score)), float(score), "safety cvssv3")
            if score is not None
            else None
        )
        findings.append(
            Finding(
                package=canonical_name(name),
                version=version,
                tiers=tuple(tiers_holding(parsed, name, version)),
                id=str(vuln["vulnerability_id"]),
                aliases=tuple(aliases),
                fix_versions=tuple(vuln.get("fixed_versions") or ()),
                description=str(vuln.get("advisory", "")),
                severity=severity,
            )
        )
    return sorted(findings, key=lambda f: (f.package, f.version, f.id))


# --- SBOM ------------------------------------------------------------------------------


CYCLONEDX_SPEC = "1.6"


def sbom_argv(
    lock: Path,
    output: Path,
    *,
    command: Sequence[str] = ("cyclonedx-py",),
    pyproject: Path | None = None,
) -> list[str]:
    argv = [*command, "requirements", str(lock), "--output-reproducible"]
    argv += ["--spec-version", CYCLONEDX_SPEC, "--output-format", "JSON", "-o", str(output)]
    if pyproject is not None:
        argv += ["--pyproject", str(pyproject)]
    return argv


def sbom_problems(lock: Path, sbom: Path) -> list[str]:
    """Lock entries the SBOM lacks, or lists without all of their hashes."""
    try:
        components = json.loads(sbom.read_text(encoding="utf-8")).get("components", [])
    except (OSError, ValueError) as error:
        return [f"{sbom}: unreadable ({error})"]
    listed: dict[tuple[str, str], set[str]] = {}
    for component in components:
        key = (canonical_name(str(component.get("name", ""))), str(component.get("version", "")))
        hashes = listed.setdefault(key, set())
        for reference in component.get("externalReferences", []):
            hashes.update(h.get("content", "") for h in reference.get("hashes", []))
    problems = []
    for entry in parse_lock(lock):
        key = (entry.name, entry.version or "")
        if key not in listed:
            problems.append(f"{entry.name}=={entry.version} is missing")
            continue
        lacking = {h.split(":", 1)[-1] for h in entry.hashes} - listed[key]
        if lacking:
            problems.append(f"{entry.name}=={entry.version} lacks {len(lacking)} hash(es)")
    return problems


def write_sboms(
    locks: Mapping[str, Path],
    out_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    run: Runner = run_command,
    command: Sequence[str] = ("cyclonedx-py",),
    pyproject: Path | None = None,
) -> dict[str, Path]:
    """One CycloneDX JSON SBOM per tier (<out_dir>/<tier>.cdx.json), all or nothing."""
    env = dict(os.environ if env is None else env)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix=".sbom-", dir=out_dir) as scratch,
        ThreadPoolExecutor(max_workers=max(1, min(8, len(locks)))) as pool,
    ):
        jobs = {
            tier: pool.submit(
                _build_sbom, lock, Path(scratch) / f"{tier}.cdx.json", env, run, command, pyproject
            )
            for tier, lock in locks.items()
        }
        staged = {tier: job.result() for tier, job in jobs.items()}
        written = {}
        for tier, target in staged.items():
            written[tier] = out_dir / target.name
            shutil.move(str(target), written[tier])
    return written


def _build_sbom(
    lock: Path,
    target: Path,
    env: Mapping[str, str],
    run: Runner,
    command: Sequence[str],
    pyproject: Path | None,
) -> Path:
    completed = run(sbom_argv(lock, target, command=command, pyproject=pyproject), env)
    if completed.returncode != 0 or not target.is_file():
        detail = _clip(completed.stderr or completed.stdout or "no output")
        raise AuditError(f"cyclonedx-py failed for {lock}: {detail}", EXIT_FINDINGS)
    problems = sbom_problems(lock, target)
    if problems:
        raise AuditError(f"SBOM for {lock} is incomplete: {'; '.join(problems)}", EXIT_FINDINGS)
    return target


# --- command line ----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--requirements", type=Path, default=Path("requirements"), metavar="DIR")
    common.add_argument("--tier", action="append", default=[], help="only this tier (repeatable)")
    parser = argparse.ArgumentParser(
        prog="python -m tooling.audit",
        description="Supply-chain checks for the hashed locks.",
        epilog="Exit codes: 0 clean, 1 findings, 2 configuration error, 3 service unreachable.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    vulns = commands.add_parser("pip-audit", parents=[common], help="audit every lock")
    vulns.add_argument("--allowlist", type=Path, default=Path("audit-allowlist.toml"))
    vulns.add_argument(
        "--service", choices=SERVICES, help="default: $PIP_AUDIT_VULNERABILITY_SERVICE or pypi"
    )
    vulns.add_argument("--osv-url", help="default: $PIP_AUDIT_OSV_URL or the public OSV API")
    vulns.add_argument(
        "--min-severity", choices=SEVERITY_LEVELS, help="let findings known to be below pass"
    )
    vulns.add_argument("--per-tier", action="store_true", help="one pip-audit run per lock")
    vulns.add_argument("--timeout", type=int, help="seconds per request to the service")
    vulns.add_argument("--report", type=Path, default=Path("reports/audit.json"))

    safety = commands.add_parser("safety", parents=[common], help="second opinion from safety")
    safety.add_argument("--db", type=Path, help="local safety 2.3.5 database (default: $SAFETY_DB)")
    safety.add_argument("--require", action="store_true", help="fail when safety cannot run")
    safety.add_argument("--plan", action="store_true", help="print the safety to install and stop")
    safety.add_argument("--allowlist", type=Path, default=Path("audit-allowlist.toml"))
    safety.add_argument("--report", type=Path, default=Path("reports/safety.json"))

    sbom = commands.add_parser("sbom", parents=[common], help="CycloneDX SBOM per tier")
    sbom.add_argument("--out", type=Path, default=Path("sbom"))
    sbom.add_argument("--pyproject", type=Path, help="describe the project as the root component")
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = dict(os.environ if env is None else env)
    try:
        locks = discover_locks(args.requirements, args.tier)
        if args.command == "pip-audit":
            return _main_pip_audit(args, locks, env)
        if args.command == "safety":
            return _main_safety(args, locks, env)
        written = write_sboms(locks, args.out, env=env, pyproject=args.pyproject)
        print("\n".join(f"{tier}: {path}" for tier, path in written.items()))
        return EXIT_OK
    except AuditError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except ToolingError as error:  # e.g. a broken tier graph
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG


def _main_pip_audit(args: argparse.Namespace, locks: dict[str, Path], env: dict[str, str]) -> int:
    try:
        result = audit_locks(
            locks,
            allowlist=args.allowlist,
            service=args.service,
            osv_url=args.osv_url,
            min_severity=args.min_severity,
            per_tier=args.per_tier,
            env=env,
            timeout=args.timeout,
        )
    except AuditError as error:  # never leave an older, cleaner report in place
        failed = {"tool": "pip-audit", "exit_code": error.exit_code, "error": str(error)}
        write_report({**failed, "summary": f"audit could not run: {error}"}, args.report)
        raise
    write_report(result.to_json(), args.report)
    print(render_table(result))
    print(f"report: {args.report}")
    return result.exit_code


def _main_safety(args: argparse.Namespace, locks: dict[str, Path], env: dict[str, str]) -> int:
    plan = plan_safety(env, args.db)
    if args.plan:
        print(plan.requirement or "")
        return EXIT_OK
    result = run_safety(locks, plan, require=args.require, allowlist=args.allowlist, env=env)
    for finding in result.findings:
        aliases = ", ".join(finding.aliases)
        print(
            f"{finding.package} {finding.version} [{', '.join(finding.tiers)}] {finding.id} ({aliases}): {finding.status()}"
        )
    print(result.message)
    if plan.mode != "skip":
        write_report(result.to_json(), args.report)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
