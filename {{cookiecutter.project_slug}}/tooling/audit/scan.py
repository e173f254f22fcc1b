"""pip-audit over every pinned version: one outcome per (name, version).

pip-audit reads the tiers' PEP 751 locks with its own reader (`--locked` on a
folder holding them): every package of a pylock counts, whatever its marker
says about the interpreter running the audit, and a name pinned at two
versions is simply two packages. Only as many tiers' pylocks as it takes to
hold every pinned version go in, so no version is asked about twice without need.

pip-audit runs without `--strict`, which would stop at the first package it
cannot check; the policy applies strictness to the whole report instead, so
every unchecked version is named.

pip-audit runs through `tooling.audit.guarded`, with the Python running this
audit (so it is found without activating the environment): a service answer
that is not a vulnerability report, an HTTP error or a request that got no
answer stops it, and that is reported here as the service's problem (exit 3);
no more versions count as checked than answers passed that check.
The OSV URL reaches it in the environment, not on its command line, where
other users of the machine could read its credentials.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

import tooling
from tooling.audit import (
    EXIT_CONFIG,
    EXIT_FINDINGS,
    EXIT_SERVICE,
    AuditError,
    Runner,
    clip,
    run_command,
)
from tooling.audit.locks import PinnedVersion, covering, version_key
from tooling.audit.service import Service

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
    folder: Path, output: Path, service: Service, ledger: Path, timeout: int | None = None
) -> list[str]:
    """pip-audit, guarded, over the pylocks in `folder`: its JSON report goes to `output`."""
    argv = [sys.executable, "-m", "tooling.audit.guarded", str(ledger), service.name, "--"]
    argv += ["--locked", str(folder)]
    argv += ["--progress-spinner", "off", "-f", "json", "--aliases", "on", "--desc", "on"]
    argv += ["-o", str(output), "-s", service.name]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    return argv


def pip_audit_env(env: Mapping[str, str], service: Service) -> dict[str, str]:
    """The environment pip-audit runs in: the OSV URL, and `tooling` importable."""
    ours = {key: value for key, value in env.items() if not key.startswith("PIP_AUDIT_")}
    if service.osv_url:
        ours["PIP_AUDIT_OSV_URL"] = service.osv_url
    project = str(Path(tooling.__file__).resolve().parent.parent)
    ours["PYTHONPATH"] = os.pathsep.join(filter(None, [project, env.get("PYTHONPATH")]))
    return ours


def scan(
    pins: Sequence[PinnedVersion],
    pylocks: Mapping[str, Path],
    service: Service,
    *,
    env: Mapping[str, str],
    run: Runner = run_command,
    timeout: int | None = None,
) -> list[Outcome]:
    """Ask pip-audit about every pin, from the tiers' `pylocks`; AuditError when it gave no report."""
    if importlib.util.find_spec("pip_audit") is None:
        raise AuditError(
            f"pip-audit is not installed beside {sys.executable}; "
            "run the check through its nox session (nox -s audit)"
        )
    with tempfile.TemporaryDirectory(prefix="audit-") as scratch:
        folder = Path(scratch) / "locks"
        folder.mkdir()
        for tier in covering(pins):
            shutil.copyfile(pylocks[tier], folder / pylocks[tier].name)
        output, ledger_path = Path(scratch) / "pip-audit.json", Path(scratch) / "answers.json"
        argv = pip_audit_argv(folder, output, service, ledger_path, timeout)
        completed = run(argv, pip_audit_env(env, service))
        ledger = _read_json(ledger_path) or {}
        if "problem" in ledger:
            raise service_trouble(service, ledger)
        report = _read_json(output)
        if report is None or completed.returncode not in (0, 1):
            raise explain_failure(completed.returncode, completed.stderr)
    outcomes = outcomes_of(pins, report)
    require_answers(outcomes, ledger.get("answers", 0))
    return outcomes


def require_answers(outcomes: Sequence[Outcome], answers: int) -> None:
    """Every version pip-audit says it checked needs an answer the guard checked."""
    checked = sum(outcome.checked for outcome in outcomes)
    if answers < checked:
        raise AuditError(
            f"pip-audit reports {checked} pinned versions checked, but only {answers} of the "
            "service's answers went through the audit's check, so none of them counts; "
            "install the pip-audit of requirements/tools/audit.txt (nox -s audit does)",
            EXIT_CONFIG,
        )


def outcomes_of(pins: Sequence[PinnedVersion], report: Mapping[str, Any]) -> list[Outcome]:
    """Match pip-audit's report to the pins, by name and version (a pin it left out is named)."""
    dependencies = report.get("dependencies")
    if not isinstance(dependencies, list):
        raise AuditError("pip-audit wrote a report without a 'dependencies' list", EXIT_FINDINGS)
    by_version: dict[tuple[str, Any], dict[str, Any]] = {}
    skipped: dict[str, str] = {}  # pip-audit names a skipped package without its version
    for dependency in dependencies:
        if not isinstance(dependency, dict):
            continue
        name = canonicalize_name(str(dependency.get("name", "")))
        if "skip_reason" in dependency:
            skipped[name] = str(dependency["skip_reason"])
        else:
            by_version[version_key(name, str(dependency.get("version", "")))] = dependency
    outcomes = []
    for pin in pins:
        found = by_version.get(pin.key)
        if found is not None:
            outcomes.append(Outcome(pin, tuple(_advisory(v) for v in found.get("vulns", []))))
        else:
            outcomes.append(Outcome(pin, skipped=skipped.get(pin.name, MISSING)))
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


def service_trouble(service: Service, ledger: Mapping[str, Any]) -> AuditError:
    """The problem `tooling.audit.guarded` met, as the service's (exit 3)."""
    what = f"{ledger.get('problem')} ({ledger.get('url')})"
    return AuditError(
        f"the {service.name} vulnerability service {what}, so nothing was checked", EXIT_SERVICE
    )


_FATAL = re.compile(r"^ERROR:pip_audit\._cli:(?P<message>.*)$", re.MULTILINE)
_CRASH = re.compile(r"^(?P<exception>[A-Za-z_][\w.]*)(?::|$)", re.MULTILINE)


def explain_failure(returncode: int, stderr: str) -> AuditError:
    """One line for a pip-audit run that gave no report, never its traceback."""
    fatal = [m["message"].strip() for m in _FATAL.finditer(stderr)]
    if fatal:
        return AuditError(f"pip-audit failed (exit {returncode}): {clip(fatal[-1])}", EXIT_FINDINGS)
    if "Traceback (most recent call last)" in stderr:
        crashes = [m["exception"] for m in _CRASH.finditer(stderr.rpartition("Traceback")[2])]
        name = crashes[-1].rpartition(".")[2] if crashes else "an exception"
        return AuditError(
            f"pip-audit stopped with an error of its own ({name}), so nothing was checked; "
            "run it by hand to see where",
            EXIT_FINDINGS,
        )
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    detail = lines[-1] if lines else "no output"
    return AuditError(f"pip-audit failed (exit {returncode}): {clip(detail)}", EXIT_FINDINGS)
