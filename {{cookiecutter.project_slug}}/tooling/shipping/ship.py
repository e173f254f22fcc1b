"""Publish a smoke-tested tier image by digest, and verify an image pulled from a registry.

`invoke publish` pushes only an image that passes the smoke test here, whose
labels name this commit and this tier's lock, and records what it pushed in
dist/images/<tier>.json beside an SBOM of the image's contents.
`invoke verify` fetches a reference from its registry with skopeo and proves,
from the layers it fetched and without running anything from the image, that
/opt/venv is what the lock's wheels and HEAD's commit make
(tooling/shipping/image_venv.py, tooling/shipping/commit.py); it trusts neither the
registry, nor a local copy, nor the work tree, nor what the image says of itself (RECORD).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tooling import ToolingError, atomic, lockfile
from tooling.base_image import DIGEST, BaseConfigError, PinnedBase, pinned_base
from tooling.engines import Engine, ImageFacts
from tooling.images import image_name, layering, provenance, smoke_image
from tooling.project import Project, read_version, tier_lock
from tooling.registry import Reference, Registry, parse_reference
from tooling.shipping import base_layers, commit, image_venv, pulled_image
from tooling.shipping.image_config import checked_config
from tooling.shipping.image_sbom import (
    compare_with_lock,
    dumps,
    image_sbom,
    lock_components_sbom,
    read_sbom,
)
from tooling.smoke import inventory_argv, lock_problems, parse_inventory
from tooling.tiers import read_tiers

RECORDS = Path("dist") / "images"
VENV = "/opt/venv"
PYTHON = f"{VENV}/bin/python"

Log = Callable[[str], None]


class ShipError(ToolingError):
    pass


def record_path(root: Path, tier: str) -> Path:
    return root / RECORDS / f"{tier}.json"


def sbom_path(root: Path, tier: str) -> Path:
    return root / RECORDS / f"{tier}.cdx.json"


def run_inventory(engine: Engine, image: str) -> dict[str, Any]:
    return parse_inventory(engine.run_in(image, inventory_argv(PYTHON)).stdout, image)


def base_of(engine: Engine, labels: dict[str, str]) -> tuple[str, str | None]:
    """(the base image the labels name, its digest when pinned or known to the engine)."""
    base = labels.get(provenance.BASE_LABEL, "")
    pinned = DIGEST.match(base)
    if pinned:
        return base, pinned["digest"]
    facts = engine.inspect(base) if base else None
    return base, (facts.digest or None) if facts else None


def lock_sbom_problems(
    project: Project, tier: str, sbom: dict[str, Any], markers: Any
) -> list[str]:
    """The image SBOM against sbom/<tier>.cdx.json (`nox -s sbom`), else against the lock."""
    lock_path = project.requirements_dir / f"{tier}.txt"
    lock = lockfile.read(lock_path, f"requirements/{tier}.txt")
    written = project.root / "sbom" / f"{tier}.cdx.json"
    if written.is_file():
        return compare_with_lock(
            sbom, read_sbom(written), lock, markers, project.name, written.name
        )
    return compare_with_lock(
        sbom, lock_components_sbom(lock), lock, markers, project.name, f"requirements/{tier}.txt"
    )


def check_publishable(project: Project, tier: str, image: str, labels: dict[str, str]) -> str:
    """The commit to tag the image with; raises when the image is not this checkout's tier."""
    head = provenance.revision(project.root)
    if not head:
        raise ShipError("publishing needs a git commit to tag the image with: commit the project")
    if head.endswith(provenance.DIRTY):
        raise ShipError(
            "the work tree has uncommitted changes: commit them, then "
            f"`invoke build --tier {tier}` and publish again"
        )
    rebuild = f"rebuild it with `invoke build --tier {tier}`"
    labelled = labels.get(provenance.TIER_LABEL, "")
    if labelled != tier:
        raise ShipError(f"{image} is labelled tier {labelled or '(none)'}, not {tier}: {rebuild}")
    lock_digest = provenance.file_digest(project.requirements_dir / f"{tier}.txt")
    if labels.get(provenance.LOCK_DIGEST_LABEL) != lock_digest:
        raise ShipError(f"{image} was built from another requirements/{tier}.txt: {rebuild}")
    built_from = labels.get(provenance.REVISION_LABEL) or "(unknown)"
    if built_from != head:
        raise ShipError(f"{image} was built from commit {built_from}, not HEAD {head}: {rebuild}")
    return head


