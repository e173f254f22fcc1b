"""Hashed, consistent, incremental and atomic locks for every tier.

How it works:
1. Every input (the `.in` files and the `-c` files they name) is read once
   and digested once. uv resolves the union of all tiers from a snapshot of
   exactly those bytes in a temporary folder, with hashes, into
   requirements/_union.txt (the previous union seeds it, so unchanged
   packages keep their pins). Hashes of wheels that no Python allowed by
   requires-python can install are left out (tooling.distfiles).
2. Each stale tier's lock is its own closure: uv compiles the tier's `.in`
   with the union's pins as constraints (offline first, from the pages the
   union came from), so extras and markers decide what enters it, and every
   pin keeps the union's version and hash lines. A package shared by two
   tiers therefore has the same version and hashes in both.
3. Every lock's header records a digest of each input file's requirement
   lines (comments do not count), of the compile options and of its own
   body; a tier's header also records a digest of how the union pins its
   packages. A cut or edited union is never trusted: it is resolved again
   instead of being copied into tiers; a tier whose packages did not move in
   the union is kept byte for byte.
4. The drift check recomputes all of that without network, checks every tier
   pin against the union and every requirement of every `.in` against its
   tier's pins.
5. Each tier also gets requirements/pylock.<tier>.toml (PEP 751, tooling.pylock):
   the same pins, markers and hashes, with the file each hash names (from
   uv's listing of this run, or offline from the union when nothing was
   resolved). It records a digest of its tier lock's body and of its own.
6. Locks (with pyproject.toml and the --report file) are written to
   temporary files and moved into place only after all of them were
   produced; any failure puts every file back as it was.
7. Solve groups ([tool.lockstep.solve-groups]) split the tiers into several
   unions (_union.txt for the default group, _union-<group>.txt for the
   others), each its own resolution with its own index lines. Stale groups
   resolve concurrently, one uv process each. A group that shares tiers with
   another resolves unconstrained, or against the shared pins already locked
   when those tiers did not change; it resolves again, with the owner's new
   pins as constraints, only when its shared packages came out different
   (first offline, from the index pages this run has just fetched). Then it takes the shared packages' lines (hashes included) from the
   owner, so a shared tier is locked the same everywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tooling import ToolingError, distfiles, lockfile, public_url, pylock, without_secrets
from tooling.atomic import shown, work_folder, write_all
from tooling.lockfile import LockFile, Pin
from tooling.moves import Changes, compare, versions_by_name
from tooling.project import (
    GENERATED_BY,
    Project,
    pyproject_rewrites,
    python_version_problems,
    wheel_requirement_problems,
    written_by_lock,
)
from tooling.summary import append as step_summary
from tooling.tiers import (
    DEFAULT_GROUP,
    INCLUDE,
    INDEX,
    SolveGroup,
    Tier,
    ancestors,
    logical_lines,
    read_text,
    read_tiers,
    solve_groups,
)

FORMAT = "2"
PACKAGE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")  # PEP 508
DIRECT_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*===?\s*[^\s,;*]+\s*(;.*)?$")
INPUT_LINE = re.compile(r"^#   (\S+) sha256:([0-9a-f]{64})$")
LINE_WITH_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")  # not U+0085, U+2028...
BODY_LINE = re.compile(r"^# body sha256:([0-9a-f]{64})")
DERIVED_LINE = re.compile(r"^# union pins sha256:([0-9a-f]{64})")
NETWORK_FAILURE = re.compile(
    r"Failed to fetch|Request failed|error sending request|dns error|failed to lookup address|"
    r"Connection refused|connection (?:closed|reset)|timed out|certificate|tcp connect error|"
    r"Could not connect",
    re.IGNORECASE,
)
UV_CONFIG_FILES = ("pyproject.toml", "uv.toml")
SHARED_CONSTRAINTS = "shared-pins.txt"  # in the snapshot: pins other groups own
UNION_CONSTRAINTS = "union-pins.txt"  # in a tier's snapshot: the pins of its group's union

Runner = Callable[[Sequence[str], Path], subprocess.CompletedProcess[str]]
Listing = dict[str, distfiles.File]  # "sha256:<hex>" -> the file uv listed with that hash


class LockError(ToolingError):
    pass


class Interrupted(LockError):
    """uv stopped by a signal or Ctrl-C: nothing is blamed, nothing is written."""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- inputs, read once ------------------------------------------------------------


def requirement_digest(text: str) -> str:
    """Digest of a file's requirement lines: comment-only edits are not drift."""
    return sha256("\n".join(line for _, line in logical_lines(text)))


