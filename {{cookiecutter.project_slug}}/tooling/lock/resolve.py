"""One resolution: a solve group's union from a snapshot of its inputs, and each tier's closure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.utils import canonicalize_name

from tooling import distfiles, lockfile, pylock
from tooling.atomic import work_folder
from tooling.cooldown import Cooldown, index_urls, moved_back
from tooling.lock.headers import compile_options
from tooling.lock.inputs import (
    KEPT_CONSTRAINTS,
    SHARED_CONSTRAINTS,
    UNION_CONSTRAINTS,
    Inputs,
    Interrupted,
    LockError,
    settings_index_lines,
    snapshot,
    unique,
)
from tooling.lock.pylocks import listed_files
from tooling.lock.render import Union, pinned, union_constraints
from tooling.lock.uv import (
    Listing,
    Runner,
    compile_from_cache,
    explain_failure,
    mentions,
    resolved_pins,
    run_uninterrupted,
    unreachable,
    uv_reason,
)
from tooling.lockfile import Pin
from tooling.project import Project
from tooling.tiers import (
    INCLUDE,
    SolveGroup,
    ancestors,
    logical_lines,
)


@dataclass(frozen=True)
class Shared:
    """A pin a group must take from the group that owns the tier it comes from."""

    pin: Pin
    tier: str
    owner: str


def resolve_group(
    project: Project,
    inputs: Inputs,
    group: SolveGroup,
    workdir: Path,
    seed: str | None,
    shared: Sequence[Shared],
    upgrade: bool,
    upgrade_packages: Sequence[str],
    run: Runner,
    offline: bool,
    listing: Listing,
    cooling: Cooldown,
) -> list[Pin]:
    """Resolve one group's tiers at once from a snapshot of the inputs; return the pins.

    The files uv lists for the pins go into `listing` (only_installable); what the
    cooldown held back goes into `cooling` (tooling.cooldown).
    """
    tree = workdir / "inputs"
    snapshot(project, inputs, inputs.files(group.members), tree)
    output = workdir / "union.txt"
    if seed is not None and not upgrade:
        output.write_text(seed, encoding="utf-8")
    argv = [
        "pip",
        "compile",
        *(inputs.relative(inputs.tiers[name].path) for name in sorted(group.members)),
        *compile_options(project),
        "--generate-hashes",
        "--no-header",  # not --quiet: it would silence uv's warning of a yanked pin
        "--output-file",
        str(output),
    ]
    if shared:
        constraints = [pinned(item.pin) for item in shared]
        (tree / SHARED_CONSTRAINTS).write_text("\n".join(unique(constraints)) + "\n")
        argv += ["--constraint", SHARED_CONSTRAINTS]
    if upgrade:
        argv.append("--upgrade")
    for package in upgrade_packages:
        argv += ["--upgrade-package", package]
    if offline:
        argv.append("--offline")
    # the previous pins: the cooldown never moves one back, and looks up only what moved
    before = list(lockfile.parse(seed).pins) if cooling.age and seed is not None else []
    pins = resolve_union(project, inputs, group, argv, tree, output, before, shared, run, cooling)
    if cooling.age:
        note_held_back(project, inputs, group, before, pins, upgrade, upgrade_packages, cooling)
    return only_installable(project, inputs, group, pins, tree, output, run, listing)


def resolve_union(
    project: Project,
    inputs: Inputs,
    group: SolveGroup,
    argv: Sequence[str],
    tree: Path,
    output: Path,
    before: Sequence[Pin],
    shared: Sequence[Shared],
    run: Runner,
    cooling: Cooldown,
) -> list[Pin]:
    """uv's resolution of the group's union (with hashes), its pins never moved back by the
    cooldown; a failure is one line."""
    result = run_uninterrupted(run, [*argv, *cooling.options()], tree)
    if result.returncode != 0:
        if refusal := cooling.refusal(result.stderr):
            raise LockError(refusal)
        reason = uv_reason(result.stderr)
        for item in () if unreachable(reason) else shared:  # a network failure is no conflict
            if mentions(item.pin.name, reason):
                raise LockError(
                    f"solve group {group.name} cannot use {item.pin.name} {item.pin.version}, "
                    f"which group {item.owner} pins for the shared tier {item.tier}: {reason}"
                )
        raise LockError(explain_failure(result.stderr, project, inputs, group.closure))
    pins = resolved_pins(output, SHARED_CONSTRAINTS)
    if cooling.age:
        pins = never_moved_back(argv, tree, output, before, pins, run, cooling)
    return pins


def note_held_back(
    project: Project,
    inputs: Inputs,
    group: SolveGroup,
    before: Sequence[Pin],
    pins: Sequence[Pin],
    upgrade: bool,
    upgrade_packages: Sequence[str],
    cooling: Cooldown,
) -> None:
    """The pins the cooldown's report looks up: those this run was free to move."""
    direct = [
        requirement for name in group.closure for _, requirement in inputs.tiers[name].requirements
    ]
    # what could have been held back: everything on --upgrade, else what was asked
    # for (-P) and new direct requirements (new transitive ones are not looked up)
    free_to_move = {canonicalize_name(name) for name in upgrade_packages}
    free_to_move |= {canonicalize_name(r.name) for r in direct} - {p.name for p in before}
    indexes = index_urls(settings_index_lines(project), group_index_lines(inputs, group))
    cooling.note_candidates(
        [pin for pin in pins if upgrade or pin.name in free_to_move], direct, indexes
    )