def publish(
    engine: Engine,
    project: Project,
    tier: str,
    tiers: list[str],
    registry: Registry,
    insecure: bool,
    version: str,
    log: Log,
) -> str:
    """Smoke-test, push as :<tier> and :<tier>-<commit>, record; return REPOSITORY@DIGEST."""
    lock_path = tier_lock(project, tier, tiers)
    image = image_name(project.name, tier)
    facts = engine.facts(image)
    commit = check_publishable(project, tier, image, facts.labels)
    try:
        for line in smoke_image(engine, image, tier, project, version):
            log(f"{image}: {line}")
    except ToolingError as error:
        raise ShipError(f"not published: {image} fails its smoke test: {error}") from None
    report = run_inventory(engine, image)
    repository = registry.repository(project.name)
    sbom = image_sbom(report["distributions"], repository, "", tier)
    problems = lock_sbom_problems(project, tier, sbom, report["markers"])
    if problems:
        raise ShipError(
            f"not published: {image}'s SBOM differs from its lock's: {'; '.join(problems)}"
        )
    log(f"{image}: SBOM of {len(sbom['components'])} installed distributions matches its lock's")

    base, base_digest = base_of(engine, facts.labels)

    def record_of(digest: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The record and SBOM of the image the registry holds as `digest`."""
        record = {
            "reference": f"{repository}@{digest}",
            "tags": [f"{repository}:{tag}" for tag in tags],
            "image_id": facts.id,
            "size": facts.size,
            "tier": tier,
            "lock": f"requirements/{tier}.txt",
            "lock_digest": provenance.file_digest(lock_path),
            "base_image": base,
            "base_image_digest": base_digest,
            "source_date_epoch": provenance.epoch_of(
                facts.labels.get(provenance.CREATED_LABEL, "")
            ),
            "commit": commit,
            "engine": engine.name,
            "sbom": str(RECORDS / f"{tier}.cdx.json"),
        }
        return record, image_sbom(report["distributions"], repository, digest, tier)

    tags = [tier, f"{tier}-{commit}"]
    tls_verify = registry.tls_verify(insecure)
    return push_and_record(
        engine, project.root, tier, image, repository, tags, tls_verify, record_of, log
    )


def push_and_record(
    engine: Engine,
    root: Path,
    tier: str,
    image: str,
    repository: str,
    tags: list[str],
    tls_verify: bool,
    record_of: Callable[[str], tuple[dict[str, Any], dict[str, Any]]],
    log: Log,
) -> str:
    """Push `image` as REPOSITORY:TAG for each tag, record it; return REPOSITORY@DIGEST.

    Nothing is pushed unless the record can be written; a failure after a push says
    what the registry now holds.
    """
    check_record_writable(root, tier)
    pushed: list[str] = []  # TAG@DIGEST the registry holds, once pushed
    try:
        digest = push_tags(
            engine, image, [f"{repository}:{tag}" for tag in tags], tls_verify, pushed, log
        )
        record, sbom = record_of(digest)
        write_record(root, tier, record, sbom)
    except (ToolingError, OSError) as error:
        if not pushed:
            raise
        raise ShipError(
            f"the image was pushed as {' and '.join(pushed)}, but {failure(error, root)}"
        ) from None
    log(f"wrote {RECORDS / f'{tier}.json'} and {RECORDS / f'{tier}.cdx.json'}")
    return f"{repository}@{digest}"


def check_record_writable(root: Path, tier: str) -> None:
    """Refuse, before anything is pushed, when dist/images/<tier>.json could not be written."""
    folder = root / RECORDS
    for parent in [*reversed(RECORDS.parents[:-1]), RECORDS]:
        if (root / parent).exists() and not (root / parent).is_dir():
            raise ShipError(
                f"not published: {parent} is a file, and the record of what is pushed goes "
                f"in the folder {RECORDS}: move {parent} away, then publish again"
            )
    for target in (record_path(root, tier), sbom_path(root, tier)):
        if target.is_dir():
            raise ShipError(
                f"not published: {RECORDS / target.name} is a folder, and publish records "
                "what it pushes in that file: remove the folder, then publish again"
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".publish-", suffix=".probe"):
            pass
    except OSError as error:
        raise ShipError(
            f"not published: cannot write the record of what is pushed in {RECORDS}: "
            f"{error.strerror or error}; make it writable, then publish again"
        ) from None


def push_tags(
    engine: Engine,
    image: str,
    tags: list[str],
    tls_verify: bool,
    pushed: list[str],
    log: Log,
    push: Callable[[str, str, bool], str] | None = None,
) -> str:
    """Push `image` under every tag (each added to `pushed`) with `push` (the engine's push of
    one image unless given); the one digest they name."""
    digests = []
    for tag in tags:
        digests.append((push or engine.push_to_registry)(image, tag, tls_verify))
        pushed.append(f"{tag}@{digests[-1]}")
        log(f"pushed {tag} with {engine.name}: {digests[-1]}")
    if len(set(digests)) != 1:
        raise ShipError(f"the registry gave {' and '.join(tags)} different digests: push again")
    return digests[0]


def write_record(root: Path, tier: str, record: dict[str, Any], sbom: dict[str, Any]) -> None:
    atomic.write_all(
        {
            record_path(root, tier): json.dumps(record, indent=2, sort_keys=True) + "\n",
            sbom_path(root, tier): dumps(sbom),
        }
    )


def failure(error: ToolingError | OSError, root: Path) -> str:
    """What went wrong after a push, in a few words."""
    if isinstance(error, atomic.WriteError):
        written, reason = f"{RECORDS.parent}/{error.path}", error.reason
    elif isinstance(error, OSError):
        written = str(RECORDS)
        if error.filename:
            written = os.path.relpath(error.filename, root)
        reason = str(error.strerror or error)
    else:
        return str(error)
    return f"{written} was not written ({reason}): fix that and publish again to record it"


@dataclass
class Verified:
    reference: str
    digest: str = ""
    image_id: str = ""
    tier: str = ""
    base: str = ""
    problems: list[str] = field(default_factory=list)
    platform: str = ""  # os/arch, or every platform checked in an index
    commit: str = ""  # the commit the image was checked against
    uncommitted: int = 0  # changes in the work tree, which verify ignored
    image_ids: dict[str, str] = field(default_factory=dict)  # of an index: platform -> image ID


def image_platform(config: dict[str, Any]) -> str:
    parts = [str(config.get(key) or "") for key in ("os", "architecture", "variant")]
    return "/".join(part for part in parts if part)


PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")


def verify(
    root: Path,
    text: str,
    tier: str | None,
    insecure: bool,
    log: Log,
    platform: str | None = None,
) -> Verified:
    """Fetch `text` from its registry and check it against HEAD of the checkout at `root`.

    Every file of the project verify reads comes from HEAD, exported into a temporary
    folder (tooling/shipping/commit.py), never from the work tree. Nothing from the
    image is run, and no engine's store is used: the checks read the layers skopeo
    fetched into a temporary folder. An image index is checked platform by platform
    (every one, or `platform`): one bad platform fails it.
    """
    reference = parse_reference(text)
    if platform is not None and not PLATFORM.fullmatch(platform):
        raise ShipError(f"--platform {platform!r}: write it like linux/amd64 or linux/arm64/v8")
    with commit.exported(root) as checked:
        if checked.uncommitted:
            log(
                f"verify checks commit {checked.sha} (HEAD) and ignores the work tree's "
                f"{checked.uncommitted} uncommitted change(s) (git status)"
            )
        result = verify_commit(checked, reference, tier, insecure, log, platform)
    result.commit, result.uncommitted = checked.sha, checked.uncommitted
    return result


def verify_commit(
    checked: commit.Commit,
    reference: Reference,
    tier: str | None,
    insecure: bool,
    log: Log,
    platform: str | None,
) -> Verified:
    """verify() against the exported commit."""
    project = checked.project
    tiers = list(read_tiers(project.requirements_dir))
    if tier:
        tier_lock(project, tier, tiers)
    shown = str(reference)
    tls_verify = reference.tls_verify(insecure)
    index_digest, listed = pulled_image.index_platforms(shown, tls_verify)
    if not listed:
        result = verify_one(checked, shown, tls_verify, None, tier, tiers, log)
        if platform and not result.problems and result.platform != platform:
            result.problems.append(f"{shown} is a {result.platform} image, not {platform}")
        return result
    if platform is not None and platform not in listed:
        raise ShipError(f"{shown} has no {platform} image: its index holds {', '.join(listed)}")
    log(f"{shown} is an image index: checking {', '.join([platform] if platform else listed)}")
    results = [
        verify_one(checked, shown, tls_verify, each, tier, tiers, log)
        for each in ([platform] if platform else listed)
    ]
    checked_platforms = ", ".join(each.platform for each in results)
    return replace(
        results[0],
        reference=f"{shown} ({checked_platforms})",
        digest=index_digest,
        problems=[problem for each in results for problem in each.problems],
        platform=checked_platforms,
        image_ids={each.platform: each.image_id for each in results},
    )


def verify_one(
    checked: commit.Commit,
    shown: str,
    tls_verify: bool,
    platform: str | None,
    tier: str | None,
    tiers: list[str],
    log: Log,
) -> Verified:
    """verify() for one image: the reference's own, or its index's image for `platform`."""
    project = checked.project
    with pulled_image.fetched(shown, tls_verify, platform=platform) as image:
        if platform:
            shown = f"{shown} ({platform})"
        log(f"fetched {shown} with skopeo into a temporary folder (nothing is run): {image.digest}")
        facts = image.facts()
        result = Verified(shown, image.digest, facts.id)
        result.platform = image_platform(image.config)
        labels = facts.labels
        labelled = labels.get(provenance.TIER_LABEL, "")
        if tier and labelled and tier != labelled:
            result.problems.append(f"{shown} is the {labelled} image, not {tier}")
            return result
        result.tier = tier or labelled
        if not result.tier:
            result.problems.append(f"{shown} has no {provenance.TIER_LABEL} label: give --tier")
            return result
        other_commit = commit.revision_problem(shown, labels, checked.sha)
        if other_commit:
            result.problems.append(other_commit)
            return result
        lock_path = tier_lock(project, result.tier, tiers)
        built_with = labels.get(provenance.LOCK_DIGEST_LABEL, "")
        if built_with and built_with != provenance.file_digest(lock_path):
            built_from = labels.get(provenance.REVISION_LABEL, "") or "(unknown)"
            result.problems.append(
                f"{shown} was built from another requirements/{result.tier}.txt than commit "
                f"{checked.sha}'s: check out its commit {built_from} to verify it"
            )
        result.base = labels.get(provenance.BASE_LABEL, "")
        tree = pulled_image.stacked(image, VENV)
        report = pulled_image.environment_report(image, VENV, tree)
        # In the block: SIGTERM and Ctrl-C remove the wheel it builds too.
        differences = image_venv.venv_problems(
            project, result.tier, tree, report["markers"], report["python"],
            checked.source_date_epoch,
        )  # fmt: skip
        base, outside_passed, outside = outside_venv(project, result.tier, image, tls_verify)
    version = read_version(project)
    passed, problems = image_checks(
        project, result.tier, facts, report, version, image.config, base
    )
    if not differences:
        passed.append(
            f"{VENV} is exactly what requirements/pylock.{result.tier}.toml's wheels, the "
            f"project's wheel built from commit {checked.sha} and the Dockerfile make: every "
            "file, link, mode and bytecode"
        )
    for line in [*passed, *outside_passed]:
        log(f"{shown}: {line}")
    result.problems += [f"{shown}: {problem}" for problem in [*problems, *differences, *outside]]
    return result


def outside_venv(
    project: Project, tier: str, image: pulled_image.PulledImage, tls_verify: bool
) -> tuple[PinnedBase | None, list[str], list[str]]:
    """(the base this checkout pins, fetched once for the config and layer checks; checks
    passed, problems) outside /opt/venv: the base's layers, then only what the Dockerfile adds."""
    try:
        base = pinned_base(project, tier, image.config, tls_verify)
    except BaseConfigError as error:
        return None, [], [str(error)]
    installed = len(layering.installed_tiers(project, tier))
    passed, problems = base_layers.base_problems(image, base, installed)
    return base, passed, problems


def image_checks(
    project: Project,
    tier: str,
    facts: ImageFacts,
    report: dict[str, Any],
    version: str,
    config: dict[str, Any],
    base: PinnedBase | None,
) -> tuple[list[str], list[str]]:
    """(checks passed, problems) of an image read from its layers: the lock, user, entrypoint,
    and its whole config against what the Dockerfile makes of the pinned base's (None: the
    base could not be fetched, a problem said once by the caller)."""
    lock_name = f"requirements/{tier}.txt"
    lock = lockfile.read(project.requirements_dir / f"{tier}.txt", lock_name)
    # Files are proven against the lock's wheels (tooling/shipping/image_venv.py), never the image's
    # RECORD: here only which distributions and versions the image names.
    named = {**report, "record_problems": [], "unlisted": []}
    problems = lock_problems(
        named, lock, lock_name, project.python_version, (project.name, version)
    )
    passed = [
        f"Python {report['python']} (.python-version {project.python_version})",
        f"exactly {lock_name}: {len(report['distributions'])} distributions",
    ]
    if problems:
        passed = []
    if facts.user.split(":")[0] != "1000":
        problems.append(f"runs as user {facts.user or 'root'}, expected uid 1000")
    else:
        passed.append("user: uid 1000")
    if not facts.entrypoint:
        problems.append("has no ENTRYPOINT")
    else:
        passed.append(f"ENTRYPOINT {' '.join(facts.entrypoint)}")
    test = facts.healthcheck
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        problems.append("has no HEALTHCHECK (build with --format docker)")
    else:
        passed.append(f"HEALTHCHECK {' '.join(test[1:])}")
    if base is None:
        return passed, problems
    differences = checked_config(project, tier, config, base)
    problems += differences
    if not differences:
        passed.append(f"config: exactly what the Dockerfile makes of the base image {base.pin}")
    return passed, problems
