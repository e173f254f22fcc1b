"""[tool.lockstep] is checked when the project loads: one line per mistake, naming the key."""

from pathlib import Path

import pytest
from tooling import settings
from tooling.project import load
from tooling.settings import ROOT, ListOf, MapOf, Setting, SettingsError, Table

GOOD = """\
[tool.lockstep]
dev-tier = "dev"
index-url = "https://pypi.example.com/simple"
extra-index-urls = ["https://download.pytorch.org/whl/cpu", "file:///srv/wheels"]
require-exact-pins = false
audit-min-severity = "high"
safety-required = true

[tool.lockstep.image-budget-mb]
base = 250
dev = 900
"""


def make_project(root: Path, lockstep: str) -> Path:
    (root / ".python-version").write_text("3.11\n", encoding="utf-8")
    (root / "pyproject.toml").write_text(lockstep, encoding="utf-8")
    (root / "requirements").mkdir()
    (root / "requirements" / "base.in").write_text("structlog\n", encoding="utf-8")
    (root / "requirements" / "dev.in").write_text("-r base.in\npytest\n", encoding="utf-8")
    return root


def refusal(tmp_path: Path, lockstep: str) -> str:
    with pytest.raises(SettingsError) as raised:
        load(make_project(tmp_path, lockstep))
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_every_setting_is_accepted_and_read(tmp_path: Path) -> None:
    project = load(make_project(tmp_path, GOOD))
    assert project.settings.get("extra-index-urls") == [
        "https://download.pytorch.org/whl/cpu",
        "file:///srv/wheels",
    ]
    assert project.settings.get("image-budget-mb") == {"base": 250, "dev": 900}
    assert project.setting("require-exact-pins") is False
    assert project.setting("safety-required") is True


def test_defaults_come_from_the_schema(tmp_path: Path) -> None:
    project = load(make_project(tmp_path, "[project]\nname = 'x'\n"))
    assert project.settings == {}
    assert project.dev_tier == "dev"
    assert project.setting("extra-index-urls") == []
    assert project.setting("require-exact-pins") is False
    assert project.setting("audit-min-severity") is None


