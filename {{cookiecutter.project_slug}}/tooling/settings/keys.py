"""Where a value sits, for messages (Key), and values described without printing a secret."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass

from tooling import ToolingError

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


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