@dataclass(frozen=True)
class Inputs:
    """Every input file as read once in this run: tiers, texts and digests."""

    root: Path
    tiers: dict[str, Tier]
    texts: dict[str, str]  # project-relative posix path -> text
    digests: dict[str, str]

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def files(self, names: Iterable[str]) -> list[str]:
        """The input files of these tiers' closures: `.in` files and their `-c` files."""
        found: dict[str, None] = {}
        for name in names:
            for member in ancestors(self.tiers, name):
                found[self.relative(self.tiers[member].path)] = None
                found.update(dict.fromkeys(map(self.relative, self.tiers[member].constraints)))
        return sorted(found)

    def constraint_files(self) -> set[str]:
        return {self.relative(c) for tier in self.tiers.values() for c in tier.constraints}


def read_inputs(project: Project) -> Inputs:
    tiers = read_tiers(project.requirements_dir)
    texts: dict[str, str] = {}
    for tier in tiers.values():
        texts[tier.path.relative_to(project.root).as_posix()] = tier.text
        for constraint in tier.constraints:
            relative = constraint.relative_to(project.root).as_posix()
            if relative not in texts:
                texts[relative] = read_text(constraint, project.root)
    digests = {relative: requirement_digest(text) for relative, text in texts.items()}
    return Inputs(project.root, tiers, texts, digests)


# --- headers ----------------------------------------------------------------------


def unique(lines: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(lines))


def settings_index_lines(project: Project) -> list[str]:
    """Index options from [tool.lockstep], as uv needs them (credentials included)."""
    lines = []
    if index_url := project.settings.get("index-url"):
        lines.append(f"--index-url {index_url}")
    lines += [f"--extra-index-url {url}" for url in project.settings.get("extra-index-urls", [])]
    return lines


def index_lines(project: Project, inputs: Inputs, names: Iterable[str]) -> list[str]:
    """The index lines a lock records for `pip install -r`: never with credentials."""
    lines = settings_index_lines(project)
    for name in names:
        for member in ancestors(inputs.tiers, name):
            lines += inputs.tiers[member].index_lines
    return unique(without_secrets(line) for line in lines)


def compile_options(project: Project) -> list[str]:
    options = ["--universal", "--python-version", project.python_version]
    for line in settings_index_lines(project):
        options += line.split(" ", 1)
    return options


def options_line(project: Project) -> str:
    return without_secrets(f"# options: format={FORMAT} " + " ".join(compile_options(project)))


def header(project: Project, inputs: Inputs, title: str, files: list[str]) -> list[str]:
    lines = [f"# {title}", GENERATED_BY, "# inputs (sha256 of their requirement lines):"]
    lines += [f"#   {relative} sha256:{inputs.digests[relative]}" for relative in files]
    lines.append(options_line(project))
    return lines


@dataclass(frozen=True)
class Recorded:
    """What a lock's header says it was made from."""

    inputs: dict[str, str]
    options: str | None
    body_digest: str | None
    derived_from: str | None  # a tier's lock: digest of its packages' pins in the union
    body: str  # everything after the header


@lru_cache(maxsize=64)  # the check and the lock ask several times about each lock
def recorded(text: str) -> Recorded:
    inputs: dict[str, str] = {}
    options = body_digest = derived_from = None
    end = len(text)
    for found in LINE_WITH_END.finditer(text):
        if not found.group().startswith("#"):
            end = found.start()
            break
        line = found.group().rstrip("\r\n")
        if match := INPUT_LINE.match(line):
            inputs[match.group(1)] = match.group(2)
        elif line.startswith("# options:"):
            options = line
        elif match := BODY_LINE.match(line):
            body_digest = match.group(1)
        elif match := DERIVED_LINE.match(line):
            derived_from = match.group(1)
    return Recorded(inputs, options, body_digest, derived_from, text[end:])


def stale_reasons(
    project: Project, inputs: Inputs, lock: str, text: str, files: list[str]
) -> list[str]:
    """Why a lock no longer matches its inputs; empty when it is current."""
    header_of = recorded(text)
    if header_of.options != options_line(project):
        return [f"{lock} was locked with other options ({header_of.options or 'none recorded'})"]
    reasons = []
    for name in files:
        if name not in header_of.inputs:
            reasons.append(f"{name} is new since {lock} was locked")
        elif header_of.inputs[name] != inputs.digests[name]:
            reasons.append(f"{name} changed since {lock} was locked")
    reasons += [f"{name} was removed" for name in header_of.inputs if name not in files]
    return reasons


def body_damage(text: str) -> str | None:
    """Why a lock's body does not match the digest in its header; None when it does."""
    header_of = recorded(text)
    if header_of.body_digest is None:
        return "records no digest of its body"
    if sha256(header_of.body) != header_of.body_digest:
        return "does not match the digest of its body (cut or edited by hand)"
    return None


# --- the union lock and tier derivation -----------------------------------------------


def render_pin(pin: Pin, keep: Callable[[str], bool]) -> list[str]:
    via = [origin for origin in pin.via if keep(origin)]
    if len(via) == 1:
        return [*pin.lines, f"    # via {via[0]}"]
    return [*pin.lines, *(["    # via"] if via else []), *(f"    #   {v}" for v in via)]


