"""The command line: `python -m tooling.audit {pip-audit,safety,sbom} --help`.

Each subcommand takes only its own options; the nox sessions pass them on
unchanged (`nox -s audit -- --min-severity high`, `nox -s safety -- --db DIR`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tooling import ToolingError
from tooling import summary as step_summary
from tooling.audit import (
    EXIT_CONFIG,
    EXIT_OK,
    AuditError,
    allowlist,
    locks,
    policy,
    report,
    safety,
    sbom,
)
from tooling.audit.service import SERVICES
from tooling.audit.severity import LEVELS


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--requirements", type=Path, default=Path("requirements"), metavar="DIR")
    common.add_argument("--tier", action="append", default=[], help="only this tier (repeatable)")
    listed = argparse.ArgumentParser(add_help=False)
    listed.add_argument("--allowlist", type=Path, default=Path("audit-allowlist.toml"))
    listed.add_argument(
        "--allowlist-max-days",
        type=int,
        default=allowlist.DEFAULT_MAX_DAYS,
        metavar="DAYS",
        help="refuse an allow-list expiry further ahead (default: %(default)s)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m tooling.audit",
        description="Supply-chain checks for the hashed locks.",
        epilog="Exit codes: 0 clean, 1 findings, 2 configuration error, 3 service problem.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    vulns = commands.add_parser(
        "pip-audit", parents=[common, listed], help="audit every pinned version"
    )
    vulns.add_argument(
        "--service", choices=SERVICES, help="default: $PIP_AUDIT_VULNERABILITY_SERVICE or pypi"
    )
    given = vulns.add_mutually_exclusive_group()
    given.add_argument("--osv-url", help="default: $PIP_AUDIT_OSV_URL or the public OSV API")
    given.add_argument(
        "--osv-url-env",
        metavar="NAME",
        help="take --osv-url from this environment variable, off the command line "
        "(where a login or token in it could be read)",
    )
    vulns.add_argument("--min-severity", choices=LEVELS, help="let findings known to be below pass")
    vulns.add_argument("--timeout", type=int, help="seconds per request to the service")
    vulns.add_argument("--report", type=Path, default=Path("reports/audit.json"))

    second = commands.add_parser("safety", parents=[common, listed], help="second opinion")
    second.add_argument(
        "--free-database",
        action="store_true",
        help="without SAFETY_API_KEY, run `safety check` on safety's free database "
        "(non-commercial use only, CC BY-NC-SA 4.0)",
    )
    second.add_argument(
        "--db", type=Path, help="a local copy of the free database (default: $SAFETY_DB)"
    )
    second.add_argument("--require", action="store_true", help="fail when safety cannot run")
    second.add_argument("--report", type=Path, default=Path("reports/safety.json"))

    sboms = commands.add_parser("sbom", parents=[common], help="CycloneDX SBOM per tier")
    sboms.add_argument("--out", type=Path, default=Path("sbom"))
    sboms.add_argument("--pyproject", type=Path, help="describe the project as the root component")
    return parser


def say(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = dict(os.environ if env is None else env)
    try:
        found = locks.discover_locks(args.requirements, args.tier)
        if args.command == "pip-audit":
            return _main_pip_audit(args, found, env)
        if args.command == "safety":
            return _main_safety(args, found, env)
        written = sbom.write_sboms(found, args.out, env=env, pyproject=args.pyproject, progress=say)
        print("\n".join(f"{tier}: {path}" for tier, path in written.items()))
        return EXIT_OK
    except AuditError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except ToolingError as error:  # a broken tier graph or lock
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG


def osv_url_given(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    if args.osv_url_env is None:
        return str(args.osv_url) if args.osv_url else None
    if not env.get(args.osv_url_env):
        raise AuditError(f"--osv-url-env {args.osv_url_env}: that variable is not set")
    return env[args.osv_url_env]


def _main_pip_audit(args: argparse.Namespace, found: dict[str, Path], env: dict[str, str]) -> int:
    try:
        result = policy.audit_locks(
            found,
            allowlist_path=args.allowlist,
            allowlist_max_days=args.allowlist_max_days,
            service=args.service,
            osv_url=osv_url_given(args, env),
            min_severity=args.min_severity,
            env=env,
            timeout=args.timeout,
        )
    except AuditError as error:  # never leave an older, cleaner report in place
        failed = {"tool": "pip-audit", "exit_code": error.exit_code, "error": str(error)}
        report.write_report({**failed, "summary": f"audit could not run: {error}"}, args.report)
        step_summary.append(f"## pip-audit\n\naudit could not run: {error}", env)
        raise
    report.write_report(report.to_json(result), args.report)
    step_summary.append(report.markdown(result), env)
    print(report.render_table(result))
    print(f"report: {args.report}")
    return result.exit_code


def _main_safety(args: argparse.Namespace, found: dict[str, Path], env: dict[str, str]) -> int:
    plan = safety.plan_safety(env, free_database=args.free_database, db=args.db)
    try:
        result = safety.run_safety(
            found,
            plan,
            require=args.require,
            allowlist_path=args.allowlist,
            allowlist_max_days=args.allowlist_max_days,
            env=env,
        )
    except AuditError as error:
        step_summary.append(f"## safety\n\nsafety could not run: {error}", env)
        raise
    for finding in result.findings:
        aliases = ", ".join(finding.advisory.aliases)
        tiers = ", ".join(finding.tiers)
        print(
            f"{finding.package} {finding.version} [{tiers}] {finding.id} ({aliases}): {finding.status()}"
        )
    print(result.message)
    if plan.mode != "skip":
        report.write_report(result.to_json(), args.report)
    step_summary.append(report.summary_section("safety", result.message, result.findings), env)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
