"""The schema of `[tool.lockstep]` in pyproject.toml: every setting, its type and its check.

`check(table)` runs when the project loads (`project.load`), before any task
does anything: the first problem ends the run with one line naming the key,
what it must be and what it is, and an unknown key is refused with the
closest known one suggested. Tier names found anywhere in the settings are
then checked against requirements/*.in (`check_tiers`).

Adding a setting is one entry in SETTINGS, built from the types below:

    "base-images": Setting(
        MapOf(IMAGE_REFERENCE, keys=TIER),
        "the base image of a tier's container image",
        example='[tool.lockstep.base-images] gpu = "nvidia/cuda:12.4.1-runtime-ubuntu22.04"',
    ),

Types: BOOLEAN, POSITIVE_INT, TIER (a tier name, checked against the tiers),
NAME (a safe identifier), URL (an index URL, never with credentials),
IMAGE_REFERENCE, Choice("low", "high", ...), ListOf(type), MapOf(type,
keys=TIER or NAME) for a table whose keys the user chooses, and
Table({"key": Setting(...), ...}) for a nested table with fixed keys (checked
like the top level, unknown keys included). Read a setting with
`project.settings.get("key", default)` or `project.setting("key")`, which
falls back to the entry's default.
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from tooling import ToolingError
from tooling.tiers import SAFE_NAME

PACKAGE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")  # PEP 508
DURATION = re.compile(r"(\d+) ?(hour|day|week)s?", re.IGNORECASE)
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
IMAGE = re.compile(
    rf"(?:(?:{HOST}(?:\.{HOST})*(?::\d+)?|\[[0-9A-Fa-f:]+\](?::\d+)?)/)?"  # registry
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # path
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # tag
    r"(?:@sha256:[0-9a-f]{64})?"  # digest
)


class SettingsError(ToolingError):
    pass


def quoted(text: str) -> str:
    """A string as TOML would write it, control characters escaped: always one line."""
    return json.dumps(text, ensure_ascii=False)


def toml_key(name: str) -> str:
    return name if BARE_KEY.fullmatch(name) else quoted(name)


def describe(value: object) -> str:
    """What a TOML value is, in words: 'a string', 'a list', ..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime.date, datetime.time)):
        return "a date or time"
    return type(value).__name__


def shown(value: object) -> str:
    """A value that is safe to print (no strings: they could hold a secret)."""
    if isinstance(value, bool):
        return f"{describe(value)} ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"{describe(value)} ({value})"
    return describe(value)


def shown_choice(value: object) -> str:
    """A value given where a word was expected: short strings quoted (a word is no secret)."""
    return quoted(value) if isinstance(value, str) and len(value) <= 40 else shown(value)


@dataclass(frozen=True)
class Key:
    """Where a value sits, for messages: `[tool.lockstep] extra-index-urls`."""

    table: str
    name: str
    example: str = ""
    label: str = ""

    def __str__(self) -> str:
        return self.label or f"[{self.table}] {toml_key(self.name)}"

    def child(self, name: str, example: str | None = None) -> Key:
        table = f"{self.table}.{toml_key(self.name)}"
        return Key(table, name, self.example if example is None else example)

    def item(self, number: int) -> Key:
        return Key(self.table, self.name, self.example, f"{self} item {number}")

    def error(self, message: str) -> SettingsError:
        hint = f"; write it like {self.example}" if self.example else ""
        return SettingsError(f"pyproject.toml: {self} {message}{hint}")

    def wrong(self, expected: str, got: str) -> SettingsError:
        return self.error(f"must be {expected}, got {got}")


@dataclass(frozen=True)
class TierUse:
    """A tier name written in the settings, to check once the tiers are known."""

    key: Key
    tier: str

    @property
    def names_a_table_key(self) -> bool:
        """`sniper = 250` in [tool.lockstep.image-budget-mb], not a tier given as a value."""
        return not self.key.label and self.key.name == self.tier


class Kind:
    """A setting's type: `check` raises SettingsError, or returns the tier names it saw."""

    expected = "a value"
    plural = "values"

    def check(self, value: object, key: Key) -> list[TierUse]:
        raise NotImplementedError