@pytest.mark.parametrize(
    ("lockstep", "message"),
    [
        (
            '[tool.lockstep]\nextra-index-urls = "https://download.pytorch.org/whl/cpu"\n',
            "[tool.lockstep] extra-index-urls must be a list of URLs, got a string; "
            'write it like extra-index-urls = ["https://download.pytorch.org/whl/cpu"]',
        ),
        (
            "[tool.lockstep]\nextra-index-urls = [1, 2]\n",
            "[tool.lockstep] extra-index-urls item 1 must be a URL (https://...), "
            "got an integer (1)",
        ),
        (
            "[tool.lockstep]\nindex-url = 123\n",
            "[tool.lockstep] index-url must be a URL (https://...), got an integer (123)",
        ),
        (
            '[tool.lockstep]\nindex-url = "pypi.example.com/simple"\n',
            "[tool.lockstep] index-url must be a URL (https://...), "
            "got a string that is not an http(s) or file URL",
        ),
        (
            '[tool.lockstep]\nindex-url = "https:///simple"\n',
            "[tool.lockstep] index-url must be a URL (https://...), got a URL without a host",
        ),
        (
            '[tool.lockstep]\nrequire-exact-pins = "false"\n',
            '[tool.lockstep] require-exact-pins must be true or false, got a string ("false")',
        ),
        (
            "[tool.lockstep]\nsafety-required = 1\n",
            "[tool.lockstep] safety-required must be true or false, got an integer (1)",
        ),
        (
            "[tool.lockstep]\nrequire_exact_pins = true\n",
            "[tool.lockstep] require_exact_pins is not a setting; did you mean require-exact-pins?",
        ),
        (
            "[tool.lockstep]\nextra-index-url = []\n",
            "[tool.lockstep] extra-index-url is not a setting; did you mean extra-index-urls?",
        ),
        (
            "[tool.lockstep]\ncolour = true\n",
            "[tool.lockstep] colour is not a setting; known settings: audit-allowlist-max-days, "
            "audit-min-severity, base-images, cooldown, cooldown-exempt, dev-tier, "
            "extra-index-urls, image-budget-mb, "
            "image-scan-severity, index-url, platform-budget-mb, platforms, require-exact-pins, "
            "safety-free-database, "
            "safety-required, solve-groups",
        ),
        (
            '[tool.lockstep.base-images]\nsniper = "not an image!"\n',
            "[tool.lockstep.base-images] sniper must be an image reference like python:3.12-slim "
            "or registry.example/python@sha256:..., got a string that is not one",
        ),
        (
            '[tool.lockstep]\n"two\\nlines" = 1\n',
            '[tool.lockstep] "two\\nlines" is not a setting; known settings: audit-allowlist-max-days, ',
        ),
        (
            '[tool]\nlockstep = "dev"\n',
            "[tool.lockstep] must be a table, got a string",
        ),
        (
            '[tool.lockstep]\nimage-budget-mb = "250"\n',
            "[tool.lockstep] image-budget-mb must be a table of tier = size in MB, got a string",
        ),
        (
            '[tool.lockstep.image-budget-mb]\nbase = "250"\n',
            "[tool.lockstep.image-budget-mb] base must be a positive whole number, got a string; "
            "write it like [tool.lockstep.image-budget-mb] base = 250",
        ),
        (
            "[tool.lockstep.image-budget-mb]\nbase = 0\n",
            "[tool.lockstep.image-budget-mb] base must be a positive whole number, got an integer (0)",
        ),
        (
            "[tool.lockstep.image-budget-mb]\nbase = 2.5\n",
            "[tool.lockstep.image-budget-mb] base must be a positive whole number, "
            "got a number with a fraction (2.5)",
        ),
        (
            "[tool.lockstep.image-budget-mb]\nBase = 250\n",
            "[tool.lockstep] image-budget-mb key must be a tier name (the name of a "
            'requirements/<tier>.in), got "Base"',
        ),
        (
            "[tool.lockstep.image-budget-mb]\ngpu = 250\n",
            "[tool.lockstep.image-budget-mb] gpu names tier 'gpu', which has no "
            "requirements/gpu.in; remove it or add requirements/gpu.in (tiers: base, dev)",
        ),
        (
            '[tool.lockstep]\ndev-tier = "devv"\n',
            "[tool.lockstep] dev-tier names tier 'devv', which has no requirements/devv.in; "
            "did you mean dev?",
        ),
        (
            "[tool.lockstep]\ndev-tier = true\n",
            "[tool.lockstep] dev-tier must be a tier name (the name of a requirements/<tier>.in), "
            "got a boolean (true)",
        ),
        (
            '[tool.lockstep]\naudit-min-severity = "severe"\n',
            '[tool.lockstep] audit-min-severity must be one of "low", "medium", "high", '
            '"critical", got "severe"',
        ),
        (
            "[tool.lockstep]\nindex-url = 2026-11-23\n",
            "[tool.lockstep] index-url must be a URL (https://...), got a date or time",
        ),
    ],
)
def test_bad_setting_is_one_line_naming_the_key(
    tmp_path: Path, lockstep: str, message: str
) -> None:
    assert refusal(tmp_path, lockstep).startswith(f"pyproject.toml: {message}")


@pytest.mark.parametrize(
    ("lockstep", "shown"),
    [
        (
            '[tool.lockstep]\nindex-url = "https://bob:hunter2@pypi.example.com/simple?x=hunter2"\n',
            "[tool.lockstep] index-url must not hold credentials or a query string "
            "(https://***@pypi.example.com/simple?***)",
        ),
        (
            '[tool.lockstep]\nindex-url = "https://pypi.example.com/simple?token=hunter2"\n',
            "[tool.lockstep] index-url must not hold a query string "
            "(https://pypi.example.com/simple?***)",
        ),
        (
            '[tool.lockstep]\nextra-index-urls = ["https://x.example/simple#hunter2"]\n',
            "[tool.lockstep] extra-index-urls item 1 must not hold a fragment "
            "(https://x.example/simple#***)",
        ),
        (
            '[tool.lockstep]\nindex-url = "file:///srv/simple?hunter2"\n',
            "[tool.lockstep] index-url must not hold a query string (file:///srv/simple?***)",
        ),
        (
            '[tool.lockstep]\nextra-index-urls = ["https://ok.example/simple", '
            '"https://bob:hunter2@private.example:8443/simple"]\n',
            "[tool.lockstep] extra-index-urls item 2 must not hold credentials "
            "(https://***@private.example:8443/simple)",
        ),
        (
            '[tool.lockstep]\nindex-url = "https://bob@pypi.example.com/simple"\n',
            "[tool.lockstep] index-url must not hold credentials (https://***@pypi.example.com/simple)",
        ),
    ],
)
def test_credentials_in_an_index_url_are_refused_without_echoing_them(
    tmp_path: Path, lockstep: str, shown: str
) -> None:
    message = refusal(tmp_path, lockstep)
    assert message.startswith(f"pyproject.toml: {shown}")
    assert "~/.netrc" in message and "keyring" in message
    assert "hunter2" not in message and "bob" not in message


