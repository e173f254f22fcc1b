"""Solve groups resolved together: the owners of shared tiers first, each group's shared pins adopted."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from tooling import lockfile
from tooling.atomic import work_folder
from tooling.cooldown import Cooldown
from tooling.lock.headers import recorded
from tooling.lock.inputs import Inputs, Interrupted, LockError, index_lines
from tooling.lock.render import tier_origins, tier_packages
from tooling.lock.resolve import Shared, resolve_group
from tooling.lock.uv import Listing, Runner
from tooling.lockfile import Pin
from tooling.project import Project
from tooling.tiers import SolveGroup


def shared_pins(
    inputs: Inputs,
    group: SolveGroup,
    owner_of: Mapping[str, str],
    pins: Mapping[str, Sequence[Pin]],
) -> list[Shared]:
    """The pins of every tier in the group's closure that another group owns, as it locked them."""
    items = []
    for tier in group.closure:
        owner = owner_of[tier]
        if owner == group.name or owner not in pins:
            continue
        selected = tier_packages(pins[owner], tier_origins(inputs, tier))
        items += [Shared(pin, tier, owner) for pin in pins[owner] if pin.name in selected]
    return items


def constraint_key(shared: Sequence[Shared]) -> list[tuple[str, str, str]]:
    """What a group was (or would be) constrained with, comparable between rounds."""
    return sorted((item.pin.name, item.pin.version, item.pin.marker) for item in shared)


def versions_of(pins: Iterable[Pin], name: str) -> set[str]:
    return {pin.version for pin in pins if pin.name == name}


def disagrees(group_pins: Sequence[Pin], shared: Sequence[Shared]) -> bool:
    return any(
        versions_of(group_pins, item.pin.name)
        != versions_of((s.pin for s in shared), item.pin.name)
        for item in shared
    )


def adopt(group_pins: Sequence[Pin], shared: Sequence[Shared]) -> list[Pin]:
    """The group's pins with every shared package exactly as its owner locked it (hashes too)."""
    owned: dict[str, list[Pin]] = {}
    for item in shared:
        if item.pin not in owned.setdefault(item.pin.name, []):
            owned[item.pin.name].append(item.pin)
    adopted: list[Pin] = []
    for pin in group_pins:
        if pin.name not in owned:
            adopted.append(pin)
        elif not any(p.name == pin.name for p in adopted):
            adopted += [replace(p, via=pin.via) for p in owned[pin.name]]
    return adopted


@dataclass(frozen=True)
class Job:
    group: SolveGroup
    seed: str | None
    shared: list[Shared]
    tentative: bool = False  # when it fails, the group is simply tried again in the next round
    offline: bool = False


def resolve_groups(
    project: Project,
    inputs: Inputs,
    jobs: Sequence[Job],
    workdir: Path,
    upgrade: bool,
    upgrade_packages: Sequence[str],
    run: Runner,
    listing: Listing,
    cooling: Cooldown,
) -> dict[str, list[Pin]]:
    """Resolve groups concurrently, one uv process each.

    A tentative job that fails is left out of the result; any other failure is raised.
    """

    def one(job: Job) -> list[Pin]:
        folder = workdir / f"group-{job.group.name}-{'offline' if job.offline else 'online'}"
        shutil.rmtree(folder, ignore_errors=True)
        return resolve_group(
            project,
            inputs,
            job.group,
            folder,
            job.seed,
            job.shared,
            upgrade,
            upgrade_packages,
            run,
            job.offline,
            listing,
            cooling,
        )

    results: dict[str, list[Pin]] = {}
    failures: list[LockError] = []
    try:
        with ThreadPoolExecutor(max_workers=max(len(jobs), 1)) as pool:
            futures = [(job, pool.submit(one, job)) for job in jobs]
            for job, future in futures:
                try:
                    results[job.group.name] = future.result()
                except Interrupted:
                    raise
                except LockError as failure:
                    if not job.tentative:
                        failures.append(failure)
    except KeyboardInterrupt:
        raise Interrupted("uv was interrupted: no lock was changed") from None
    if failures:
        raise failures[0]
    return results


