"""`[tool.lockstep]` itself: every setting (SETTINGS) and the checks run when a project loads."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from tooling import tier_rules
from tooling.settings.keys import Key, SettingsError, TierUse
from tooling.settings.kinds import (
    BOOLEAN,
    IMAGE_REFERENCE,
    NAME,
    PACKAGE_NAME,
    PLATFORM,
    POSITIVE_INT,
    TIER,
    Choice,
    Duration,
    ListOf,
    MapOf,
    Setting,
    Table,
    Url,
)


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
    "platforms": Setting(
        ListOf(PLATFORM),
        "the platforms `invoke build` builds each tier for (default: this machine's); "
        "`--platform` overrides it",
        'platforms = ["linux/amd64", "linux/arm64"]',
        [],
    ),
    "platform-budget-mb": Setting(
        MapOf(
            MapOf(POSITIVE_INT, keys=TIER, expected="a table of tier = size in MB"),
            keys=PLATFORM,
            expected="a table of platform = {tier = size in MB}",
        ),
        "a platform's own image budgets, over [tool.lockstep.image-budget-mb] "
        "(an arm64 base image is larger)",
        '[tool.lockstep.platform-budget-mb."linux/arm64"] sniper = 300',
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
    includers = sorted(tier_rules.includers(parents, dev_tier))
    if not includers:
        return
    leaves = sorted(tier_rules.leaves(parents))
    raise SettingsError(
        f"pyproject.toml: [tool.lockstep] dev-tier is {dev_tier!r}, which tier "
        f"{includers[0]!r} includes (-r {dev_tier}.in): it would ship the test and lint tools; "
        f"name a tier no other tier includes: {', '.join(leaves)}"
    )
