"""What an image says it was built from: its OCI labels, read from git and the tier's lock.

`invoke build` passes these as build arguments to the Dockerfile's LABEL lines;
`invoke publish` refuses an image whose labels do not name this checkout, and
`invoke verify` reads them back from a pulled image.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

TIER_LABEL = "lockstep.tier"
LOCK_DIGEST_LABEL = "lockstep.lock-digest"
REVISION_LABEL = "org.opencontainers.image.revision"
SOURCE_LABEL = "org.opencontainers.image.source"
VERSION_LABEL = "org.opencontainers.image.version"
CREATED_LABEL = "org.opencontainers.image.created"
BASE_LABEL = "org.opencontainers.image.base.name"
DIRTY = "-dirty"


@dataclass(frozen=True)
class Provenance:
    """The build arguments behind the Dockerfile's LABEL lines ("" leaves a label empty)."""

    version: str = ""
    revision: str = ""  # the commit, with -dirty when the work tree has uncommitted changes
    source_url: str = ""
    lock_digest: str = ""

    def build_args(self, source_date_epoch: str) -> dict[str, str]:
        return {
            "VERSION": self.version,
            "REVISION": self.revision,
            "SOURCE_URL": self.source_url,
            "LOCK_DIGEST": self.lock_digest,
            "CREATED": created(source_date_epoch),
        }


def file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def created(source_date_epoch: str) -> str:
    """SOURCE_DATE_EPOCH as RFC 3339 (UTC), the form of org.opencontainers.image.created."""
    moment = datetime.fromtimestamp(int(source_date_epoch), tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_of(created_label: str) -> str:
    """Back from org.opencontainers.image.created to SOURCE_DATE_EPOCH ("" when unreadable)."""
    try:
        moment = datetime.strptime(created_label, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return ""
    return str(int(moment.timestamp()))


def git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme in {"http", "https"} and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return url


def revision(root: Path) -> str:
    """HEAD's commit, -dirty when tracked files changed since; "" outside a git repository."""
    commit = git(root, "rev-parse", "--verify", "HEAD")
    if not commit:
        return ""
    changed = git(root, "status", "--porcelain", "--untracked-files=no")
    return commit + (DIRTY if changed else "")


def source_url(root: Path) -> str:
    """The origin remote's URL (without credentials), "" when there is none."""
    url = git(root, "remote", "get-url", "origin")
    return without_credentials(url) if url else ""


def for_build(root: Path, lock: Path, version: str) -> Provenance:
    return Provenance(
        version=version,
        revision=revision(root),
        source_url=source_url(root),
        lock_digest=file_digest(lock),
    )
