"""The full lock: bring every lock up to date atomically (`nox -s lock` runs it through cli)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from tooling import lockfile, pylock, without_secrets
from tooling.atomic import write_all
from tooling.cooldown import Cooldown
from tooling.interpreter import running_python
from tooling.lock.drift import generated_orphans, tier_staleness
from tooling.lock.groups import adopt, resolve_stale_groups, shared_pins
from tooling.lock.headers import body_damage, lock_damage, read_lock, stale_reasons
from tooling.lock.inputs import (
    PACKAGE_NAME,
    Inputs,
    LockError,
    project_groups,
    read_inputs,
    unique,
)
from tooling.lock.pylocks import pylock_is_current, tier_pylocks, union_files
from tooling.lock.render import Union, render_tier, render_union
from tooling.lock.resolve import listed_installable, tier_closures
from tooling.lock.uv import BuildPython, Listing, Runner, YankedPins, run_uv
from tooling.lockfile import Pin
from tooling.moves import Changes, compare, versions_by_name
from tooling.project import (
    Project,
    pyproject_rewrites,
)
from tooling.tiers import SolveGroup


@dataclass
class LockResult:
    resolved: bool
    written: list[Path]
    removed: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)


def lock(
    project: Project,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    run: Runner = run_uv,
    report: Path | None = None,
    skip_cooldown: Sequence[str] = (),
) -> LockResult:
    """Bring every lock up to date; resolve only the solve groups whose inputs changed.

    With `report`, what moved is written there as Markdown, in the same all-or-nothing
    write as the locks. `skip_cooldown` packages are upgraded without the cooldown.
    """
    for option, packages in (
        ("--upgrade-package", upgrade_packages),
        ("--skip-cooldown", skip_cooldown),
    ):
        for package in packages:
            if not PACKAGE_NAME.fullmatch(package):
                raise LockError(
                    f"{option} {without_secrets(package)!r} is not a package name: "
                    "give one name like numpy (repeat the option for several)"
                )
    cooling = Cooldown.of(project, skip_cooldown)
    if skip_cooldown and not cooling.age:
        raise LockError(
            "--skip-cooldown: this project sets no cooldown ([tool.lockstep] cooldown); "
            "use --upgrade-package instead"
        )
    upgrade_packages = unique([*upgrade_packages, *skip_cooldown])
    inputs = read_inputs(project)
    groups = project_groups(project, inputs)
    owner_of = {tier: group.name for group in groups for tier in group.members}
    yanked = YankedPins()
    running = running_python(project.python_version)
    run = BuildPython(yanked.watching(run), project.python_version, running).around()
    notes: list[str] = []
    texts: dict[str, str] = {}
    seeds: dict[str, str | None] = {}
    pins: dict[str, list[Pin]] = {}
    todo: list[SolveGroup] = []
    for group in groups:
        union_name = f"requirements/{group.union}.txt"
        text = read_lock(project.requirements_dir / f"{group.union}.txt")
        damage = body_damage(text) if text is not None else "is missing"
        if damage and text is not None:
            notes.append(
                f"{union_name} {damage}: resolving again instead of deriving tiers from it"
            )
        seeds[group.name] = None if damage else text
        group_inputs = inputs.files(group.members)
        if (
            text is None
            or damage
            or upgrade
            or upgrade_packages
            or stale_reasons(project, inputs, union_name, text, group_inputs)
        ):
            todo.append(group)
        else:
            texts[group.name] = text
            pins[group.name] = list(lockfile.parse(text, union_name).pins)
    previous = {name: text for name, text in seeds.items() if text is not None}
    listing: Listing = {}
    resolved = resolve_stale_groups(
        project,
        inputs,
        groups,
        todo,
        previous,
        pins,
        upgrade,
        upgrade_packages,
        run,
        listing,
        cooling,
    )
    listed_groups = list_kept_groups(project, inputs, groups, resolved, texts, pins, listing, run)
    for group in groups:
        notes += drop_unlisted_hashes(project, group, pins, listing)
    for _ in groups:  # owners first, however deep the chain of shared tiers
        for group in groups:
            pins[group.name] = adopt(pins[group.name], shared_pins(inputs, group, owner_of, pins))
    locked = {pin.name for found in pins.values() for pin in found}
    missing = [name for name in upgrade_packages if canonicalize_name(name) not in locked]
    if missing:
        option = "--skip-cooldown" if set(missing) <= set(skip_cooldown) else "--upgrade-package"
        raise LockError(f"{option} {', '.join(missing)}: not locked in any tier")
    files = dict(pyproject_rewrites(project))
    unions: dict[str, Union] = {}
    for group in groups:
        path = project.requirements_dir / f"{group.union}.txt"
        kept = texts.get(group.name)
        if kept is not None and list(lockfile.parse(kept, path.name).pins) == pins[group.name]:
            files[path] = kept
        else:
            files[path] = render_union(project, inputs, group, pins[group.name])
        unions[group.name] = Union(f"requirements/{group.union}.txt", pins[group.name])
    tier_texts: dict[str, str] = {}
    for name in inputs.tiers:
        text = read_lock(project.requirements_dir / f"{name}.txt")
        if text and not tier_staleness(project, inputs, name, text, unions[owner_of[name]]):
            tier_texts[name] = text
    group_of = {name: group for group in groups for name in group.members}
    stale = {name: group_of[name] for name in inputs.tiers if name not in tier_texts}
    closures = tier_closures(project, inputs, stale, unions, run)
    for name, closure in closures.items():
        tier_texts[name] = render_tier(project, inputs, name, unions[owner_of[name]], closure)
    for name in inputs.tiers:
        files[project.requirements_dir / f"{name}.txt"] = tier_texts[name]
    files.update(
        tier_pylocks(project, inputs, group_of, files, tier_texts, listing, run, listed_groups)
    )
    orphans = generated_orphans(project, inputs, groups)
    changes = Changes(tiers=list(inputs.tiers))
    changes.cooldown = cooling.report(versions_by_name(p for found in pins.values() for p in found))
    changes.yanked = yanked.in_locks(
        {
            name: closures.get(name) or lockfile.parse(tier_texts[name], name).pins
            for name in inputs.tiers
        }
    )
    for name in [name for name in inputs.tiers if name in closures]:
        path = project.requirements_dir / f"{name}.txt"
        before = read_lock(path)
        after = versions_by_name(closures[name])
        if before is None:
            changes.first[name] = len(after)
        elif before != files[path]:
            last_good, note = last_good_pins(project, f"requirements/{name}.txt", before)
            notes += [note] if note else []
            if last_good is not None and (moved := compare(last_good, after)):
                changes.per_tier[name] = moved
    if report is not None:
        if report.resolve() in {path.resolve() for path in [*files, *orphans]}:
            raise LockError(f"--report {report}: that file is written by the lock; name another")
        files[report] = changes.markdown()
    written = write_all(files, remove=orphans)
    removed = [path for path in orphans if path in written]
    locks_written = [path for path in written if path not in removed and path != report]
    return LockResult(bool(resolved), locks_written, removed, notes, changes)


def list_kept_groups(
    project: Project,
    inputs: Inputs,
    groups: Sequence[SolveGroup],
    resolved: set[str],
    texts: Mapping[str, str],
    pins: Mapping[str, list[Pin]],
    listing: Listing,
    run: Runner,
) -> set[str]:
    """The groups that did not resolve but whose files uv lists now (offline first): those
    with a tier lock or pylock to write again and a hash the listing lacks. Returns their
    names (their union's hashes uv lists no file for are then dropped: see
    drop_unlisted_hashes)."""
    listed: set[str] = set()
    owner_of = {tier: group.name for group in groups for tier in group.members}
    for group in groups:
        if group.name in resolved or group.name not in texts:
            continue
        if all(digest in listing for pin in pins[group.name] for digest in pin.hashes):
            continue
        union = Union(f"requirements/{group.union}.txt", pins[group.name])
        tiers = [name for name in group.members if owner_of[name] == group.name]
        if all(tier_is_current(project, inputs, name, union) for name in tiers):
            continue
        listing.update(union_files(project, inputs, group, texts[group.name], run))
        listed.add(group.name)
    return listed


def tier_is_current(project: Project, inputs: Inputs, name: str, union: Union) -> bool:
    """Whether the lock would keep a tier's `.txt` and pylock as they are (for this union)."""
    text = read_lock(project.requirements_dir / f"{name}.txt")
    if text is None or tier_staleness(project, inputs, name, text, union):
        return False
    current = read_lock(pylock.path_of(project.requirements_dir, name))
    return current is not None and pylock_is_current(current, name, text)