def resolve_stale_groups(
    project: Project,
    inputs: Inputs,
    groups: Sequence[SolveGroup],
    stale: Sequence[SolveGroup],
    previous: Mapping[str, str],
    pins: dict[str, list[Pin]],
    upgrade: bool,
    upgrade_packages: Sequence[str],
    run: Runner,
    listing: Listing,
    cooling: Cooldown,
) -> set[str]:
    """Resolve the stale groups into `pins`, owners of shared tiers before the groups using them.

    A group that shares tiers with a stale owner never waits for it: it resolves
    at the same time, constrained by the owner's previous pins when those still
    cover the shared tiers' inputs (and not everything is being upgraded), else
    unconstrained; it resolves again, constrained by the owner's new pins, only
    when its shared packages came out different from them. When the group
    itself resolved online in this run, that second round first runs offline,
    on the index pages just fetched; its result counts only when every package
    in it was fetched in this run by a group with the same index lines (else,
    or when it fails, it runs online).
    Returns the names of the groups resolved.
    """
    owner_of = {tier: group.name for group in groups for tier in group.members}
    indexes = {group.name: index_lines(project, inputs, group.closure) for group in groups}
    constrained_with: dict[str, list[tuple[str, str, str]]] = {}
    fetched: dict[str, set[str]] = {}  # per group: packages it resolved online in this run
    offline_next: set[str] = set()
    resolved: set[str] = set()
    todo = list(stale)

    def previous_pins_hold(group: SolveGroup, owner: str) -> bool:
        if upgrade or owner not in previous:
            return False
        shared = [tier for tier in group.closure if owner_of[tier] == owner]
        was = recorded(previous[owner]).inputs
        return all(was.get(path) == inputs.digests[path] for path in inputs.files(shared))

    def fetched_for(group: str) -> set[str]:
        same_index = [name for name in fetched if indexes[name] == indexes[group]]
        return set().union(*(fetched[name] for name in same_index))

    if not todo:
        return resolved
    with work_folder() as workdir:
        for _ in range(3 * len(groups) + 1):
            if not todo:
                return resolved
            pending = {group.name for group in todo}
            jobs: list[Job] = []
            for group in todo:
                owners = {owner_of[tier] for tier in group.closure} & (pending - {group.name})
                known = {name: found for name, found in pins.items() if name not in pending}
                for owner in owners:
                    if previous_pins_hold(group, owner):
                        known[owner] = list(lockfile.parse(previous[owner]).pins)
                shared = shared_pins(inputs, group, owner_of, known)
                constrained_with[group.name] = constraint_key(shared)
                offline = group.name in offline_next
                tentative = bool(owners) or offline
                jobs.append(Job(group, previous.get(group.name), shared, tentative, offline))
            done = resolve_groups(
                project, inputs, jobs, workdir, upgrade, upgrade_packages, run, listing, cooling
            )
            for job in jobs:
                name = job.group.name
                if name not in done:
                    continue
                pinned = {pin.name for pin in done[name]}
                if not job.offline:
                    fetched.setdefault(name, set()).update(pinned)
                elif not pinned <= fetched_for(name):
                    del done[name]
            offline_next.clear()
            pins.update(done)
            resolved |= set(done)
            remaining = [group for group in todo if group.name not in done]
            final = {
                name: found
                for name, found in pins.items()
                if name not in {g.name for g in remaining}
            }
            todo = remaining
            for group in groups:
                if group in remaining or group.name not in pins:
                    continue
                shared = shared_pins(inputs, group, owner_of, final)
                constraints_changed = constrained_with.get(group.name) != constraint_key(shared)
                if disagrees(pins[group.name], shared) and constraints_changed:
                    todo.append(group)
                    if group.name in fetched:  # else its own pages are not fresh: online
                        offline_next.add(group.name)
    names = ", ".join(group.name for group in todo)
    raise LockError(
        f"solve groups {names} keep moving each other's shared pins: each includes a tier of "
        "another; put those tiers in one group"
    )