def tier_packages(pins: Sequence[Pin], origins: set[str]) -> set[str]:
    """Names reachable from the given `-r file` origins through `via` edges."""
    needed_by: dict[str, set[str]] = {}
    for pin in pins:
        for origin in pin.via:
            needed_by.setdefault(canonicalize_name(origin), set()).add(pin.name)
    selected = {pin.name for pin in pins if origins.intersection(pin.via)}
    frontier = list(selected)
    while frontier:
        for dependency in needed_by.get(frontier.pop(), ()):
            if dependency not in selected:
                selected.add(dependency)
                frontier.append(dependency)
    return selected


def tier_origins(inputs: Inputs, name: str) -> set[str]:
    """The `-r file` origins in a union that mean "this tier's closure asked for it"."""
    return {f"-r {inputs.relative(inputs.tiers[m].path)}" for m in ancestors(inputs.tiers, name)}


@dataclass(frozen=True)
class Union:
    """A group's union lock as this run has it: where it is and what it pins."""

    path: str  # "requirements/_union.txt"
    pins: Sequence[Pin]

    def digest_of(self, names: Iterable[str]) -> str:
        """Digest of every union pin (all its marker forks, hashes included) of these packages."""
        wanted = set(names)
        return sha256(
            "\n".join(line for pin in self.pins if pin.name in wanted for line in pin.lines)
        )


def render_tier(
    project: Project, inputs: Inputs, name: str, union: Union, pins: Sequence[Pin]
) -> str:
    """A tier's lock: its closure's pins, with a digest of how the union pins those packages.

    The digest makes the tier stale when any of its packages moves in the union,
    and only then: a tier whose packages the union still pins alike stays byte-identical.
    """
    title = f"requirements/{name}.txt: hashed lock of the {name} tier."
    body = index_lines(project, inputs, [name])
    for pin in pins:
        body += render_pin(pin, lambda origin: True)
    body_text = "\n".join(body) + "\n"
    lines = header(project, inputs, title, inputs.files([name]))
    digest = union.digest_of(pin.name for pin in pins)
    lines.append(f"# union pins sha256:{digest} (its packages as {union.path} pins them)")
    lines.append(f"# body sha256:{sha256(body_text)} (of every line below)")
    return "\n".join(lines) + "\n" + body_text


def pylock_header(name: str) -> list[str]:
    return [
        f"# requirements/pylock.{name}.toml: PEP 751 lock of the {name} tier, the same pins "
        f"as requirements/{name}.txt.",
        GENERATED_BY,
    ]


def tier_pylocks(
    project: Project,
    inputs: Inputs,
    group_of: Mapping[str, SolveGroup],
    locks: Mapping[Path, str],
    tier_texts: Mapping[str, str],
    listing: Listing,
    run: Runner,
) -> dict[Path, str]:
    """requirements/pylock.<tier>.toml for every tier whose pylock does not match its `.txt`.

    The files of each hash come from this run's resolutions; a group that did not
    resolve gets them from uv, offline first, with its union lock as constraints.
    """
    pylocks: dict[Path, str] = {}
    listed_groups: set[str] = set()
    for name, text in tier_texts.items():
        path = pylock.path_of(project.requirements_dir, name)
        lock_name = f"requirements/{name}.txt"
        current = read_lock(path)
        if current and pylock.problem(current, lock_name, text) is None:
            pylocks[path] = current  # as read, with LF: a CRLF copy is rewritten
            continue
        pins = lockfile.parse(text, lock_name).pins
        group = group_of[name]
        if group.name not in listed_groups and any(
            h not in listing for p in pins for h in p.hashes
        ):  # (a lock from before uninstallable hashes were dropped always asks once)
            union = locks[project.requirements_dir / f"{group.union}.txt"]
            listing.update(union_files(project, inputs, group, union, run))
            listed_groups.add(group.name)
        requires = f">={project.python_minor}"
        try:
            pylocks[path] = pylock.render(
                lock_name, text, pins, listing, requires, pylock_header(name)
            )
        except pylock.UnlistedFiles as unlisted:
            raise LockError(
                f"requirements/pylock.{name}.toml: uv lists no file for any hash of "
                f"{', '.join(unlisted.pins)}; run `nox -s lock -- --upgrade-package NAME`"
            ) from None
    return pylocks


def union_files(
    project: Project, inputs: Inputs, group: SolveGroup, union: str, run: Runner
) -> Listing:
    """The files uv lists for a group's union lock (a run that did not resolve the group)."""
    with work_folder() as workdir:
        tree = workdir / f"files-{group.name}"
        snapshot(project, inputs, inputs.files(group.members), tree)
        (tree / UNION_CONSTRAINTS).write_text(union, encoding="utf-8")
        listed = listed_files(project, inputs, group, tree, UNION_CONSTRAINTS, run)
    return pylock.by_hash(listed)


