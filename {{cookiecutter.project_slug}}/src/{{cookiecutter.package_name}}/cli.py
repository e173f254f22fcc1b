"""Command line: `--version` and `health`{% if cookiecutter.with_container == "yes" %} (the container health check runs it){% endif %}."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Sequence

import {{ cookiecutter.package_name }}
from {{ cookiecutter.package_name }} import __version__

DISTRIBUTION = {{ cookiecutter.project_slug | py_str }}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def health_problems() -> list[str]:
    """Return what is wrong with this installation; empty when healthy."""
    problems = []
    try:
        installed = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        problems.append(f"distribution {DISTRIBUTION} is not installed")
    else:
        if installed != __version__:
            problems.append(f"installed metadata says {installed}, code says {__version__}")
    log_level = os.environ.get("LOG_LEVEL", "INFO").upper()
    if log_level not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL={log_level} is not one of {', '.join(LOG_LEVELS)}")
    return problems


def health() -> int:
    problems = health_problems()
    report = {
        "status": "unhealthy" if problems else "ok",
        "version": __version__,
        "python": platform.python_version(),
        "problems": problems,
    }
    print(json.dumps(report, sort_keys=True))
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=DISTRIBUTION, description={{ cookiecutter.package_name }}.__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("health", help="check the installation; exit 0 when healthy")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "health":
        return health()
    parser.print_help(sys.stderr)
    return 2