class Boolean(Kind):
    expected = "true or false"
    plural = "booleans"

    def check(self, value: object, key: Key) -> list[TierUse]:
        if not isinstance(value, bool):
            spelled = isinstance(value, str) and value in ("true", "false")
            got = f"a string ({quoted(str(value))})" if spelled else shown(value)
            raise key.wrong(self.expected, got)
        return []


class PositiveInt(Kind):
    expected = "a positive whole number"
    plural = "positive whole numbers"

    def check(self, value: object, key: Key) -> list[TierUse]:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise key.wrong(self.expected, shown(value))
        return []


class Choice(Kind):
    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.expected = "one of " + ", ".join(f'"{choice}"' for choice in choices)
        self.plural = "values among " + ", ".join(f'"{choice}"' for choice in choices)

    def check(self, value: object, key: Key) -> list[TierUse]:
        if value not in self.choices:
            raise key.wrong(self.expected, shown_choice(value))
        return []


class Name(Kind):
    expected = "a name of lowercase letters and digits separated by '-' or '_'"
    plural = "names of lowercase letters and digits separated by '-' or '_'"

    def check(self, value: object, key: Key) -> list[TierUse]:
        if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
            raise key.wrong(self.expected, shown_choice(value))
        return []


class PackageName(Kind):
    expected = "a package name like numpy"
    plural = "package names"

    def check(self, value: object, key: Key) -> list[TierUse]:
        if not isinstance(value, str) or not PACKAGE.fullmatch(value):
            raise key.wrong(self.expected, shown_choice(value))
        return []


class Duration(Kind):
    """An age such as "7 days" (uv's relative `exclude-newer`), or false for none."""

    expected = 'a duration like "7 days", "36 hours" or "2 weeks", or false'
    plural = "durations"

    def check(self, value: object, key: Key) -> list[TierUse]:
        if value is False:
            return []
        found = DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
        if found is None:
            raise key.wrong(self.expected, shown_choice(value))
        if int(found.group(1)) == 0:
            raise key.wrong(self.expected, f"{quoted(str(value))}; write false for no cooldown")
        return []


class Tier(Name):
    expected = "a tier name (the name of a requirements/<tier>.in)"
    plural = "tier names"

    def check(self, value: object, key: Key) -> list[TierUse]:
        super().check(value, key)
        return [TierUse(key, str(value))]


class Url(Kind):
    """An index URL; credentials are refused, since every lock would record them."""

    expected = "a URL (https://...)"
    plural = "URLs"

    def __init__(self, environment: str = "") -> None:
        self.environment = environment

    def check(self, value: object, key: Key) -> list[TierUse]:
        if not isinstance(value, str):
            raise key.wrong(self.expected, shown(value))
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise key.wrong(self.expected, "a string that is not a URL") from None
        if parts.scheme not in {"http", "https", "file"} or re.search(r"\s", value):
            raise key.wrong(self.expected, "a string that is not an http(s) or file URL")
        host = parts.netloc.rpartition("@")[2]
        if parts.scheme != "file" and not host:
            raise key.wrong(self.expected, "a URL without a host")
        secrets = [
            what
            for what, present in (
                ("credentials", "@" in parts.netloc),
                ("a query string", parts.query),
                ("a fragment", parts.fragment),
            )
            if present
        ]
        if secrets:  # a token may hide in any of them; show where, never what
            hidden = parts._replace(
                netloc=("***@" if "@" in parts.netloc else "") + host,
                query="***" if parts.query else "",
                fragment="***" if parts.fragment else "",
            ).geturl()
            also = f", or drop the key and set {self.environment}" if self.environment else ""
            raise SettingsError(
                f"pyproject.toml: {key} must not hold {' or '.join(secrets)} ({hidden}): every "
                f"lock would record them; keep the URL without them and put the login in "
                f"~/.netrc (machine {parts.hostname}) or a keyring{also}"
            )
        return []


class ImageReference(Kind):
    expected = "an image reference like python:3.12-slim or registry.example/python@sha256:..."
    plural = "image references"

    def check(self, value: object, key: Key) -> list[TierUse]:
        if not isinstance(value, str):
            raise key.wrong(self.expected, shown(value))
        if not IMAGE.fullmatch(value):
            raise key.wrong(self.expected, "a string that is not one")
        return []