def listed_files(
    project: Project,
    inputs: Inputs,
    group: SolveGroup,
    tree: Path,
    resolution: str,
    run: Runner,
) -> distfiles.Files:
    """The files of every version pinned in `resolution` (a requirements lock; relative to
    `tree`, the group's snapshot), as uv names them in a PEP 751 lock of it: offline first."""
    output = tree / "pylock.toml"
    options = ["--constraint", resolution, "--format", "pylock.toml"]
    result = compile_from_cache(project, inputs, sorted(group.members), options, output, run)
    if result.returncode != 0:
        raise LockError(f"uv could not list the locked files: {uv_reason(result.stderr)}")
    return distfiles.read_pylock(output.read_text(encoding="utf-8"))


def union_title(group: SolveGroup) -> str:
    if group.name == DEFAULT_GROUP:
        return f"requirements/{group.union}.txt: every tier resolved at once."
    return (
        f"requirements/{group.union}.txt: solve group {group.name} "
        f"({', '.join(group.members)} and their parents) resolved at once."
    )


def render_union(project: Project, inputs: Inputs, group: SolveGroup, pins: Sequence[Pin]) -> str:
    body = index_lines(project, inputs, group.members)
    for pin in pins:
        body += render_pin(pin, lambda origin: True)
    body_text = "\n".join(body) + "\n"
    lines = header(project, inputs, union_title(group), inputs.files(group.members))
    lines.append(f"# body sha256:{sha256(body_text)} (of every line below)")
    return "\n".join(lines) + "\n" + body_text


# --- resolution ----------------------------------------------------------------------------


_FIND_UV = threading.Lock()


def find_uv() -> str:
    with _FIND_UV:  # solve groups resolve in threads; uv's own finder is not thread-safe
        return locate_uv()


@cache
def locate_uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    try:
        import uv  # type: ignore[import-not-found,unused-ignore]

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        raise LockError("uv is not installed: run `python -m pip install uv`") from None


def run_uv(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_uv(), *argv], cwd=cwd, capture_output=True, text=True, check=False)


def uv_reason(stderr: str) -> str:
    parts = []
    for line in without_secrets(stderr).splitlines():
        line = line.strip()
        for prefix in ("error:", "cause:", "Caused by:", "hint:"):
            if line.startswith(prefix):
                parts.append(line.removeprefix(prefix).strip().rstrip("."))
    return ": ".join(parts) or " ".join(without_secrets(stderr).split()) or "uv failed silently"


def mentions(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE) is not None


def unreachable(reason: str) -> bool:
    """Whether uv failed to reach an index (not to resolve): no package is to blame then."""
    return NETWORK_FAILURE.search(reason) is not None


def index_sources(project: Project, inputs: Inputs, names: Iterable[str]) -> list[tuple[str, str]]:
    """(public URL, where it is set and how) of every index the given tiers resolve from."""
    sources = []
    if url := project.settings.get("index-url"):
        sources.append((url, "pyproject.toml [tool.lockstep] index-url"))
    for url in project.settings.get("extra-index-urls", []):
        sources.append((url, "pyproject.toml [tool.lockstep] extra-index-urls"))
    for name in names:
        tier = inputs.tiers[name]
        for number, line in logical_lines(tier.text):
            if found := INDEX.match(line):
                where = f"{inputs.relative(tier.path)}:{number} ({without_secrets(line)})"
                sources.append((found.group(2), where))
    return [(public_url(url).rstrip("/"), where) for url, where in sources]


def explain_failure(stderr: str, project: Project, inputs: Inputs, names: Sequence[str]) -> str:
    """One line from uv's error, naming where its cause was written.

    An index uv names (one it could not reach, or one it found a package on) is
    blamed on the line or setting that added it; another unreachable index blames
    nothing; otherwise the input lines whose requirement the error mentions.
    """
    reason = uv_reason(stderr)
    indexes = [where for url, where in index_sources(project, inputs, names) if url in reason]
    if indexes:
        return f"cannot lock {', '.join(unique(indexes))}: {reason}"
    if unreachable(reason):
        return f"cannot lock: the package index could not be reached: {reason}"
    named: dict[str, None] = {}
    for name in names:
        tier = inputs.tiers[name]
        for number, requirement in tier.requirements:
            if mentions(requirement.name, reason):
                line = dict(logical_lines(tier.text)).get(number, requirement.name)
                named[f"{inputs.relative(tier.path)} ({line})"] = None
    where = f" {', '.join(named)}" if named else ""
    return f"cannot lock{where}: {reason}"


