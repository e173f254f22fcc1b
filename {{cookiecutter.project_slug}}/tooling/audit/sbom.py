"""One reproducible CycloneDX SBOM per tier, checked against its lock.

cyclonedx-py writes each SBOM (`--output-reproducible`: no serial number, no
timestamp); every pinned package of the lock must appear in it with all of
its hashes, and the SBOMs are moved into place only when all of them are.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from packaging.utils import canonicalize_name

from tooling import lockfile
from tooling.audit import EXIT_FINDINGS, AuditError, Runner, clip, run_command
from tooling.audit.locks import version_key

SPEC_VERSION = "1.6"


def sbom_argv(
    lock: Path,
    output: Path,
    *,
    command: Sequence[str] = ("cyclonedx-py",),
    pyproject: Path | None = None,
) -> list[str]:
    argv = [*command, "requirements", str(lock), "--output-reproducible"]
    argv += ["--spec-version", SPEC_VERSION, "--output-format", "JSON", "-o", str(output)]
    if pyproject is not None:
        argv += ["--pyproject", str(pyproject)]
    return argv


def sbom_problems(lock: Path, sbom: Path) -> list[str]:
    """Pinned versions of the lock the SBOM lacks, or lists without all of their hashes."""
    try:
        components = json.loads(sbom.read_text(encoding="utf-8")).get("components", [])
    except (OSError, ValueError) as error:
        return [f"{sbom}: unreadable ({error})"]
    listed: dict[object, set[str]] = {}
    for component in components:
        key = version_key(
            canonicalize_name(str(component.get("name", ""))), str(component.get("version", ""))
        )
        hashes = listed.setdefault(key, set())
        for reference in component.get("externalReferences", []):
            hashes.update(h.get("content", "") for h in reference.get("hashes", []))
    problems = []
    for pin in lockfile.read(lock).pins:
        key = version_key(pin.name, pin.version)
        if key not in listed:
            problems.append(f"{pin.name}=={pin.version} is missing")
            continue
        lacking = {h.split(":", 1)[-1] for h in pin.hashes} - listed[key]
        if lacking:
            problems.append(f"{pin.name}=={pin.version} lacks {len(lacking)} hash(es)")
    return problems


def write_sboms(
    locks: Mapping[str, Path],
    out_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    run: Runner = run_command,
    command: Sequence[str] = ("cyclonedx-py",),
    pyproject: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Path]:
    """One CycloneDX JSON SBOM per tier (<out_dir>/<tier>.cdx.json), all or nothing.

    `progress` gets a line when the work starts and one per tier as it is done.
    """
    env = dict(os.environ if env is None else env)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress(f"writing {len(locks)} SBOMs with {command[0]}: {', '.join(locks)}")
    with (
        tempfile.TemporaryDirectory(prefix=".sbom-", dir=out_dir) as scratch,
        ThreadPoolExecutor(max_workers=max(1, min(8, len(locks)))) as pool,
    ):
        jobs = {
            pool.submit(
                _build_sbom, lock, Path(scratch) / f"{tier}.cdx.json", env, run, command, pyproject
            ): tier
            for tier, lock in locks.items()
        }
        staged = {}
        for job in as_completed(jobs):
            staged[jobs[job]] = job.result()
            progress(f"{jobs[job]}: SBOM made ({len(staged)} of {len(locks)})")
        staged = {tier: staged[tier] for tier in locks}
        written = {}
        for tier, target in staged.items():
            written[tier] = out_dir / target.name
            shutil.move(str(target), written[tier])
    return written


def _build_sbom(
    lock: Path,
    target: Path,
    env: Mapping[str, str],
    run: Runner,
    command: Sequence[str],
    pyproject: Path | None,
) -> Path:
    completed = run(sbom_argv(lock, target, command=command, pyproject=pyproject), env)
    if completed.returncode != 0 or not target.is_file():
        detail = clip(completed.stderr or completed.stdout or "no output")
        raise AuditError(f"cyclonedx-py failed for {lock}: {detail}", EXIT_FINDINGS)
    problems = sbom_problems(lock, target)
    if problems:
        raise AuditError(f"SBOM for {lock} is incomplete: {'; '.join(problems)}", EXIT_FINDINGS)
    return target
