"""`invoke publish` of a tier built for several platforms: one image index, by digest.

Every platform's image is checked before anything is pushed, as a single image is
(built from HEAD and this lock, its smoke test, a foreign platform's under qemu, and
its SBOM against the lock with its own platform's markers). Then the manifest list
`invoke build` made (<project>:<tier>-index) is pushed with every image in it as
:<tier> and :<tier>-<commit>, and dist/images/<tier>.json records the index digest
and, per platform, the image's digest, image ID, size and SBOM
(dist/images/<tier>.<os>-<arch>.cdx.json).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooling import ToolingError, atomic
from tooling.engines import Engine, ImageFacts, last_line, read_build_record, run_captured
from tooling.images import image_name, platforms, provenance, smoke_image
from tooling.project import Project, tier_lock
from tooling.registry import Registry
from tooling.shipping.image_sbom import dumps, image_sbom
from tooling.shipping.ship import (
    RECORDS,
    Log,
    ShipError,
    check_publishable,
    check_record_writable,
    failure,
    lock_sbom_problems,
    push_tags,
    record_path,
    run_inventory,
)


@dataclass(frozen=True)
class Checked:
    """One platform's image, checked and ready to push."""

    platform: str
    image: str
    facts: ImageFacts
    commit: str
    distributions: list[dict[str, str]]


def check_platform(
    engine: Engine, project: Project, tier: str, image: str, platform: str, version: str, log: Log
) -> Checked:
    """The checks a single image passes before it is pushed, for one platform's image."""
    platforms.check_emulation([platform])
    facts = engine.facts(image)
    commit = check_publishable(project, tier, image, facts.labels)
    try:
        for line in smoke_image(engine, image, tier, project, version, platform):
            log(f"{image}: {line}")
    except ToolingError as error:
        raise ShipError(f"not published: {image} fails its smoke test: {error}") from None
    report = run_inventory(engine, image)
    sbom = image_sbom(report["distributions"], image, "", tier)
    problems = lock_sbom_problems(project, tier, sbom, report["markers"])
    if problems:
        raise ShipError(
            f"not published: {image}'s SBOM differs from its lock's: {'; '.join(problems)}"
        )
    return Checked(platform, image, facts, commit, list(report["distributions"]))


def platform_sbom_path(root: Path, tier: str, platform: str) -> Path:
    return root / RECORDS / f"{tier}.{platforms.suffix(platform)}.cdx.json"


def listed_digests(reference: str, digest: str, tls_verify: bool) -> dict[str, str]:
    """platform -> manifest digest in the index the registry holds as `digest`."""
    shown = run_captured(
        [
            "skopeo", "inspect", "--raw", f"--tls-verify={str(tls_verify).lower()}",
            f"docker://{reference}@{digest}",
        ]
    )  # fmt: skip
    if shown.returncode != 0:
        raise ShipError(f"cannot read back the index {digest}: {last_line(shown.stderr)}")
    if f"sha256:{hashlib.sha256(shown.stdout.encode()).hexdigest()}" != digest:
        raise ShipError(f"the registry served another index than {digest}: publish again")
    entries = json.loads(shown.stdout).get("manifests") or []
    return {platforms.platform_of(entry["platform"]): str(entry["digest"]) for entry in entries}


def publish_index(
    engine: Engine,
    project: Project,
    tier: str,
    tiers: list[str],
    registry: Registry,
    insecure: bool,
    version: str,
    log: Log,
) -> str:
    """Check every platform's image, push the index as :<tier> and :<tier>-<commit>, record;
    return REPOSITORY@DIGEST of the index."""
    lock_path = tier_lock(project, tier, tiers)
    entry = read_build_record(project.root)[image_name(project.name, tier)]
    cannot = engine.several_platforms_problem()
    if cannot:
        raise ShipError(f"not published: {cannot}")
    checked = [
        check_platform(engine, project, tier, str(each["image"]), platform, version, log)
        for platform, each in entry["platforms"].items()
    ]
    commit = checked[0].commit
    repository = registry.repository(project.name)
    tags = [f"{repository}:{tag}" for tag in (tier, f"{tier}-{commit}")]
    tls_verify = registry.tls_verify(insecure)
    check_record_writable(project.root, tier)
    pushed: list[str] = []
    try:
        digest = push_tags(
            engine, entry["index"], tags, tls_verify, pushed, log, push=engine.push_index
        )
        listed = listed_digests(repository, digest, tls_verify)
        pushed_as = Pushed(repository, digest, tags, engine.name)
        atomic.write_all(records(project.root, tier, lock_path, pushed_as, checked, listed))
    except (ToolingError, OSError, KeyError) as error:
        if not pushed:
            raise
        shown = failure(error, project.root) if not isinstance(error, KeyError) else str(error)
        raise ShipError(f"the index was pushed as {' and '.join(pushed)}, but {shown}") from None
    log(f"wrote {RECORDS / f'{tier}.json'} and an SBOM per platform")
    return f"{repository}@{digest}"


@dataclass(frozen=True)
class Pushed:
    repository: str
    digest: str  # of the index
    tags: list[str]
    engine: str


def records(
    root: Path,
    tier: str,
    lock_path: Path,
    pushed: Pushed,
    checked: list[Checked],
    listed: dict[str, str],
) -> dict[Path, str]:
    """dist/images/<tier>.json and each platform's SBOM, as text to write."""
    first = checked[0].facts.labels
    each: dict[str, Any] = {}
    files: dict[Path, str] = {}
    for image in checked:
        if image.platform not in listed:
            raise ShipError(f"the index {pushed.digest} holds no {image.platform} image")
        sbom = platform_sbom_path(root, tier, image.platform)
        each[image.platform] = {
            "digest": listed[image.platform],
            "image_id": image.facts.id,
            "size": image.facts.size,
            "sbom": str(sbom.relative_to(root)),
        }
        files[sbom] = dumps(
            image_sbom(image.distributions, pushed.repository, listed[image.platform], tier)
        )
    record = {
        "reference": f"{pushed.repository}@{pushed.digest}",
        "tags": pushed.tags,
        "tier": tier,
        "lock": f"requirements/{tier}.txt",
        "lock_digest": provenance.file_digest(lock_path),
        "base_image": first.get(provenance.BASE_LABEL, ""),
        "source_date_epoch": provenance.epoch_of(first.get(provenance.CREATED_LABEL, "")),
        "commit": checked[0].commit,
        "engine": pushed.engine,
        "platforms": each,
    }
    files[record_path(root, tier)] = json.dumps(record, indent=2, sort_keys=True) + "\n"
    return files