def snapshot(project: Project, inputs: Inputs, files: Iterable[str], folder: Path) -> None:
    """The inputs as read in this run, same layout, for uv to resolve from.

    Each file is written as pip reads it (continuations joined, comments and
    blank lines dropped): uv's parser refuses some pip-valid spellings, such as
    a requirement continued over two lines. The digests stay those of the files.
    """
    for relative in files:
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = [line for _, line in logical_lines(inputs.texts[relative])]
        target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    for name in UV_CONFIG_FILES:  # uv's own settings ([tool.uv.pip], uv.toml) still apply
        if (project.root / name).is_file():
            shutil.copyfile(project.root / name, folder / name)


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
) -> list[Pin]:
    """Resolve one group's tiers at once from a snapshot of the inputs; return the pins.

    The files uv lists for the pins go into `listing`.
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
        "--no-header",
        "--quiet",
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
    result = run_uninterrupted(run, argv, tree)
    if result.returncode != 0:
        reason = uv_reason(result.stderr)
        for item in () if unreachable(reason) else shared:  # a network failure is no conflict
            if mentions(item.pin.name, reason):
                raise LockError(
                    f"solve group {group.name} cannot use {item.pin.name} {item.pin.version}, "
                    f"which group {item.owner} pins for the shared tier {item.tier}: {reason}"
                )
        raise LockError(explain_failure(result.stderr, project, inputs, group.closure))
    pins = resolved_pins(output, SHARED_CONSTRAINTS)
    return only_installable(project, inputs, group, pins, tree, output, run, listing)


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

    uv names the files of each pinned version in a PEP 751 lock of the same
    resolution (its own file, with hashes, as constraints), from the pages just read.
    """
    listed = listed_files(project, inputs, group, tree, str(resolution), run)
    listing.update(pylock.by_hash(listed))
    return [without_uninstallable(pin, listed, project.python_minor) for pin in pins]


def compile_from_cache(
    project: Project,
    inputs: Inputs,
    tiers: Sequence[str],
    options: Sequence[str],
    output: Path,
    run: Runner,
) -> subprocess.CompletedProcess[str]:
    """uv compiles these tiers' `.in` files into `output` (in its folder, the snapshot).

    Offline first, from the index pages this run has read; online when the cache lacks them.
    """
    argv = [
        "pip",
        "compile",
        *(inputs.relative(inputs.tiers[name].path) for name in tiers),
        *compile_options(project),
        *options,
        "--no-header",
        "--quiet",
        "--output-file",
        str(output),
    ]
    result = run_uninterrupted(run, [*argv, "--offline"], output.parent)
    if result.returncode != 0:
        result = run_uninterrupted(run, argv, output.parent)
    return result


def without_uninstallable(pin: Pin, listed: distfiles.Files, python_minor: str) -> Pin:
    """The pin with only the hashes of files an allowed Python can install (all, if unlisted)."""
    if (pin.name, pin.version) not in listed:
        return pin
    keep = distfiles.installable_hashes(listed[pin.name, pin.version], python_minor)
    hashes = tuple(digest for digest in pin.hashes if digest in keep)
    if hashes == pin.hashes or not hashes:
        return pin
    lines = [f"    --hash={digest} \\" for digest in hashes]
    lines[-1] = lines[-1].removesuffix(" \\")
    return replace(pin, hashes=hashes, lines=(pin.lines[0], *lines))


def pinned(pin: Pin) -> str:
    """A pin as a constraint line: `name==version ; marker`."""
    return f"{pin.name}=={pin.version}" + (f" ; {pin.marker}" if pin.marker else "")


