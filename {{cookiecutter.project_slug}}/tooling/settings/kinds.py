"""The types a setting can have, each with its check: BOOLEAN, TIER, URL, ListOf, MapOf, Table..."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tooling.settings.keys import Key, SettingsError, TierUse, quoted, shown, shown_choice
from tooling.tiers import SAFE_NAME

PACKAGE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")  # PEP 508
PLATFORM_PATTERN = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")  # os/arch[/variant]
DURATION = re.compile(r"(\d+) ?(hour|day|week)s?", re.IGNORECASE)
HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
IMAGE = re.compile(
    rf"(?:(?:{HOST}(?:\.{HOST})*(?::\d+)?|\[[0-9A-Fa-f:]+\](?::\d+)?)/)?"  # registry
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # path
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # tag
    r"(?:@sha256:[0-9a-f]{64})?"  # digest
)


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


class Platform(Kind):
    expected = "a platform like linux/amd64 or linux/arm64"
    plural = "platforms like linux/amd64 or linux/arm64"

    def check(self, value: object, key: Key) -> list[TierUse]:
        if not isinstance(value, str) or not PLATFORM_PATTERN.fullmatch(value):
            raise key.wrong(self.expected, shown_choice(value))
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
PLATFORM = Platform()