def group_index_lines(inputs: Inputs, group: SolveGroup) -> list[str]:
    """The index lines of a group's tiers, as written (credentials included)."""
    lines: list[str] = []
    for name in group.closure:
        lines += inputs.tiers[name].index_lines
    return unique(lines)


def never_moved_back(
    argv: Sequence[str],
    tree: Path,
    output: Path,
    before: Sequence[Pin],
    pins: list[Pin],
    run: Runner,
    cooling: Cooldown,
) -> list[Pin]:
    """The pins, resolved again when the cooldown moved a pin back: the old pin is kept.

    The packages it moved are constrained to their old versions, the cooldown
    lifted for them only (from the pages just fetched, online if the cache lacks
    them). When that fails, the inputs themselves moved the pins: the first
    result stands.
    """
    moved = moved_back(before, pins)
    if not moved:
        return pins
    kept = [f"{name}=={version}" for name, version in moved.items()]
    (tree / KEPT_CONSTRAINTS).write_text("\n".join(kept) + "\n", encoding="utf-8")
    again = [*argv, "--constraint", KEPT_CONSTRAINTS, *cooling.options(lifted=moved)]
    result = run_uninterrupted(run, [*again, "--offline"], tree)
    if result.returncode != 0 and "--offline" not in argv:
        result = run_uninterrupted(run, again, tree)
    if result.returncode != 0:
        return pins
    cooling.kept.update(moved)
    return resolved_pins(output, SHARED_CONSTRAINTS, KEPT_CONSTRAINTS)


def only_installable(
    project: Project,
    inputs: Inputs,
    group: SolveGroup,
    pins: Sequence[Pin],
    tree: Path,
    resolution: Path,
    run: Runner,
    listing: Listing,
) -> list[Pin]:
    """The pins without hashes of wheels no Python in requires-python can install.

    uv names the files of each pinned version in a PEP 751 lock of the union's own
    file (hashes and all) as constraints, made offline from the pages just read:
    about 0.1 s. (A second uv resolving online at the same time as the union cost
    more: two uv processes at once double the index requests, and on some hosts
    their name lookups time out.)
    """
    listed = listed_files(project, inputs, group, tree, str(resolution), run)
    listing.update(pylock.by_hash(listed))
    return [without_uninstallable(pin, listed, project.python_minor) for pin in pins]


def without_uninstallable(pin: Pin, listed: distfiles.Files, python_minor: str) -> Pin:
    """The pin with only the hashes of files an allowed Python can install (all, if unlisted)."""
    if (pin.name, pin.version) not in listed:
        return pin
    keep = distfiles.installable_hashes(listed[pin.name, pin.version], python_minor)
    return with_hashes(pin, tuple(digest for digest in pin.hashes if digest in keep))


