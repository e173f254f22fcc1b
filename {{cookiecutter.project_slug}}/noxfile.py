"""Sessions for every concern; the logic lives in the tooling package.

Run `nox --list` to see them, `nox` to run the default ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # nox does not put the noxfile's folder on sys.path

from tooling import ToolingError, lock, project  # noqa: E402

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lock_check", "lint", "tests"]

# Supply-chain tools, pinned; safety 2.3.5 gets its own session because its
# pins clash with pip-audit's.
PIP_AUDIT = "pip-audit==2.10.1"
CYCLONEDX = "cyclonedx-bom==7.5.0"

try:
    PROJECT = project.load(ROOT)
except ToolingError as error:
    sys.exit(f"error: {error}")


def install_tier(session: nox.Session, tier: str) -> None:
    try:
        args, note = project.tier_install_args(PROJECT, tier)
    except ToolingError as error:
        session.error(str(error))
    if note:
        session.warn(note)
    session.install(*args)


@nox.session(python=PROJECT.python_minor)
def tests(session: nox.Session) -> None:
    """Run the test suite (pass pytest options after --)."""
    install_tier(session, PROJECT.dev_tier)
    session.install("--no-deps", "-e", ".")
    session.run("pytest", *session.posargs)


@nox.session(python=PROJECT.python_minor)
def lint(session: nox.Session) -> None:
    """Check style, formatting and types."""
    install_tier(session, PROJECT.dev_tier)
    session.install("--no-deps", "-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(name="lock", venv_backend="none")
def lock_(session: nox.Session) -> None:
    """Lock every tier with hashes (-- --check, --upgrade, --upgrade-package NAME)."""
    try:
        lock.main(PROJECT, session.posargs, log=session.log)
    except ToolingError as error:
        session.error(str(error))


@nox.session(name="lock_check", venv_backend="none")
def lock_check(session: nox.Session) -> None:
    """Fail when any lock is stale (the drift check CI runs); no network."""
    try:
        lock.main(PROJECT, ["--check"], log=session.log)
    except ToolingError as error:
        session.error(str(error))


@nox.session(python=PROJECT.python_minor)
def audit(session: nox.Session) -> None:
    """pip-audit every tier lock, strict (-- --service osv --osv-url URL, --min-severity high)."""
    session.install(PIP_AUDIT)
    arguments = list(session.posargs)
    threshold = PROJECT.settings.get("audit-min-severity")
    if threshold and "--min-severity" not in arguments:
        arguments += ["--min-severity", str(threshold)]
    session.notify("safety")
    session.run("python", "-m", "tooling.audit", "pip-audit", *arguments)


@nox.session(python=PROJECT.python_minor)
def safety(session: nox.Session) -> None:
    """Second opinion from safety: SAFETY_API_KEY, or a local database (SAFETY_DB / -- --db)."""
    arguments = list(session.posargs)
    if PROJECT.settings.get("safety-required") and "--require" not in arguments:
        arguments.append("--require")
    plan = session.run("python", "-m", "tooling.audit", "safety", "--plan", *arguments, silent=True)
    requirement = str(plan or "").strip()
    if requirement:
        session.install(requirement)
    session.run("python", "-m", "tooling.audit", "safety", *arguments)


@nox.session(python=PROJECT.python_minor)
def sbom(session: nox.Session) -> None:
    """A reproducible CycloneDX SBOM per tier in sbom/ (-- --tier NAME for one)."""
    session.install(CYCLONEDX)
    session.run(
        "python", "-m", "tooling.audit", "sbom", "--pyproject", "pyproject.toml", *session.posargs
    )