def run_uninterrupted(
    run: Runner, argv: Sequence[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run uv; a signal or Ctrl-C is Interrupted, which blames no input."""
    try:
        result = run(argv, cwd)
    except KeyboardInterrupt:
        raise Interrupted("uv was interrupted: no lock was changed") from None
    if result.returncode < 0:
        try:
            name = signal.Signals(-result.returncode).name
        except ValueError:
            name = f"signal {-result.returncode}"
        raise Interrupted(f"uv was interrupted ({name}): no lock was changed")
    return result


def resolved_pins(output: Path, own_constraints: str) -> list[Pin]:
    """The pins uv wrote, without the `# via -c` of the constraints file this run made up."""
    pins = lockfile.parse(output.read_text(encoding="utf-8"), "uv's resolution").pins
    own = f"-c {own_constraints}"
    return [replace(pin, via=tuple(v for v in pin.via if v != own)) for pin in pins]


def union_constraints(pins: Sequence[Pin]) -> str:
    """The union's pins as constraints, with their `# via` lines (uv skips comments)."""
    lines = []
    for pin in pins:
        lines += render_pin(replace(pin, lines=(pinned(pin),)), lambda origin: True)
    return "\n".join(lines) + "\n"


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


# --- checks -------------------------------------------------------------------------------


def pin_problems(source: str, pins: Sequence[Pin]) -> list[str]:
    """The policy guard: every package pinned with == (the parser ensures it) and hashed."""
    return [f"{source}: {pin.name}=={pin.version} has no --hash" for pin in pins if not pin.hashes]


@cache
def may_apply(marker: str, python_minor: str) -> bool:
    """Whether a requirement's marker holds on some platform and Python a universal lock covers."""
    first = int(python_minor.split(".")[1])
    for minor in range(first, max(first, 14) + 1):
        for platform, system, os_name in (
            ("linux", "Linux", "posix"),
            ("darwin", "Darwin", "posix"),
            ("win32", "Windows", "nt"),
        ):
            for machine in ("x86_64", "aarch64", "AMD64", "arm64"):
                environment = {
                    "python_version": f"3.{minor}",
                    "python_full_version": f"3.{minor}.0",
                    "sys_platform": platform,
                    "platform_system": system,
                    "os_name": os_name,
                    "platform_machine": machine,
                    "implementation_name": "cpython",
                    "platform_python_implementation": "CPython",
                    "extra": "",
                }
                if Marker(marker).evaluate(environment):
                    return True
    return False


def constraint_requirements(text: str) -> list[tuple[int, Requirement]]:
    found = []
    for number, line in logical_lines(text):
        if line.startswith("-"):
            continue
        try:
            found.append((number, Requirement(line)))
        except InvalidRequirement:
            continue
    return found


def unmet_requirements(
    project: Project, inputs: Inputs, name: str, pins: Sequence[Pin]
) -> list[str]:
    """Requirement lines of the tier's inputs that none of its pins satisfies.

    A universal lock may pin a package twice under exclusive markers; a line is
    met when some pin of that name satisfies it.
    """
    versions: dict[str, list[str]] = {}
    for pin in pins:
        versions.setdefault(pin.name, []).append(pin.version)
    problems = []
    for member in ancestors(inputs.tiers, name):
        tier = inputs.tiers[member]
        lines: list[tuple[str, int, Requirement, bool]] = [
            (inputs.relative(tier.path), number, requirement, True)
            for number, requirement in tier.requirements
        ]
        for constraint in tier.constraints:
            relative = inputs.relative(constraint)
            lines += [
                (relative, number, requirement, False)
                for number, requirement in constraint_requirements(inputs.texts[relative])
            ]
        for source, number, requirement, required in lines:
            if requirement.marker and not may_apply(str(requirement.marker), project.python_minor):
                continue
            found = versions.get(canonicalize_name(requirement.name), [])
            if not found:
                if required:
                    problems.append(f"{source}:{number}: {requirement} has no pin in {name}.txt")
            elif not any(requirement.specifier.contains(v, prereleases=True) for v in found):
                pinned = "/".join(found)
                problems.append(
                    f"{source}:{number}: {requirement} is not met by {name}.txt "
                    f"({requirement.name} {pinned})"
                )
    return problems


def unpinned_direct_requirements(inputs: Inputs) -> list[str]:
    problems = []
    for tier in inputs.tiers.values():
        for number, line in logical_lines(tier.text):
            if not line.startswith("-") and not DIRECT_PIN.match(line):
                problems.append(f"{tier.path.name}:{number}: {line!r} is not pinned with ==")
    return problems


def generated_orphans(project: Project, inputs: Inputs, groups: Sequence[SolveGroup]) -> list[Path]:
    """Locks we wrote whose tier or group is gone (a hand-written .txt is never touched)."""
    keep = {*inputs.tiers, *(group.union for group in groups)}
    constraints = inputs.constraint_files()
    orphans = []
    for path in sorted(project.requirements_dir.glob("*.txt")):
        if path.stem in keep or path.relative_to(project.root).as_posix() in constraints:
            continue
        if written_by_lock(path):
            orphans.append(path)
    for path in sorted(project.requirements_dir.glob("pylock.*.toml")):
        if pylock.tier_of(path) not in inputs.tiers and written_by_lock(path):
            orphans.append(path)
    return orphans


def orphan_reason(path: Path) -> str:
    if (tier := pylock.tier_of(path)) is not None:
        return f"requirements/{tier}.in is gone"
    if path.stem == "_union":
        return "every tier is in a solve group of its own now"
    if path.stem.startswith("_union-"):
        return f"solve group {path.stem.removeprefix('_union-')} is gone"
    return f"requirements/{path.stem}.in is gone"


def read_lock(path: Path) -> str | None:
    """A lock's text with LF line endings; None when it is missing, "" when unreadable."""
    try:
        return path.read_bytes().decode("utf-8").replace("\r\n", "\n")
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, OSError):
        return ""  # unreadable: stale, and re-derived by the next lock


def line_ending_problem(path: Path, lock_name: str) -> list[str]:
    """A lock with CRLF line endings (a Windows checkout with core.autocrlf), named as such."""
    try:
        crlf = b"\r\n" in path.read_bytes()
    except OSError:
        return []
    if not crlf:
        return []
    return [
        f"{lock_name} has CRLF line endings (a Windows checkout?): `nox -s lock` rewrites it "
        "with LF, which .gitattributes keeps"
    ]


def project_groups(project: Project, inputs: Inputs) -> list[SolveGroup]:
    return solve_groups(inputs.tiers, project.settings.get("solve-groups", {}))


def union_label(group: SolveGroup) -> str:
    return group.union.removeprefix("_")


def check(project: Project) -> list[str]:
    """Every reason the locks are not current, one line each, grouped by tier. No network."""
    inputs = read_inputs(project)
    groups = project_groups(project, inputs)
    owner_of = {tier: group.name for group in groups for tier in group.members}
    problems: list[str] = []
    unions: dict[str, LockFile] = {}
    for group in groups:
        label, union_name = union_label(group), f"requirements/{group.union}.txt"
        union_text = read_lock(project.requirements_dir / f"{group.union}.txt")
        if union_text is None:
            problems.append(f"{label}: {union_name} is missing")
            continue
        files = inputs.files(group.members)
        reasons = line_ending_problem(project.requirements_dir / f"{group.union}.txt", union_name)
        reasons += stale_reasons(project, inputs, union_name, union_text, files)
        damage = body_damage(union_text)
        if damage:
            reasons.append(f"{union_name} {damage}")
        problems += [f"{label}: {reason}" for reason in reasons]
        if not reasons:
            try:
                unions[group.name] = lockfile.parse(union_text, union_name)
            except lockfile.LockFileError as error:
                problems.append(f"{label}: {error}")
    pins = {name: list(union.pins) for name, union in unions.items()}
    for group in groups:
        if group.name not in pins:
            continue
        lines = {pin.lines for pin in pins[group.name]}
        differing: dict[str, Shared] = {}
        for item in shared_pins(inputs, group, owner_of, pins):
            if item.pin.lines not in lines:
                differing.setdefault(item.pin.name, item)
        for item in differing.values():
            problems.append(
                f"{union_label(group)}: {item.pin.name} {item.pin.version} of the shared tier "
                f"{item.tier} is not locked as solve group {item.owner} locks it"
            )
    for name in inputs.tiers:
        lock_name = f"requirements/{name}.txt"
        text = read_lock(project.requirements_dir / f"{name}.txt")
        if text is None:
            problems.append(f"{name}: {lock_name} is missing")
            continue
        owner = next(group for group in groups if name in group.members)
        union = None
        if owner.name in unions:
            union = Union(f"requirements/{owner.union}.txt", unions[owner.name].pins)
        reasons = line_ending_problem(project.requirements_dir / f"{name}.txt", lock_name)
        try:
            parsed = lockfile.parse(text, lock_name)
        except lockfile.LockFileError as error:
            reasons += tier_staleness(project, inputs, name, text, union)
            reasons.append(str(error))
        else:
            reasons += tier_staleness(project, inputs, name, text, union, parsed.pins)
            reasons += pin_problems(lock_name, parsed.pins)
            if not reasons and union is not None:
                reasons += pins_unlike_union(lock_name, parsed.pins, union)
            if not reasons:  # a stale lock is not expected to meet its new inputs yet
                reasons += unmet_requirements(project, inputs, name, parsed.pins)
        reasons += pylock_problems(project, name, text, stale=bool(reasons))
        problems += [f"{name}: {reason}" for reason in reasons]
    for orphan in generated_orphans(project, inputs, groups):
        label = pylock.tier_of(orphan) or orphan.stem.removeprefix("_")
        problems.append(
            f"{label}: {shown(orphan)} is left over: {orphan_reason(orphan)}; `nox -s lock` deletes it"
        )
    problems += [f"python: {problem}" for problem in python_version_problems(project)]
    roots = [name for name, tier in inputs.tiers.items() if not tier.parents]
    for problem in wheel_requirement_problems(project, roots[0]) if len(roots) == 1 else []:
        problems.append(f"wheel: {problem}")
    if project.settings.get("require-exact-pins", False):
        problems += [f"policy: {problem}" for problem in unpinned_direct_requirements(inputs)]
    return problems


def pylock_problems(project: Project, name: str, text: str, stale: bool) -> list[str]:
    """Why a tier's pylock does not say what its `.txt` says (when the `.txt` is `stale`, only
    a missing or edited pylock is named: the lock writes both again anyway)."""
    path = pylock.path_of(project.requirements_dir, name)
    pylock_name = f"requirements/{path.name}"
    current = read_lock(path)
    if current is None:
        return [f"{pylock_name} is missing"]
    reasons = line_ending_problem(path, pylock_name)
    why = pylock.damage(current)
    if why is None and not stale:
        why = pylock.mismatch(current, f"requirements/{name}.txt", text)
    return [*reasons, f"{pylock_name} {why}"] if why else reasons


def tier_staleness(
    project: Project,
    inputs: Inputs,
    name: str,
    text: str,
    union: Union | None,
    pins: Sequence[Pin] | None = None,
) -> list[str]:
    """Why a tier's lock must be derived again from its (current) union.

    `pins` are the lock's, when the caller has parsed it already.
    """
    lock_name = f"requirements/{name}.txt"
    reasons = stale_reasons(project, inputs, lock_name, text, inputs.files([name]))
    if not reasons and (damage := body_damage(text)):
        reasons.append(f"{lock_name} {damage}")
    if not reasons and union is not None:
        try:
            pins = lockfile.parse(text, lock_name).pins if pins is None else pins
        except lockfile.LockFileError:
            return reasons  # the check names the line; the lock derives it again
        if recorded(text).derived_from != union.digest_of(pin.name for pin in pins):
            reasons.append(f"{lock_name} pins packages that moved in {union.path}")
    return reasons


def pins_unlike_union(lock_name: str, pins: Sequence[Pin], union: Union) -> list[str]:
    """Tier pins that are not exactly the union's (same version, same hashes)."""
    locked = {(pin.name, pin.version, pin.hashes) for pin in union.pins}
    return [
        f"{lock_name}: {pin.name} {pin.version} is not pinned as {union.path} pins it"
        for pin in pins
        if (pin.name, pin.version, pin.hashes) not in locked
    ]


def fixed_by_lock(problem: str) -> bool:
    """Whether `nox -s lock` fixes a problem (once its inputs are right): all but some python ones."""
    return not problem.startswith("python:") or "`nox -s lock` rewrites it" in problem


def advice(problems: Sequence[str]) -> str:
    """The summary under the problems: the fixes they need, and only those."""
    groups = unique(problem.split(":", 1)[0] for problem in problems)
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    steps = []
    if any(fixed_by_lock(problem) for problem in problems):
        steps.append(
            "fix the inputs named above (never edit a lock), run `nox -s lock` and commit "
            "requirements/"
        )
    if not all(fixed_by_lock(problem) for problem in problems):
        steps.append("do what each python line above says")
    return f"lock check failed: {count} in {', '.join(groups)}; {', then '.join(steps)}"


# --- the lock command -----------------------------------------------------------------------


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
                project, inputs, jobs, workdir, upgrade, upgrade_packages, run, listing
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
) -> LockResult:
    """Bring every lock up to date; resolve only the solve groups whose inputs changed.

    With `report`, what moved is written there as Markdown, in the same all-or-nothing
    write as the locks.
    """
    for package in upgrade_packages:
        if not PACKAGE_NAME.fullmatch(package):
            raise LockError(
                f"--upgrade-package {without_secrets(package)!r} is not a package name: "
                "give one name like numpy (repeat the option for several)"
            )
    inputs = read_inputs(project)
    groups = project_groups(project, inputs)
    owner_of = {tier: group.name for group in groups for tier in group.members}
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
        project, inputs, groups, todo, previous, pins, upgrade, upgrade_packages, run, listing
    )
    for _ in groups:  # owners first, however deep the chain of shared tiers
        for group in groups:
            pins[group.name] = adopt(pins[group.name], shared_pins(inputs, group, owner_of, pins))
    locked = {pin.name for found in pins.values() for pin in found}
    missing = [name for name in upgrade_packages if canonicalize_name(name) not in locked]
    if missing:
        raise LockError(f"--upgrade-package {', '.join(missing)}: not locked in any tier")
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
    files.update(tier_pylocks(project, inputs, group_of, files, tier_texts, listing, run))
    orphans = generated_orphans(project, inputs, groups)
    changes = Changes(tiers=list(inputs.tiers))
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