def test_credentials_advice_names_the_environment_variables(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[tool.lockstep]\nindex-url = "https://u:p@host.example/s"\n')
    assert message.endswith(
        "or drop the key and set UV_INDEX_URL and PIP_INDEX_URL in the environment"
    )


def test_tier_names_are_only_checked_once_there_are_tiers(tmp_path: Path) -> None:
    root = make_project(tmp_path, '[tool.lockstep]\ndev-tier = "tools"\n')
    for tier in (root / "requirements").iterdir():
        tier.unlink()
    assert load(root).dev_tier == "tools"


def test_a_dev_tier_another_tier_includes_is_refused_as_the_bake_refuses_it(
    tmp_path: Path,
) -> None:
    assert refusal(tmp_path, '[tool.lockstep]\ndev-tier = "base"\n') == (
        "pyproject.toml: [tool.lockstep] dev-tier is 'base', which tier 'dev' includes "
        "(-r base.in): it would ship the test and lint tools; name a tier no other tier "
        "includes: dev"
    )


# Other work extends the schema with entries like these; nested tables are checked too.
EXTENDED = Table(
    {
        **settings.SETTINGS,
        "solve-groups": Setting(
            MapOf(ListOf(settings.TIER), keys=settings.NAME),
            "tiers locked in a union of their own",
            '[tool.lockstep.solve-groups] gpu = ["gpu"]',
        ),
        "base-images": Setting(
            MapOf(settings.IMAGE_REFERENCE, keys=settings.TIER),
            "a tier's base image",
            '[tool.lockstep.base-images] base = "python:3.12-slim"',
        ),
        "audit": Setting(
            Table({"ignore-unfixable": Setting(settings.BOOLEAN, "", "ignore-unfixable = true")}),
            "audit policy",
        ),
    }
)


def test_an_extended_schema_reports_tier_names_from_nested_values() -> None:
    uses = EXTENDED.check(
        {
            "solve-groups": {"cuda": ["base", "gpu"]},
            "base-images": {
                "gpu": "registry.example:5000/nvidia/cuda:12.4.1-runtime-ubuntu22.04",
                "base": "python@sha256:" + "a" * 64,
            },
            "audit": {"ignore-unfixable": True},
        },
        ROOT,
    )
    assert [(str(use.key), use.tier) for use in uses] == [
        ("[tool.lockstep.solve-groups] cuda item 1", "base"),
        ("[tool.lockstep.solve-groups] cuda item 2", "gpu"),
        ("[tool.lockstep.base-images] gpu", "gpu"),
        ("[tool.lockstep.base-images] base", "base"),
    ]
    with pytest.raises(SettingsError, match=r"cuda item 2 names tier 'gpu', which has no"):
        settings.check_tiers(uses, {"base", "dev"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"audit": {"ignore_unfixable": True}},
            "[tool.lockstep.audit] ignore_unfixable is not a setting; "
            "did you mean ignore-unfixable?",
        ),
        (
            {"audit": {"ignore-unfixable": "yes"}},
            "[tool.lockstep.audit] ignore-unfixable must be true or false, got a string; "
            "write it like ignore-unfixable = true",
        ),
        (
            {"solve-groups": {"cuda": "gpu"}},
            "[tool.lockstep.solve-groups] cuda must be a list of tier names, got a string",
        ),
        (
            {"base-images": {"base": "Python:3.12"}},
            "[tool.lockstep.base-images] base must be an image reference like python:3.12-slim",
        ),
        (
            {"base-images": {"base": "python:3.12 --privileged"}},
            "[tool.lockstep.base-images] base must be an image reference",
        ),
    ],
)
def test_an_extended_schema_checks_nested_tables(value: object, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        EXTENDED.check(value, ROOT)
    assert str(raised.value).startswith(f"pyproject.toml: {message}")
