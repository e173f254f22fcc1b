"""pip-audit over every pinned version: one outcome per (name, version).

pip-audit reads a marker-free requirements input written here (`name==version`
lines, run with `--disable-pip --no-deps`: nothing is installed or resolved).
Markers are left out on purpose: pip-audit drops a line whose marker is false
for the interpreter running it, and a lock ships to every interpreter its
markers name. A name pinned at two versions goes into a second input, because
pip-audit refuses two pins of one name in one run.

pip-audit runs without `--strict`, which would stop at the first package it
cannot check; the policy applies strictness to the whole report instead, so
every unchecked version is named.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from tooling.audit import EXIT_FINDINGS, EXIT_SERVICE, AuditError, Runner, clip, run_command
from tooling.audit.locks import PinnedVersion, input_layers, version_key
from tooling.audit.service import TIMEOUT, Service, diagnose

MISSING = "missing from pip-audit's report"


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]
    description: str = ""

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


@dataclass(frozen=True)
class Outcome:
    """What pip-audit said about one pinned version: its advisories, or why it was skipped."""

    pin: PinnedVersion
    advisories: tuple[Advisory, ...] = ()
    skipped: str | None = None

    @property
    def checked(self) -> bool:
        return self.skipped is None


def pip_audit_argv(
    requirements: Path,
    output: Path,
    service: Service,
    *,
    command: Sequence[str] = ("pip-audit",),
    timeout: int | None = None,
) -> list[str]:
    argv = [*command, "--disable-pip", "--no-deps", "-r", str(requirements)]
    argv += ["--progress-spinner", "off", "-f", "json", "--aliases", "on", "--desc", "on"]
    argv += ["-o", str(output), "-s", service.name]
    if service.osv_url:
        argv += ["--osv-url", service.osv_url]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    return argv


def scan(
    pins: Sequence[PinnedVersion],
    service: Service,
    *,
    env: Mapping[str, str],
    run: Runner = run_command,
    command: Sequence[str] = ("pip-audit",),
    timeout: int | None = None,
) -> list[Outcome]:
    """Ask pip-audit about every pin; raises AuditError when it gave no report."""
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="audit-") as scratch:
        for number, layer in enumerate(input_layers(pins), start=1):
            requirements = Path(scratch) / f"pinned-{number}.txt"
            requirements.write_text("".join(f"{pin}\n" for pin in layer), encoding="utf-8")
            output = Path(scratch) / f"pip-audit-{number}.json"
            argv = pip_audit_argv(requirements, output, service, command=command, timeout=timeout)
            completed = run(argv, env)
            report = _read_json(output)
            if report is None or completed.returncode not in (0, 1):
                raise explain_failure(completed.returncode, completed.stderr, service, timeout)
            outcomes += outcomes_of(layer, report)
    return outcomes


def outcomes_of(layer: Sequence[PinnedVersion], report: Mapping[str, Any]) -> list[Outcome]:
    """Match pip-audit's report to the pins it was given (each name once per layer)."""
    dependencies = report.get("dependencies")
    if not isinstance(dependencies, list):
        raise AuditError("pip-audit wrote a report without a 'dependencies' list", EXIT_FINDINGS)
    by_name: dict[str, dict[str, Any]] = {}
    for dependency in dependencies:
        if isinstance(dependency, dict):
            by_name[canonicalize_name(str(dependency.get("name", "")))] = dependency
    outcomes = []
    for pin in layer:
        found = by_name.get(pin.name)
        if found is None:
            outcomes.append(Outcome(pin, skipped=MISSING))
        elif "skip_reason" in found:
            outcomes.append(Outcome(pin, skipped=str(found["skip_reason"])))
        elif version_key(pin.name, str(found.get("version", ""))) != pin.key:
            outcomes.append(Outcome(pin, skipped=f"pip-audit checked version {found['version']}"))
        else:
            outcomes.append(Outcome(pin, tuple(_advisory(v) for v in found.get("vulns", []))))
    return outcomes


def _advisory(vuln: Mapping[str, Any]) -> Advisory:
    return Advisory(
        id=str(vuln["id"]),
        aliases=tuple(sorted(str(a) for a in vuln.get("aliases", []))),
        fix_versions=tuple(str(v) for v in vuln.get("fix_versions", [])),
        description=str(vuln.get("description", "")),
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


_SERVICE_TROUBLE = re.compile(
    r"requests\.exceptions\.|urllib3\.exceptions\.|ServiceError|ConnectionError"
    r"|your network may be blocking|Could not connect to"
)
_FATAL = re.compile(r"^ERROR:pip_audit\._cli:(?P<message>.*)$", re.MULTILINE)


def explain_failure(
    returncode: int, stderr: str, service: Service, timeout: float | None = None
) -> AuditError:
    """One line for a pip-audit run that gave no report: service trouble is exit 3."""
    problem = diagnose(service, timeout or TIMEOUT)
    if problem is not None:
        return AuditError(f"{problem}, so nothing was checked", EXIT_SERVICE)
    if _SERVICE_TROUBLE.search(stderr):
        retry = "; it answers now, so try again" if service.can_be_probed else ""
        return AuditError(
            f"{service.subject()} failed while pip-audit asked it, so nothing was checked{retry}",
            EXIT_SERVICE,
        )
    fatal = [m["message"].strip() for m in _FATAL.finditer(stderr)]
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    detail = fatal[-1] if fatal else (lines[-1] if lines else f"exit {returncode}, no output")
    return AuditError(f"pip-audit failed (exit {returncode}): {clip(detail)}", EXIT_FINDINGS)