class ListOf(Kind):
    def __init__(self, item: Kind, expected: str = "") -> None:
        self.item = item
        self.expected = expected or f"a list of {item.plural}"
        self.plural = "lists"

    def check(self, value: object, key: Key) -> list[TierUse]:
        if not isinstance(value, list):
            raise key.wrong(self.expected, shown(value))
        uses = []
        for number, item in enumerate(value, start=1):
            uses += self.item.check(item, key.item(number))
        return uses


class MapOf(Kind):
    """A table whose keys the user chooses (tiers, group names), every value one type."""

    def __init__(self, value: Kind, keys: Kind, expected: str = "") -> None:
        self.value = value
        self.keys = keys
        self.expected = expected or f"a table of {keys.expected} = {value.expected}"
        self.plural = "tables"

    def check(self, value: object, key: Key) -> list[TierUse]:
        if not isinstance(value, dict):
            raise key.wrong(self.expected, shown(value))
        uses = []
        for name, item in value.items():
            as_key = Key(key.table, key.name, key.example, f"{key} key")
            uses += [TierUse(key.child(name), use.tier) for use in self.keys.check(name, as_key)]
            uses += self.value.check(item, key.child(name))
        return uses


class SolveGroups(MapOf):
    """[tool.lockstep.solve-groups]: group name = [tiers]; each tier in one group at most."""

    def __init__(self) -> None:
        super().__init__(ListOf(TIER), keys=NAME, expected="a table of group name = [tier, ...]")

    def check(self, value: object, key: Key) -> list[TierUse]:
        uses = super().check(value, key)
        assert isinstance(value, dict)
        owner: dict[str, str] = {}
        for group, tiers in value.items():
            where = key.child(group)
            if group == "default":
                raise where.error("is reserved: 'default' is the group of every tier not listed")
            if not tiers:
                raise where.error("is an empty group: list at least one tier or remove it")
            for tier in tiers:
                if tier in owner:
                    raise where.error(
                        f"lists tier {tier!r}, which solve group {owner[tier]} already has; "
                        "a tier belongs to one group"
                    )
                owner[tier] = group
        return uses


@dataclass(frozen=True)
class Setting:
    kind: Kind
    help: str
    example: str = ""
    default: object = None


class Table(Kind):
    """A table with fixed keys; unknown keys are refused with a suggestion."""

    expected = "a table"
    plural = "tables"

    def __init__(self, fields: Mapping[str, Setting]) -> None:
        self.fields = fields

    def check(self, value: object, key: Key) -> list[TierUse]:
        if not isinstance(value, dict):
            raise key.wrong(self.expected, shown(value))
        uses = []
        for name, item in value.items():
            if name not in self.fields:
                where = key.child(name, "")
                raise SettingsError(
                    f"pyproject.toml: {where} is not a setting; {self.advice(name)}"
                )
            setting = self.fields[name]
            uses += setting.kind.check(item, key.child(name, setting.example))
        return uses

    def advice(self, name: str) -> str:
        known = sorted(self.fields)
        close = difflib.get_close_matches(name.replace("_", "-").lower(), known, n=1, cutoff=0.6)
        if close:
            return f"did you mean {close[0]}?"
        return f"known settings: {', '.join(known)}"


BOOLEAN = Boolean()
POSITIVE_INT = PositiveInt()
NAME = Name()
TIER = Tier()
URL = Url()
IMAGE_REFERENCE = ImageReference()
PACKAGE_NAME = PackageName()

