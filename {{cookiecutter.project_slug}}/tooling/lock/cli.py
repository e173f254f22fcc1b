"""`nox -s lock` / `invoke lock`: the command, its options and what it prints.

A lock with nothing to do (tooling.lock.fresh) returns before the modules that
resolve, render and check locks are imported: that is most of a no-op's time.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tooling.lock import fresh
from tooling.moves import Changes
from tooling.project import Project
from tooling.summary import append as step_summary

if TYPE_CHECKING:
    from tooling.lock.uv import Runner


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="nox -s lock --", description="Lock every tier with hashes, or check the locks."
    )
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    parser.add_argument(
        "--tools",
        action="store_true",
        help="lock the tools instead (requirements/tools/*.in, .github/cruft-requirements.in)",
    )
    parser.add_argument("--upgrade", "-U", action="store_true", help="upgrade every package")
    parser.add_argument(
        "--upgrade-package",
        "-P",
        action="append",
        default=[],
        metavar="NAME",
        help="upgrade NAME in every tier (repeatable)",
    )
    parser.add_argument(
        "--skip-cooldown",
        action="append",
        default=[],
        metavar="NAME",
        help="upgrade NAME ignoring the cooldown, this run only (a security fix; repeatable)",
    )
    parser.add_argument(
        "--report", metavar="PATH", help="also write what moved, per tier, as Markdown to PATH"
    )
    arguments = parser.parse_args(argv)
    updating = arguments.upgrade or arguments.upgrade_package or arguments.skip_cooldown
    if arguments.check and (updating or arguments.report):
        parser.error(
            "--check cannot be combined with --upgrade, --upgrade-package, --skip-cooldown "
            "or --report"
        )
    if arguments.tools and (arguments.check or arguments.report):
        parser.error("--tools cannot be combined with --check or --report")
    return arguments


def main(
    project: Project,
    argv: Sequence[str],
    log: Callable[[str], None] = print,
    run: Runner | None = None,
    unchanged: bool | None = None,
) -> None:
    """The lock command shared by nox and invoke; raises LockError when it fails.

    `run` runs uv (default: tooling.lock.uv.run_uv); `unchanged` is what
    fresh.load_project found when it read the project (None: look now).
    """
    arguments = parse_arguments(argv)
    if arguments.check:
        check_locks(project, log)
        return
    if arguments.tools:
        lock_tool_locks(project, arguments, log, run)
        return
    plain = not (
        arguments.upgrade
        or arguments.upgrade_package
        or arguments.skip_cooldown
        or arguments.report
    )
    if unchanged is None:
        unchanged = plain and fresh.unchanged(project)
    if plain and unchanged:
        log("inputs unchanged: nothing to resolve")
        log_changes(log, Changes(tiers=[]))
        return
    inputs = fresh.inputs_before_lock(project)
    lock_all(project, arguments, log, run)
    fresh.record(project, inputs)


def check_locks(project: Project, log: Callable[[str], None]) -> None:
    """The drift check: every problem logged, then one line of advice as the LockError."""
    from tooling.lock.drift import advice, check
    from tooling.lock.inputs import LockError

    problems = check(project)
    if problems:
        for problem in problems:
            log(problem)
        bullets = "\n".join(f"- {problem}" for problem in problems)
        step_summary(f"## Lock drift check failed\n\n{bullets}\n\n{advice(problems)}")
        raise LockError(advice(problems))
    log("locks are current: every tier matches its inputs and the union")


def lock_tool_locks(
    project: Project,
    arguments: argparse.Namespace,
    log: Callable[[str], None],
    run: Runner | None,
) -> None:
    """`--tools`: every tool lock compiled again under the cooldown, and what that changed."""
    from tooling.lock.tools import lock_tools
    from tooling.lock.uv import run_uv

    done = lock_tools(
        project,
        arguments.upgrade,
        arguments.upgrade_package,
        arguments.skip_cooldown,
        run or run_uv,
    )
    for name, version in sorted(done.kept.items()):
        log(f"kept {name} {version}: the cooldown never moves a pin back")
    for path in done.written:
        log(f"wrote {path.relative_to(project.root).as_posix()}")
    if not done.written:
        log("tool locks unchanged")


def lock_all(
    project: Project,
    arguments: argparse.Namespace,
    log: Callable[[str], None],
    run: Runner | None,
) -> None:
    """The full lock (tooling.lock.command), and what it wrote, moved and deleted."""
    from tooling.atomic import shown
    from tooling.lock.command import lock
    from tooling.lock.drift import orphan_reason
    from tooling.lock.uv import run_uv

    report = Path(arguments.report) if arguments.report else None
    result = lock(
        project,
        arguments.upgrade,
        arguments.upgrade_package,
        run or run_uv,
        report,
        arguments.skip_cooldown,
    )
    for note in result.notes:
        log(note)
    if not result.resolved:
        log("inputs unchanged: nothing to resolve")
    for path in result.written:
        log(f"wrote {path.relative_to(project.root).as_posix()}")
    for path in result.removed:
        log(f"deleted {shown(path)}: {orphan_reason(path)}")
    for use in project.removed_tier_entries:
        log(f"dropped {use.key} from pyproject.toml: requirements/{use.tier}.in is gone")
    if result.resolved and not result.written:
        log("resolved again: every lock already matched")
    log_changes(log, result.changes)
    if report is not None:
        log(f"wrote the report {report}")


def log_changes(log: Callable[[str], None], changes: Changes) -> None:
    """What moved, in the log and in the CI step summary."""
    for line in changes.lines():
        log(line)
    step_summary(changes.markdown())
