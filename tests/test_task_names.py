"""One name per command across nox and invoke, old spellings kept, help on every option."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Bake, run_in

ANSWERS = [
    pytest.param({}, id="containers"),
    pytest.param({"with_container": "no", "ci_provider": "none"}, id="no-containers"),
]

# An option line of `invoke TASK --help`: the flags, then (after two spaces) its help text.
OPTION = re.compile(r"^  (-\S+(?: \S+)?(?:, --\S+)?|--\S+)(?:\s{2,}(\S.*))?$")


def invoke_tasks(project: Path) -> list[str]:
    listed = run_in(project, "invoke", "--list", "--list-format", "json")
    assert listed.returncode == 0, listed.stderr
    return [entry["name"] for entry in json.loads(listed.stdout)["tasks"]]


def options_without_help(help_text: str) -> list[str]:
    lines = help_text.split("Options:", 1)[1].splitlines()
    bare = []
    for number, line in enumerate(lines):
        matched = OPTION.match(line)
        continued = number + 1 < len(lines) and lines[number + 1].startswith("      ")
        if matched and not matched.group(2) and not continued:
            bare.append(matched.group(1))
    return bare


@pytest.mark.parametrize("answers", ANSWERS)
def test_every_invoke_option_has_help(bake: Bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    tasks = invoke_tasks(project)
    assert {"tests", "lint", "lock", "smoke-test"} <= set(tasks)
    for name in tasks:
        shown = run_in(project, "invoke", "--help", name)
        assert shown.returncode == 0, shown.stderr
        assert "Docstring:\n  none" not in shown.stdout, name
        if "Options:" in shown.stdout:
            assert options_without_help(shown.stdout) == [], f"invoke {name} --help"


def test_nox_list_opens_with_what_the_sessions_are_for(bake: Bake) -> None:
    listed = run_in(bake(), "nox", "--list").stdout.splitlines()
    assert listed[0].startswith("Lock, lint, test, audit and build the project")
    sessions = [line for line in listed if line[:2] in ("* ", "- ")]
    assert sessions and all(" -> " in line for line in sessions), sessions
    assert any(
        line.startswith("* lock_check -> Alias of `nox -s lock -- --check`") for line in sessions
    )


def test_old_spellings_are_aliases_of_the_documented_names(bake: Bake) -> None:
    project = bake()
    listed = run_in(project, "invoke", "--list").stdout
    assert re.search(r"^  smoke-test \(smoke\) ", listed, re.MULTILINE), listed
    assert re.search(r"^  tests \(test\) ", listed, re.MULTILINE), listed
    for old, new in [("smoke", "smoke-test"), ("test", "tests")]:
        old_help = run_in(project, "invoke", old, "--help")
        assert old_help.returncode == 0, old_help.stderr
        new_help = run_in(project, "invoke", new, "--help").stdout
        assert old_help.stdout.split("Docstring:")[1] == new_help.split("Docstring:")[1]


@pytest.mark.parametrize(
    "command", [["nox", "-s", "smoke-test"], ["invoke", "smoke-test"], ["invoke", "smoke"]]
)
def test_smoke_test_without_a_tier_names_the_tiers(bake: Bake, command: list[str]) -> None:
    result = run_in(bake(tiers="core, api:core, qa:api", dev_tier="qa"), *command)
    assert result.returncode != 0
    failure = [line for line in result.stderr.splitlines() if "aborted" in line]
    assert failure == [
        "nox > Session smoke-test aborted: name the tier to smoke-test with --tier NAME: "
        "one of core, api, qa."
    ]
    assert "Traceback" not in result.stderr


def test_run_names_the_tiers_and_the_missing_image_in_one_line(bake: Bake) -> None:
    project = bake(tiers="core, api:core, qa:api", dev_tier="qa")
    unnamed = run_in(project, "invoke", "run")
    assert unnamed.returncode == 1
    assert unnamed.stderr.splitlines() == [
        "error: name the tier to run with --tier NAME: one of core, api, qa"
    ]
    missing = run_in(project, "invoke", "run", "--tier", "api", "--engine", "podman")
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        "error: image my-service:api not found by podman: build it with `invoke build`"
    ]


def test_prune_with_nothing_built_says_so(bake: Bake) -> None:
    pruned = run_in(bake(), "invoke", "prune", "--engine", "buildah")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.splitlines() == ["no untagged my-service images to remove"]
