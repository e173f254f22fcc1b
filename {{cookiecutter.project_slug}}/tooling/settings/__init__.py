"""The schema of `[tool.lockstep]` in pyproject.toml: every setting, its type and its check.

`check(table)` runs when the project loads (`project.load`), before any task
does anything: the first problem ends the run with one line naming the key,
what it must be and what it is, and an unknown key is refused with the
closest known one suggested. Tier names found anywhere in the settings are
then checked against requirements/*.in (`check_tiers`).

Adding a setting is one entry in SETTINGS (tooling/settings/schema.py), built
from the types of tooling/settings/kinds.py:

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

The package, by layer (each module imports only those before it): keys (where
a value sits, how messages show it), kinds (the types and their checks) and
schema (SETTINGS and `check`).
"""

from __future__ import annotations

from tooling.settings.keys import Key, SettingsError, TierUse
from tooling.settings.kinds import (
    BOOLEAN,
    DURATION,
    IMAGE_REFERENCE,
    NAME,
    PACKAGE_NAME,
    POSITIVE_INT,
    TIER,
    URL,
    Choice,
    Kind,
    ListOf,
    MapOf,
    Setting,
    Table,
)
from tooling.settings.schema import ROOT, SCHEMA, SETTINGS, check, check_dev_tier, check_tiers

__all__ = [
    "BOOLEAN",
    "DURATION",
    "IMAGE_REFERENCE",
    "NAME",
    "PACKAGE_NAME",
    "POSITIVE_INT",
    "ROOT",
    "SCHEMA",
    "SETTINGS",
    "TIER",
    "URL",
    "Choice",
    "Key",
    "Kind",
    "ListOf",
    "MapOf",
    "Setting",
    "SettingsError",
    "Table",
    "TierUse",
    "check",
    "check_dev_tier",
    "check_tiers",
]
