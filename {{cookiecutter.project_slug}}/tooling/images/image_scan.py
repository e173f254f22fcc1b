"""Scan a tier image for OS-package CVEs with trivy or grype, accepted findings allowed.

The blocking severity is [tool.lockstep] image-scan-severity (default:
critical). Accepted findings live in audit-allowlist.toml, as Python findings
do (id, reason, expiry); an expired entry fails the scan. They are written as
the scanner's own ignore file under dist/images/, the one CI's Trivy step
reads too (`python -m tooling.images.image_scan TIER` prints its path and the
severities for a workflow's outputs).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from tooling import ToolingError
from tooling.audit.allowlist import Allowance, load, today_utc
from tooling.project import Project

SEVERITIES = ("low", "medium", "high", "critical")
ALLOWLIST = "audit-allowlist.toml"
IGNORES = Path("dist") / "images"
HOW_TO_GET_ONE = (
    "no container scanner found: install trivy (https://trivy.dev) or grype "
    "(https://github.com/anchore/grype); CI scans every image with Trivy"
)


class ScanError(ToolingError):
    pass


def blocking(project: Project) -> list[str]:
    """The severities that fail a scan: the setting and every one above it."""
    threshold = str(project.setting("image-scan-severity"))
    return list(SEVERITIES[SEVERITIES.index(threshold) :])


def accepted(project: Project) -> list[Allowance]:
    """The allow-list's entries; an expired one is an error, as in the audit."""
    entries = load(
        project.root / ALLOWLIST, max_days=int(project.setting("audit-allowlist-max-days"))
    )
    expired = [entry for entry in entries if entry.expires < today_utc()]
    if expired:
        shown = ", ".join(f"{entry.label()} on {entry.expires}" for entry in expired)
        raise ScanError(f"{ALLOWLIST}: expired: {shown}; review it or remove it")
    return entries


def trivy_ignores(entries: list[Allowance]) -> str:
    """Trivy's ignore file (YAML; JSON is YAML): each id with its reason and expiry."""
    items = [
        {"id": entry.id, "statement": entry.reason, "expired_at": entry.expires.isoformat()}
        for entry in entries
    ]
    return json.dumps({"vulnerabilities": items}, indent=2) + "\n"


def grype_ignores(entries: list[Allowance]) -> str:
    items = [{"vulnerability": entry.id} for entry in entries]
    return json.dumps({"ignore": items}, indent=2) + "\n"


def write_ignores(project: Project, tier: str) -> tuple[Path, Path]:
    entries = accepted(project)
    folder = project.root / IGNORES
    folder.mkdir(parents=True, exist_ok=True)
    trivy, grype = folder / f"{tier}.trivyignore.yaml", folder / f"{tier}.grype.yaml"
    trivy.write_text(trivy_ignores(entries), encoding="utf-8")
    grype.write_text(grype_ignores(entries), encoding="utf-8")
    return trivy, grype


def scanner_argv(
    project: Project, tier: str, archive: Path, which: Callable[[str], str | None] = shutil.which
) -> list[str]:
    """The command that scans the image archive and exits non-zero on a blocking finding."""
    trivy_file, grype_file = write_ignores(project, tier)
    severities = blocking(project)
    if which("trivy"):
        return [
            "trivy", "image", "--input", str(archive), "--scanners", "vuln",
            "--severity", ",".join(s.upper() for s in severities),
            "--ignorefile", str(trivy_file), "--exit-code", "1",
        ]  # fmt: skip
    if which("grype"):
        return [
            "grype", f"docker-archive:{archive}", "--config", str(grype_file),
            "--fail-on", severities[0],
        ]  # fmt: skip
    raise ScanError(HOW_TO_GET_ONE)


def main(argv: list[str]) -> int:
    """For a workflow: write TIER's ignore files, print `severity=` and `trivyignore=` lines."""
    from tooling import project as projects

    if len(argv) != 1:
        print("usage: python -m tooling.images.image_scan TIER", file=sys.stderr)
        return 2
    try:
        found = projects.load(Path.cwd())
        trivy_file, _ = write_ignores(found, argv[0])
    except ToolingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"severity={','.join(s.upper() for s in blocking(found))}")
    print(f"trivyignore={trivy_file.relative_to(found.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
