"""The release-age cooldown: resolutions skip releases younger than `cooldown`.

Most malicious releases are found and pulled within days, so `cooldown =
"7 days"` in [tool.lockstep] makes every resolution behave as if the index
stopped a week ago (uv's relative `--exclude-newer`), except for the packages
in `cooldown-exempt` and, for one run, those given to `--skip-cooldown`.

Three rules on top of uv's filter:
- an existing pin is never moved back: a package the cooldown would move to an
  older version (or drop) keeps its pin, resolved again with the pin as a
  constraint and the cooldown lifted for that package only;
- what the cooldown held back is named: for every package this run was free
  to move (new, upgraded), the index's JSON page (PEP 691/700) shows any newer
  release younger than the cooldown that its direct requirements allow (not
  the uv cache: uv caches pages as the cooldown filtered them);
- a package with no release old enough fails the lock in one line saying how
  to exempt it.
uv drops files without an upload time under `--exclude-newer`: an index that
publishes none (a plain HTML index, PyTorch's) needs its packages exempted.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tooling.lockfile import Pin
from tooling.project import Project
from tooling.settings import DURATION
from tooling.tiers import INDEX

if TYPE_CHECKING:
    import ssl

PYPI = "https://pypi.org/simple"
LOOKUPS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="cooldown")
JSON_PAGE = "application/vnd.pypi.simple.v1+json"
# uv's hint when a requirement cannot be met inside the cutoff
FILTERED = re.compile(r"`([^`]+)` was filtered by `exclude-newer`")
PUBLISHED = re.compile(
    r"The latest version satisfying the requirement is v(\S+), published at (\S+)\."
)


def count_and_unit(age: str) -> tuple[int, str]:
    """ "7 Days" -> (7, "day"); the settings check ran first."""
    found = DURATION.fullmatch(age.strip())
    assert found is not None, age
    return int(found.group(1)), found.group(2).lower()


def normalised(age: str) -> str:
    """ "7 Days" -> "7 days", "1 weeks" -> "1 week"."""
    count, unit = count_and_unit(age)
    return f"{count} {unit}{'' if count == 1 else 's'}"


def newest(pins: Iterable[Pin], name: str) -> Version | None:
    """The highest version pinned for `name` (a package may be pinned per marker)."""
    versions = []
    for pin in pins:
        if pin.name == name:
            try:
                versions.append(Version(pin.version))
            except InvalidVersion:
                continue
    return max(versions, default=None)


def moved_back(before: Sequence[Pin], after: Sequence[Pin]) -> dict[str, str]:
    """Packages pinned lower (or no longer pinned) after than before: name -> old version."""
    names = {pin.name for pin in after}
    moved = {}
    for name in sorted({pin.name for pin in before}):
        old = newest(before, name)
        new = newest(after, name)
        if old is not None and (name not in names or (new is not None and new < old)):
            moved[name] = str(old)
    return moved


def ago(when: datetime.datetime, now: datetime.datetime) -> str:
    hours = max(int((now - when).total_seconds() // 3600), 0)
    if hours < 48:
        return f"{hours} hour{'' if hours == 1 else 's'} ago"
    return f"{hours // 24} days ago"


def age_of(duration: str) -> datetime.timedelta:
    count, unit = count_and_unit(duration)
    return datetime.timedelta(hours=count * {"hour": 1, "day": 24, "week": 168}[unit])


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One context for every lookup: each new one reads the CA bundle again (30 ms of CPU)."""
    import ssl

    return ssl.create_default_context()


def releases(name: str, indexes: Sequence[str]) -> dict[Version, datetime.datetime]:
    """When each release of `name` was first uploaded, from the first index that knows it."""
    import urllib.request  # only when a report looks releases up: a no-op lock never does

    for index in indexes:
        request = urllib.request.Request(
            f"{index.rstrip('/')}/{canonicalize_name(name)}/", headers={"Accept": JSON_PAGE}
        )
        try:
            with urllib.request.urlopen(request, timeout=5, context=tls_context()) as response:
                page = json.load(response)
        except (OSError, ValueError):
            continue
        if uploaded := upload_times(page, name):
            return uploaded
    return {}


def upload_times(page: Mapping[str, object], name: str) -> dict[Version, datetime.datetime]:
    """When each release of `name` on an index's JSON page was first uploaded (yanked files
    and files without an upload time left out).

    A page lists every file of every release (numpy: thousands): each version's text
    is read once, not once per file.
    """
    prefix = SEPARATORS.sub("_", name).lower() + "-"
    earliest: dict[str, datetime.datetime] = {}
    files = page.get("files", [])
    for file in files if isinstance(files, list) else []:
        if not isinstance(file, dict) or not file.get("upload-time") or file.get("yanked"):
            continue
        version = version_in(str(file.get("filename", "")), prefix)
        if version is None:
            continue
        try:
            when = datetime.datetime.fromisoformat(str(file["upload-time"]).replace("Z", "+00:00"))
        except ValueError:
            continue
        earliest[version] = min(when, earliest.get(version, when))
    uploaded: dict[Version, datetime.datetime] = {}
    for text, when in earliest.items():
        try:
            release = Version(text)
        except InvalidVersion:
            continue
        uploaded[release] = min(when, uploaded.get(release, when))
    return uploaded


def held_release(
    uploaded: Mapping[Version, datetime.datetime], candidate: Candidate, cutoff: datetime.datetime
) -> tuple[Version, datetime.datetime] | None:
    """The newest release above the pin that the cooldown kept out, if any."""
    younger = [
        (version, when)
        for version, when in uploaded.items()
        if version > candidate.locked
        and when > cutoff
        and (not version.is_prerelease or candidate.locked.is_prerelease)
        and candidate.allowed.contains(version, prereleases=True)
    ]
    return max(younger, default=None)


