"""The smoke test's proof that an environment is its lock.

tooling/inventory.py runs with the environment's own Python (in an image or a
venv) and reports what is installed; this module compares that report with
the tier's lock, read by tooling.lockfile, and with .python-version.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tooling import ToolingError, lockfile
from tooling.interpreter import python_matches

INVENTORY_SCRIPT = Path(__file__).with_name("inventory.py")


RECORD_PROBLEMS = {
    "changed": "does not match its RECORD hash",
    "missing": "is listed in RECORD but missing",
}


class SmokeError(ToolingError):
    pass


def chosen_tier(tier: str | None, names: Sequence[str]) -> str:
    """The tier named on the command line; none named is an error, not a quiet default."""
    if not tier:
        raise SmokeError(f"name the tier to smoke-test with --tier NAME: one of {', '.join(names)}")
    return tier


def run_captured(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def inventory_argv(python: str) -> list[str]:
    """Run tooling/inventory.py's text with `python`: nothing from the project on sys.path."""
    return [python, "-I", "-c", INVENTORY_SCRIPT.read_text(encoding="utf-8")]


def parse_inventory(output: str, where: str) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SmokeError(f"{where}: the inventory did not run: {output.strip()[-300:]!r}") from None
    return report


def same_version(installed: str, pinned: str) -> bool:
    try:
        return Version(installed) == Version(pinned)
    except InvalidVersion:
        return installed == pinned


def lock_problems(
    report: Mapping[str, Any],
    lock: lockfile.LockFile,
    lock_name: str,
    python_version: str,
    project_dist: tuple[str, str] | None = None,
) -> list[str]:
    """One line per way the environment differs from the lock (and .python-version)."""
    problems = []
    if not python_matches(str(report["python"]), python_version):
        problems.append(f"Python is {report['python']} but .python-version says {python_version}")
    environment = report["markers"]
    expected = {pin.name: pin for pin in lock.pins if pin.applies(environment)}
    installed: dict[str, str] = {}
    for dist in report["distributions"]:
        name: str = canonicalize_name(dist["name"])
        if name in installed:
            problems.append(f"{name} is installed twice ({installed[name]} and {dist['version']})")
        installed[name] = dist["version"]
    extra_allowed: dict[str, str] = {}
    if project_dist:
        extra_allowed[canonicalize_name(project_dist[0])] = project_dist[1]
    for name, version in sorted(installed.items()):
        if name in extra_allowed:
            if not same_version(version, extra_allowed[name]):
                problems.append(
                    f"{name} is {version}, expected the project's {extra_allowed[name]}"
                )
        elif name not in expected:
            problems.append(f"extra distribution {name} {version}: {lock_name} does not name it")
        elif not same_version(version, expected[name].version):
            problems.append(
                f"{name} is {version} but {lock_name} pins {expected[name].version} "
                f"(line {expected[name].line})"
            )
    for name, pin in sorted(expected.items()):
        if name not in installed:
            problems.append(
                f"missing distribution {name}=={pin.version} ({lock_name} line {pin.line})"
            )
    if project_dist and canonicalize_name(project_dist[0]) not in installed:
        problems.append(f"missing the project itself: {project_dist[0]} {project_dist[1]}")
    for problem in report["record_problems"]:
        name = canonicalize_name(problem["distribution"])
        if problem["problem"] == "no RECORD":
            problems.append(f"{name}: has no RECORD")
        elif problem["problem"].startswith("unreadable: "):
            reason = problem["problem"].removeprefix("unreadable: ")
            problems.append(f"{name}: RECORD {reason}")
        else:
            problems.append(f"{name}: {problem['file']} {RECORD_PROBLEMS[problem['problem']]}")
    for path in report["unlisted"]:
        problems.append(f"site-packages/{path} belongs to no installed distribution's RECORD")
    return problems


def check_environment(
    python: str,
    runner: Callable[[Sequence[str]], subprocess.CompletedProcess[str]],
    where: str,
    lock_path: Path,
    lock_name: str,
    python_version: str,
    project_dist: tuple[str, str] | None,
) -> list[str]:
    """Run the inventory with `python` through `runner` and compare it with the lock."""
    result = runner(inventory_argv(python))
    if result.returncode != 0:
        raise SmokeError(f"{where}: the inventory failed: {result.stderr.strip()[-300:]}")
    report = parse_inventory(result.stdout, where)
    problems = lock_problems(
        report, lockfile.read(lock_path, lock_name), lock_name, python_version, project_dist
    )
    if problems:
        raise SmokeError("\n".join(f"{where}: {problem}" for problem in problems))
    count = len(report["distributions"])
    return [
        f"Python {report['python']} (.python-version {python_version})",
        f"exactly {lock_name}: {count} distributions, every file matches its RECORD",
    ]
