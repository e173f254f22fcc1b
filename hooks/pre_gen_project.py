"""Validate every answer before cookiecutter writes the project.

Answers arrive as JSON data (never as code), and each bad answer is reported
as one line naming the prompt, the value and what is accepted.
"""

from __future__ import annotations

import graphlib
import json
import keyword
import re
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13", "3.14")
RESERVED_PACKAGES = {"tooling", "tests", "src", "requirements"}

SLUG = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
TIER_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
PYTHON_VERSION = re.compile(r"(3\.\d+)(?:\.\d+)?")
VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?")
EMAIL = re.compile(r"[^@\s\"'<>]+@[^@\s\"'<>]+\.[^@\s\"'<>]+")


class BadAnswer(Exception):
    def __init__(self, prompt: str, value: object, accepted: str) -> None:
        super().__init__(f"{prompt}={value!r} is not valid: {accepted}")


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
    for name, parent in tiers.items():
        if parent is not None and parent not in tiers:
            raise BadAnswer(
                "tiers", value, f"tier {name!r} names parent {parent!r}, which is not a tier"
            )
    roots = [name for name, parent in tiers.items() if parent is None]
    try:
        graphlib.TopologicalSorter({n: [p] if p else [] for n, p in tiers.items()}).prepare()
    except graphlib.CycleError as error:
        cycle = " -> ".join(error.args[1])
        raise BadAnswer("tiers", value, f"the parents form a cycle ({cycle})") from None
    if len(roots) != 1:
        raise BadAnswer(
            "tiers", value, f"exactly one tier must have no parent (found {len(roots)}: {roots})"
        )


def validate(answers: dict[str, str]) -> None:
    for prompt in ("project_name", "description", "author_name"):
        check_single_line(prompt, answers[prompt])
    if not any(char.isalnum() for char in answers["project_name"]):
        raise BadAnswer("project_name", answers["project_name"], "use at least one letter or digit")
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
    if answers["dev_tier"] not in tiers:
        raise BadAnswer(
            "dev_tier", answers["dev_tier"], f"name one of the tiers: {', '.join(tiers)}"
        )


if __name__ == "__main__":
    try:
        validate(ANSWERS)
    except BadAnswer as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)