SEPARATORS = re.compile(r"[-_.]+")
ARCHIVE_SUFFIX = re.compile(r"\.(whl|tar\.gz|zip)$")


def version_of(filename: str, name: str) -> str | None:
    """The version in a wheel or sdist file name of `name`, or None."""
    return version_in(filename, SEPARATORS.sub("_", name).lower() + "-")


def version_in(filename: str, prefix: str) -> str | None:
    """version_of, with the name already as `prefix` ("typing_extensions-")."""
    stem = ARCHIVE_SUFFIX.sub("", filename)
    normal = SEPARATORS.sub("_", stem.split("-", 1)[0]).lower() + "-"
    if normal != prefix or "-" not in stem:
        return None
    return stem.split("-")[1]


@dataclass(frozen=True)
class Candidate:
    """A package this run was free to move: its new pin and what its requirements allow."""

    locked: Version
    allowed: SpecifierSet
    indexes: tuple[str, ...]


@dataclass
class Cooldown:
    """The cooldown of one lock run, and what it held back (filled in while resolving)."""

    age: str | None  # "7 days"; None: no cooldown
    exempt: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # --skip-cooldown: this run only
    candidates: dict[str, Candidate] = field(default_factory=dict)
    lookups: dict[str, Future[dict[Version, datetime.datetime]]] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)  # pins kept instead of moved back

    @classmethod
    def of(cls, project: Project, skipped: Sequence[str] = ()) -> Cooldown:
        age = project.setting("cooldown")
        exempt = tuple(sorted({canonicalize_name(n) for n in project.setting("cooldown-exempt")}))
        skip = tuple(sorted({canonicalize_name(name) for name in skipped}))
        return cls(normalised(age) if age else None, exempt, skip)

    def recorded(self) -> str:
        """How the lock header records the setting (not --skip-cooldown: one run only)."""
        if not self.age:
            return ""
        exempt = f" cooldown-exempt={','.join(self.exempt)}" if self.exempt else ""
        return f' cooldown="{self.age}"{exempt}'

    def options(self, lifted: Iterable[str] = ()) -> list[str]:
        """uv's options for this cooldown, lifted for the exempt, skipped and `lifted` packages."""
        if not self.age:
            return []
        argv = ["--exclude-newer", self.age]
        for name in sorted({*self.exempt, *self.skipped, *lifted}):
            argv += ["--exclude-newer-package", f"{name}=false"]
        return argv

    def refusal(self, stderr: str) -> str | None:
        """One line for a package that has no release old enough; None for other failures."""
        found = FILTERED.search(stderr)
        if not self.age or found is None:
            return None
        name = found.group(1)
        newest_one = PUBLISHED.search(stderr)
        latest = ""
        if newest_one:
            latest = f" ({name} {newest_one.group(1)} was published {newest_one.group(2)[:10]})"
        return (
            f"cannot lock: {name} has no release that satisfies the requirements and is older "
            f"than the {self.age} cooldown{latest}; wait, add it to cooldown-exempt in "
            f"[tool.lockstep], or take it now with `nox -s lock -- --skip-cooldown {name}`"
        )

    def note_candidates(
        self, pins: Iterable[Pin], requirements: Iterable[Requirement], indexes: Sequence[str]
    ) -> None:
        """Packages free to move in this run: the report looks for newer releases it held back."""
        allowed: dict[str, SpecifierSet] = {}
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            allowed[name] = allowed.get(name, SpecifierSet()) & requirement.specifier
        for pin in pins:
            locked = newest([pin], pin.name)
            if locked is None or pin.name in self.skipped or pin.name in self.exempt:
                continue
            known = self.candidates.get(pin.name)
            if known is None or locked > known.locked:
                spec = allowed.get(pin.name, SpecifierSet())
                self.candidates[pin.name] = Candidate(locked, spec, tuple(indexes))
            if pin.name not in self.lookups:  # looked up while the lock goes on
                self.lookups[pin.name] = LOOKUPS.submit(releases, pin.name, tuple(indexes))

    def report(self, locked: Mapping[str, str], now: datetime.datetime | None = None) -> list[str]:
        """Lines for the what-moved report: held back, kept, skipped."""
        if not self.age:
            return []
        now = now or datetime.datetime.now(datetime.UTC)
        cutoff = now - age_of(self.age)
        lines = []
        for name, candidate in sorted(self.candidates.items()):
            held = held_release(self.lookups[name].result(), candidate, cutoff)
            if held is not None and str(candidate.locked) in locked.get(name, "").split("/"):
                newer, when = held
                lines.append(
                    f"held back: {name} {newer} (published {ago(when, now)}); "
                    f"locked {candidate.locked}"
                )
        for name, version in sorted(self.kept.items()):
            lines.append(f"kept {name} {version}: the {self.age} cooldown never moves a pin back")
        for name in self.skipped:
            if name in locked:
                lines.append(
                    f"cooldown skipped for {name} (--skip-cooldown, this run only): "
                    f"locked {locked[name]}"
                )
        return lines


def index_urls(settings_lines: Sequence[str], tier_lines: Sequence[str]) -> list[str]:
    """Where to look up upload times: the indexes uv resolved from (PyPI unless replaced)."""
    urls: list[str] = []
    replaced = False
    for line in [*settings_lines, *tier_lines]:
        found = INDEX.match(line)
        if found and found.group(1) in {"--index-url", "-i"}:
            replaced = True
            urls.insert(0, found.group(2))
        elif found and found.group(1) == "--extra-index-url":
            urls.append(found.group(2))
    return urls if replaced else [PYPI, *urls]