def listed_installable(pin: Pin, listing: Listing, python_minor: str) -> Pin:
    """The pin with only the hashes of files uv lists and an allowed Python can install (those
    uv lists, when it can install none): a lock written before such hashes were left out
    still has them, and its pylock could name no file for them. A pin none of whose hashes
    is listed is kept (its pylock cannot be written: the lock says so)."""
    files = [listing[digest] for digest in pin.hashes if digest in listing]
    keep = distfiles.installable_hashes(files, python_minor) or {
        digest for file in files for digest in file.hashes
    }
    return with_hashes(pin, tuple(digest for digest in pin.hashes if digest in keep))


def with_hashes(pin: Pin, hashes: tuple[str, ...]) -> Pin:
    """The pin with only these of its hashes (unchanged when none is left)."""
    if hashes == pin.hashes or not hashes:
        return pin
    lines = [f"    --hash={digest} \\" for digest in hashes]
    lines[-1] = lines[-1].removesuffix(" \\")
    return replace(pin, hashes=hashes, lines=(pin.lines[0], *lines))


def tier_closure(
    project: Project, inputs: Inputs, name: str, union: Sequence[Pin], workdir: Path, run: Runner
) -> list[Pin]:
    """The tier's own closure, extras and markers included, pinned exactly as the union pins it.

    uv compiles the tier's `.in` with the union's pins as constraints, so it only
    picks what the tier needs; offline first, from the pages the union was
    resolved from (online when the cache lacks them). Every pin keeps the
    union's hash lines.
    """
    tree = workdir / f"tier-{name}"
    snapshot(project, inputs, inputs.files([name]), tree)
    (tree / UNION_CONSTRAINTS).write_text(union_constraints(union), encoding="utf-8")
    output = tree / "tier.txt"
    result = compile_from_cache(
        project, inputs, [name], ["--constraint", UNION_CONSTRAINTS], output, run
    )
    if result.returncode != 0:
        raise LockError(
            explain_failure(result.stderr, project, inputs, ancestors(inputs.tiers, name))
        )
    by_version = {(pin.name, pin.version): pin for pin in union}
    closure = []
    for pin in resolved_pins(output, UNION_CONSTRAINTS):
        locked = by_version.get((pin.name, pin.version))
        if locked is None:
            raise LockError(
                f"requirements/{name}.txt: uv picked {pin.name} {pin.version}, which the union "
                "does not pin; run `nox -s lock -- --upgrade`"
            )
        requirement = pin.lines[0].removesuffix("\\").rstrip()
        closure.append(
            replace(
                locked,
                marker=pin.marker,
                via=pin.via,
                lines=(f"{requirement} \\", *locked.lines[1:]),
            )
        )
    return closure


def closure_key(inputs: Inputs, names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """What decides these tiers' closure: their input files that hold more than `-r` lines.

    Two tiers with one key compile to the same lock (sniper.in, only `-r base.in`, is base).
    """
    return tuple(
        (relative, inputs.digests[relative])
        for relative in inputs.files(names)
        if any(not INCLUDE.match(line) for _, line in logical_lines(inputs.texts[relative]))
    )


def tier_closures(
    project: Project,
    inputs: Inputs,
    stale: Mapping[str, SolveGroup],
    unions: Mapping[str, Union],
    run: Runner,
) -> dict[str, list[Pin]]:
    """{tier: its closure} for each stale tier (tier -> its group), uv processes in parallel.

    A tier that asks for everything its group asks for is its union; tiers that ask
    for the same (see closure_key) share one compile.
    """
    closures: dict[str, list[Pin]] = {}
    compiles: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for name, group in stale.items():
        key = closure_key(inputs, [name])
        if key == closure_key(inputs, group.members):
            closures[name] = list(unions[group.name].pins)
        else:
            compiles.setdefault(key, []).append(name)
    if not compiles:
        return closures
    with work_folder() as workdir:
        try:
            with ThreadPoolExecutor(max_workers=min(4, len(compiles))) as pool:
                futures = {
                    pool.submit(
                        tier_closure,
                        project,
                        inputs,
                        names[0],
                        unions[stale[names[0]].name].pins,
                        workdir,
                        run,
                    ): names
                    for names in compiles.values()
                }
                for future, names in futures.items():
                    closures.update(dict.fromkeys(names, future.result()))
        except KeyboardInterrupt:
            raise Interrupted("uv was interrupted: no lock was changed") from None
    return closures
