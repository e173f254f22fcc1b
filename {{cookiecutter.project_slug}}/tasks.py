"""Invoke tasks for humans: short names for the nox sessions and project facts.

Run `invoke --list` to see them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import task
from invoke.context import Context
from invoke.exceptions import Exit

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from tooling import ToolingError, lock, project, tiers  # noqa: E402


def load_project() -> project.Project:
    try:
        return project.load(ROOT)
    except ToolingError as error:
        raise Exit(f"error: {error}", code=error.exit_code) from None


@task(name="tiers")
def show_tiers(c: Context) -> None:
    """Show the requirement tiers and what each one includes."""
    try:
        graph = tiers.read_tiers(load_project().requirements_dir)
    except ToolingError as error:
        raise Exit(f"error: {error}", code=error.exit_code) from None
    print("\n".join(tiers.describe(graph)))


@task
def test(c: Context) -> None:
    """Run the test suite (nox -s tests)."""
    c.run("nox -s tests", pty=sys.stdout.isatty())


@task
def lint(c: Context) -> None:
    """Check style, formatting and types (nox -s lint)."""
    c.run("nox -s lint", pty=sys.stdout.isatty())


@task(
    name="lock",
    iterable=["upgrade_package"],
    help={
        "check": "only check that every lock is current (no network)",
        "upgrade": "upgrade every package",
        "upgrade-package": "upgrade this package in every tier (repeatable)",
    },
)
def lock_(
    c: Context, check: bool = False, upgrade: bool = False, upgrade_package: list[str] | None = None
) -> None:
    """Lock every tier with hashes, or check the locks."""
    argv = ["--check"] if check else []
    argv += ["--upgrade"] if upgrade else []
    for name in upgrade_package or []:
        argv += ["--upgrade-package", name]
    try:
        lock.main(load_project(), argv)
    except ToolingError as error:
        raise Exit(f"error: {error}", code=error.exit_code) from None


@task
def audit(c: Context) -> None:
    """Audit every lock with pip-audit, then safety (nox -s audit)."""
    c.run("nox -s audit", pty=sys.stdout.isatty())


@task
def sbom(c: Context) -> None:
    """Write a CycloneDX SBOM per tier into sbom/ (nox -s sbom)."""
    c.run("nox -s sbom", pty=sys.stdout.isatty())