def drop_unlisted_hashes(
    project: Project, group: SolveGroup, pins: dict[str, list[Pin]], listing: Listing
) -> list[str]:
    """A group's pins without the hashes uv lists no installable file for (a lock from an
    older lockstep kept them, and no pylock can name their files); a note when any went."""
    before = pins[group.name]
    pins[group.name] = [listed_installable(pin, listing, project.python_minor) for pin in before]
    dropped = [
        f"{old.name} {old.version}"
        for old, new in zip(before, pins[group.name], strict=True)
        if old != new
    ]
    if not dropped:
        return []
    return [
        f"requirements/{group.union}.txt and its tiers: dropped the hashes uv lists no "
        f"installable file for, which an older lock kept ({', '.join(unique(dropped))})"
    ]


def committed_text(project: Project, source: str) -> str | None:
    """The file as the last commit has it (git), or None."""
    try:
        shown = subprocess.run(
            ["git", "show", f"HEAD:./{source}"],
            cwd=project.root,
            capture_output=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if shown.returncode != 0:
        return None
    return shown.stdout.decode("utf-8", errors="replace").replace("\r\n", "\n")


def last_good_pins(
    project: Project, source: str, text: str
) -> tuple[dict[str, str] | None, str | None]:
    """What a tier's lock pinned before this run, and a note when the lock on disk was damaged.

    A damaged lock is measured against its committed version when that one is sound;
    otherwise nothing is said to have moved in it (None).
    """
    damage = lock_damage(text, source)
    if damage is None:
        return versions_by_name(lockfile.parse(text, source).pins), None
    committed = committed_text(project, source)
    if committed is not None and lock_damage(committed, source) is None:
        note = f"{source} was damaged ({damage}): re-derived; what moved is against its last commit"
        return versions_by_name(lockfile.parse(committed, source).pins), note
    return None, f"{source} was damaged ({damage}): re-derived"