SETTINGS: dict[str, Setting] = {
    "dev-tier": Setting(
        TIER, "the tier the test and lint sessions install", 'dev-tier = "dev"', "dev"
    ),
    "index-url": Setting(
        Url("UV_INDEX_URL and PIP_INDEX_URL in the environment"),
        "resolve from this index instead of PyPI; recorded in every lock",
        'index-url = "https://pypi.example.com/simple"',
    ),
    "extra-index-urls": Setting(
        ListOf(Url("UV_EXTRA_INDEX_URL and PIP_EXTRA_INDEX_URL in the environment")),
        "extra indexes (e.g. PyTorch's CPU or CUDA wheels); recorded in every lock",
        'extra-index-urls = ["https://download.pytorch.org/whl/cpu"]',
        [],
    ),
    "require-exact-pins": Setting(
        BOOLEAN,
        "the lock check also requires == on every direct requirement",
        "require-exact-pins = true",
        False,
    ),
    "cooldown": Setting(
        Duration(),
        "every resolution skips releases younger than this (a malicious release is usually "
        "caught within days); an existing pin is never moved back",
        'cooldown = "7 days"',
        False,
    ),
    "cooldown-exempt": Setting(
        ListOf(PACKAGE_NAME),
        "packages the cooldown does not apply to (e.g. your own, or an index without upload times)",
        'cooldown-exempt = ["my-internal-lib"]',
        [],
    ),
    "image-budget-mb": Setting(
        MapOf(POSITIVE_INT, keys=TIER, expected="a table of tier = size in MB"),
        "`nox -s smoke-test -- --image` fails when a tier's image is larger",
        "[tool.lockstep.image-budget-mb] base = 250",
        {},
    ),
    "base-images": Setting(
        MapOf(IMAGE_REFERENCE, keys=TIER, expected="a table of tier = image reference"),
        "the base image of a tier's container image (default: python:<.python-version>-slim)",
        '[tool.lockstep.base-images] gpu-worker = "nvidia/cuda:12.1.0-runtime-ubuntu22.04"',
        {},
    ),
    "solve-groups": Setting(
        SolveGroups(),
        "tiers resolved apart from the others (e.g. a CUDA build of a package); "
        "tiers not listed form the default group",
        '[tool.lockstep.solve-groups] cuda = ["gpu-worker"]',
        {},
    ),
    "audit-min-severity": Setting(
        Choice("low", "medium", "high", "critical"),
        "the audit ignores findings below this severity",
        'audit-min-severity = "high"',
    ),
    "image-scan-severity": Setting(
        Choice("low", "medium", "high", "critical"),
        "`invoke scan` and the release fail on an OS-package finding of this severity or above",
        'image-scan-severity = "high"',
        "critical",
    ),
    "audit-allowlist-max-days": Setting(
        POSITIVE_INT,
        "an audit-allowlist.toml entry may expire at most this many days ahead",
        "audit-allowlist-max-days = 365",
        365,
    ),
    "safety-free-database": Setting(
        BOOLEAN,
        "without SAFETY_API_KEY, the safety session uses safety's free database "
        "(non-commercial use only, CC BY-NC-SA 4.0)",
        "safety-free-database = true",
        False,
    ),
    "safety-required": Setting(
        BOOLEAN,
        "the safety session fails instead of skipping when it cannot run",
        "safety-required = true",
        False,
    ),
}

SCHEMA = Table(SETTINGS)
ROOT = Key("tool", "lockstep", "", "[tool.lockstep]")


def check(table: object) -> list[TierUse]:
    """Check `[tool.lockstep]`; return every tier name it mentions."""
    return SCHEMA.check(table, ROOT)


def check_tiers(uses: list[TierUse], tiers: set[str]) -> None:
    """Every tier named in the settings must have a requirements/<tier>.in."""
    for use in uses:
        if use.tier not in tiers:
            known = ", ".join(sorted(tiers))
            close = difflib.get_close_matches(use.tier, sorted(tiers), n=1)
            advice = (
                f"did you mean {close[0]}?"
                if close
                else f"remove it or add requirements/{use.tier}.in (tiers: {known})"
            )
            raise SettingsError(
                f"pyproject.toml: {use.key} names tier {use.tier!r}, which has no "
                f"requirements/{use.tier}.in; {advice}"
            )


def check_dev_tier(dev_tier: str, parents: Mapping[str, Sequence[str]]) -> None:
    """The dev tier is one no other tier includes, so no runtime tier ships the dev tools.

    `parents`: each tier and the tiers it includes (-r). The bake holds answers to the same rule.
    """
    includers = sorted(name for name, included in parents.items() if dev_tier in included)
    if not includers:
        return
    leaves = sorted(name for name in parents if not any(name in p for p in parents.values()))
    raise SettingsError(
        f"pyproject.toml: [tool.lockstep] dev-tier is {dev_tier!r}, which tier "
        f"{includers[0]!r} includes (-r {dev_tier}.in): it would ship the test and lint tools; "
        f"name a tier no other tier includes: {', '.join(leaves)}"
    )
