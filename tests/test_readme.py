"""The generated README answers first: short, daily tasks with the chosen tiers, links to docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE, Bake

ANSWERS = [
    pytest.param({}, id="defaults"),
    pytest.param(
        {"tiers": "core, api:core, worker:core, tools:api", "dev_tier": "tools"}, id="own"
    ),
    pytest.param(
        {"tiers": "app, qa:app", "dev_tier": "qa", "with_container": "no", "ci_provider": "none"},
        id="bare",
    ),
]
# The daily-task table's rows, each a task a developer does every day.
DAILY = [
    "set up `.venv`",
    "add or remove a dependency",
    "upgrade one package",
    "check the locks",
    "run the tests",
    "run the app",
]
IMAGE_TASKS = ["build and smoke-test an image", "run the image here", "publish it", "remove the"]


def section(readme: str, heading: str) -> str:
    return readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def links(text: str) -> list[str]:
    return re.findall(r"\]\((docs/[^)#]+)\)", text)


@pytest.mark.parametrize("answers", ANSWERS)
def test_the_readme_is_short_and_links_every_reference_page(
    bake: Bake, answers: dict[str, str]
) -> None:
    project = bake(**answers)
    readme = (project / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    pages = {f"docs/{page.name}" for page in (project / "docs").glob("*.md")}
    assert set(links(readme)) == pages
    assert "docs/locks.md" in pages and "docs/audit.md" in pages and "docs/updates.md" in pages
    containers = answers.get("with_container", "yes") == "yes"
    assert ("docs/images.md" in pages) == containers == ("docs/shipping.md" in pages)
    assert ("docs/ci.md" in pages) == (answers.get("ci_provider", "github") == "github")
    for page in pages:
        assert "](../README.md)" in (project / page).read_text(), page


@pytest.mark.parametrize(
    ("answers", "root", "runtime_tier"),
    [
        pytest.param({}, "base", "sniper", id="defaults"),
        pytest.param(ANSWERS[1].values[0], "core", "worker", id="own"),
        pytest.param(ANSWERS[2].values[0], "app", "app", id="bare"),
    ],
)
def test_daily_tasks_come_first_and_name_the_chosen_tiers(
    bake: Bake, answers: dict[str, str], root: str, runtime_tier: str
) -> None:
    project = bake(**answers)
    readme = (project / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", readme, re.MULTILINE)
    assert headings[:3] == ["Getting started", "Daily tasks", "Requirement tiers"]
    table = section(readme, "Daily tasks")
    containers = answers.get("with_container", "yes") == "yes"
    for task in DAILY + (IMAGE_TASKS if containers else []):
        assert f"\n| {task}" in table, task
    assert f"edit `requirements/{root}.in`" in table
    assert f"`nox -s smoke-test -- --tier {runtime_tier}`" in table
    if containers:
        assert f"`invoke build --tier {runtime_tier}`" in table


@pytest.mark.parametrize("answers", ANSWERS)
def test_one_line_per_tier_says_what_it_is_for(bake: Bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    tiers = section((project / "README.md").read_text(), "Requirement tiers")
    listed = re.findall(r"^- `([^`]+)` \((?:root|includes `[^`]+`)\): (.+)$", tiers, re.MULTILINE)
    spec = answers.get("tiers", "base, sniper:base, hunter:base, strategist:hunter, dev:strategist")
    assert [name for name, _ in listed] == [item.split(":")[0].strip() for item in spec.split(",")]
    dev = answers.get("dev_tier", "dev")
    assert dict(listed)[dev].startswith("test, lint and type-checking tools")


def test_every_fact_of_a_reference_page_is_rendered_with_the_answers(bake: Bake) -> None:
    project = bake(tiers="core, api:core, tools:api", dev_tier="tools", python_version="3.12")
    for page in sorted((project / "docs").glob("*.md")):
        text = page.read_text()
        assert "{{" not in text and "{%" not in text, page.name
        assert text.startswith("# My Service: "), page.name
    assert "requirements/tools.txt" in (project / "docs" / "images.md").read_text()
    assert "python:3.12-slim@sha256:" in (project / "docs" / "images.md").read_text()


def test_the_reference_pages_hold_what_the_readme_held(bake: Bake) -> None:
    """Moved, not deleted: each former README section heads a page of docs/."""
    project = bake()
    where = {
        "## One Python version": "locks.md",
        "## Locks": "locks.md",
        "### Variant tiers: solve groups": "locks.md",
        "### Private indexes and credentials": "locks.md",
        "## Vulnerability audit and SBOM": "audit.md",
        "## Container images": "images.md",
        "### Engines: what each one needs": "images.md",
        "### Reproducible images": "images.md",
        "### The base image, pinned": "images.md",
        "### The smoke test proves the image is its lock": "images.md",
        "## Shipping and verifying": "shipping.md",
        "### Publish by digest": "shipping.md",
        "### Verify what you pulled": "shipping.md",
        "### The release workflow": "shipping.md",
        "### Scanning an image here": "shipping.md",
        "## CI": "ci.md",
        "## Dependency updates": "updates.md",
        "## Template updates": "updates.md",
        "| command | what it does |": "commands.md",
    }
    for heading, page in where.items():
        assert f"\n{heading}" in (project / "docs" / page).read_text(), heading
    assert "\n## Git hooks\n" in (project / "README.md").read_text()


def test_docs_pages_are_plain_markdown_files(bake: Bake) -> None:
    project: Path = bake(with_container="no")
    assert sorted(page.name for page in (project / "docs").iterdir()) == [
        "audit.md",
        "ci.md",
        "commands.md",
        "locks.md",
        "updates.md",
    ]


def test_the_template_readme_starts_with_making_a_project() -> None:
    readme = (TEMPLATE / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", readme, re.MULTILINE)
    assert headings[:2] == ["Quick start", "Prompts"]
    quick = section(readme, "Quick start")
    [block] = re.findall(r"```console\n(.*?)```", quick, flags=re.DOTALL)
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert commands == [
        "$ python -m pip install cookiecutter && python -m cookiecutter --output-dir .. .",
        "$ python tests/run.py",  # what .ci/run runs
    ]
    assert "only to work on the template" in block
    assert "tests/run.py\n" in (TEMPLATE / ".ci" / "run").read_text()
    benchmarks = (TEMPLATE / "docs" / "benchmarks.md").read_text()
    for moved in ("Locking: what it costs", "Images: what they cost", "Verifying a published"):
        assert f"\n## {moved}" in benchmarks and moved not in readme
    assert "](docs/benchmarks.md)" in readme