def lock_damage(text: str, source: str) -> str | None:
    """Why a lock cannot be trusted (unreadable, or its body cut or edited); None when it can."""
    if not text:
        return "empty, or not UTF-8"
    try:
        lockfile.parse(text, source)
    except lockfile.LockFileError as error:
        return f"line {error.line}: {error.reason}" if error.line else error.reason
    if recorded(text).body_digest is not None:  # older locks record none
        return body_damage(text)
    return None


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


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="nox -s lock --", description="Lock every tier with hashes, or check the locks."
    )
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
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
        "--report", metavar="PATH", help="also write what moved, per tier, as Markdown to PATH"
    )
    arguments = parser.parse_args(argv)
    if arguments.check and (arguments.upgrade or arguments.upgrade_package or arguments.report):
        parser.error("--check cannot be combined with --upgrade, --upgrade-package or --report")
    return arguments


def main(
    project: Project,
    argv: Sequence[str],
    log: Callable[[str], None] = print,
    run: Runner = run_uv,
) -> None:
    """The lock command shared by nox and invoke; raises LockError when it fails."""
    arguments = parse_arguments(argv)
    if arguments.check:
        problems = check(project)
        if problems:
            for problem in problems:
                log(problem)
            bullets = "\n".join(f"- {problem}" for problem in problems)
            step_summary(f"## Lock drift check failed\n\n{bullets}\n\n{advice(problems)}")
            raise LockError(advice(problems))
        log("locks are current: every tier matches its inputs and the union")
        return
    report = Path(arguments.report) if arguments.report else None
    result = lock(project, arguments.upgrade, arguments.upgrade_package, run, report)
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
    for line in result.changes.lines():
        log(line)
    step_summary(result.changes.markdown())
    if report is not None:
        log(f"wrote the report {report}")
