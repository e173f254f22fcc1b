"""The generated project's CI files, checked with the real tools, offline.

- every workflow, composite action and dependabot.yml against the schemas
  check-jsonschema ships, and zizmor with every audit on;
- the pre-commit config with pre-commit itself, and its local hooks run;
- the CI steps that compute the dev lock and the image tiers, run as CI would.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import SHA_PINNED, Bake, read_docs
from tests.offline_tools import (
    BIN,
    CASES,
    GITHUB_CASES,
    actions,
    git,
    load_yaml,
    offline_env,
    run,
    workflow_steps,
    workflows,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("answers", GITHUB_CASES)
def test_github_files_pass_their_schemas(bake: Bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    shipped = ["release.yml"] if answers["with_container"] == "yes" else []
    assert [path.name for path in workflows(project)] == ["ci.yml", "lock-refresh.yml", *shipped]
    assert [path.parent.name for path in actions(project)] == ["setup-tools"]
    checks = [("vendor.github-workflows", path) for path in workflows(project)]
    checks += [("vendor.github-actions", path) for path in actions(project)]
    checks += [("vendor.dependabot", project / ".github" / "dependabot.yml")]
    for schema, path in checks:
        run(
            [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
            project,
            offline_env(),
        )


@pytest.mark.parametrize("answers", GITHUB_CASES)
def test_dependabot_leaves_the_python_locks_to_the_lock_refresh(
    bake: Bake, answers: dict[str, str]
) -> None:
    project = bake(**answers)
    config = load_yaml(project / ".github" / "dependabot.yml")
    ecosystems = [entry["package-ecosystem"] for entry in config["updates"]]
    assert "pip" not in ecosystems and "uv" not in ecosystems
    assert not [entry for entry in config["updates"] if "requirements" in str(entry)]
    # Dependabot reads a base image only from a FROM line that names it, not a build argument.
    dockerfile = project / "Dockerfile"
    names_its_base = dockerfile.exists() and re.search(
        r"^FROM [^$\s]+@sha256:", dockerfile.read_text(), flags=re.MULTILINE
    )
    expected = ["github-actions", "pre-commit"] + (["docker"] if names_its_base else [])
    assert ecosystems == expected, "a FROM line names its base by digest: add a docker entry"
    assert "lock-refresh" in (project / ".github" / "dependabot.yml").read_text()
    readme = read_docs(project)
    assert "updates of the locks" not in readme
    assert "lock-refresh.yml" in (project / "docs" / "updates.md").read_text()


@pytest.mark.parametrize("answers", GITHUB_CASES)
def test_workflow_shape(bake: Bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    workflow = load_yaml(project / ".github" / "workflows" / "ci.yml")
    jobs = workflow["jobs"]
    expected = {"lock", "lint", "tests", "audit", "sbom", "template"}
    if answers["with_container"] == "yes":
        expected |= {"tiers", "image"}
    assert set(jobs) == expected
    assert workflow["permissions"] == {}
    # Only pull-request runs are cancelled by a newer one; main's runs finish.
    assert (
        workflow["concurrency"]["cancel-in-progress"]
        == "${{ github.event_name == 'pull_request' }}"
    )
    assert "${{ github.event_name }}" in workflow["concurrency"]["group"]  # weekly run apart
    assert all(job["permissions"] == {"contents": "read"} for job in jobs.values())
    assert jobs["template"]["continue-on-error"] is True
    for job, step in workflow_steps(project):
        uses = step.get("uses")
        if uses is None:
            continue
        assert uses.startswith("$/") or SHA_PINNED.fullmatch(uses), f"{job}: {uses}"
        if uses.startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, job
    runs = {job: " ".join(s.get("run", "") for s in data["steps"]) for job, data in jobs.items()}
    assert "nox -s lock -- --check" in runs["lock"]
    for session in ("lint", "tests", "audit", "sbom"):
        assert f"-s {session}" in runs[session]
    if answers["with_container"] == "yes":
        assert 'invoke build --tier "$TIER"' in runs["image"]
        assert '-s smoke-test -- --tier "$TIER" --image "my-service:$TIER"' in runs["image"]


@pytest.mark.parametrize("answers", GITHUB_CASES)
def test_zizmor_finds_nothing_with_every_audit_on(bake: Bake, answers: dict[str, str]) -> None:
    """The auditor persona turns on every audit, pedantic ones included; no ignores exist."""
    project = bake(**answers)
    done = run(
        [str(BIN / "zizmor"), "--offline", "--persona=auditor", "--format=json", "."],
        project,
        offline_env(),
        expect=None,
    )
    findings = json.loads(done.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=1)[:4000]
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("answers", CASES)
def test_pre_commit_config_is_valid_and_its_local_hooks_pass(
    bake: Bake, answers: dict[str, str], tmp_path: Path
) -> None:
    project = bake(**answers)
    env = offline_env(tmp_path / "home")
    run([sys.executable, "-m", "pre_commit", "validate-config"], project, env)

    config = load_yaml(project / ".pre-commit-config.yaml")
    local = [repo for repo in config["repos"] if repo["repo"] == "local"]
    hooks = {hook["id"] for repo in local for hook in repo["hooks"]}
    expected = {"ruff-check", "ruff-format", "lock-check"}
    assert hooks == expected | ({"hadolint"} if answers["with_container"] == "yes" else set())
    for repo in config["repos"]:
        if repo["repo"] != "local":
            assert re.fullmatch(r"v\d+\.\d+\.\d+", repo["rev"]), repo

    # The remote hooks need GitHub; the local ones run here, on the generated tree.
    (tmp_path / "local-hooks.yaml").write_text(yaml.safe_dump({"repos": local}))
    git(project, env, "init", "-q")
    git(project, env, "add", "-A")
    done = run(
        [
            *(sys.executable, "-m", "pre_commit", "run", "--all-files"),
            *("--config", str(tmp_path / "local-hooks.yaml")),
        ],
        project,
        {**env, "SKIP": "lock-check"},  # no locks yet; see the network test below
    )
    assert "Passed" in done.stdout
    if answers["with_container"] == "yes":
        assert re.search(r"^hadolint\.+Passed$", done.stdout, flags=re.MULTILINE), done.stdout
    assert run(["git", "diff", "--quiet"], project, env, expect=None).returncode == 0  # no fixes


@pytest.mark.parametrize("answers", GITHUB_CASES)
def test_ci_scripts_find_the_dev_lock_and_the_image_tiers(
    bake: Bake, answers: dict[str, str], tmp_path: Path
) -> None:
    """Run the `run:` scripts of the setup action and the tiers job as CI would."""
    project = bake(**answers, tiers="core, api:core, worker:core, tools:api", dev_tier="tools")
    scripts = {step.get("id"): step.get("run") for _, step in workflow_steps(project)}
    output = tmp_path / "github-output"

    def ci_step(step_id: str, expect: int) -> tuple[dict[str, str], str]:
        output.write_text("")
        env = offline_env(GITHUB_OUTPUT=str(output))
        done = run(["bash", "-e", "-c", scripts[step_id]], project, env, expect=expect)
        pairs = (line.partition("=") for line in output.read_text().splitlines())
        return {key: value for key, _, value in pairs}, done.stderr

    outputs, stderr = ci_step("dev", expect=1)
    assert "::error file=requirements/tools.txt::requirements/tools.txt is missing" in stderr
    (project / "requirements" / "tools.txt").write_text("")
    assert ci_step("dev", expect=0)[0] == {"lock": "requirements/tools.txt"}

    if answers["with_container"] == "yes":
        outputs, _ = ci_step("list", expect=0)
        assert sorted(json.loads(outputs["tiers"])) == ["api", "core", "worker"]
    else:
        assert "list" not in scripts


@pytest.mark.network
def test_lock_check_hook_follows_the_locks(bake: Bake, tmp_path: Path) -> None:
    project = bake(tiers="base, dev:base", with_container="no", ci_provider="none")
    run(["nox", "-s", "lock"], project, {**os.environ, "NO_COLOR": "1"})  # needs the index
    env = offline_env(tmp_path / "home")
    config = load_yaml(project / ".pre-commit-config.yaml")
    local = [repo for repo in config["repos"] if repo["repo"] == "local"]
    (tmp_path / "local-hooks.yaml").write_text(yaml.safe_dump({"repos": local}))
    git(project, env, "init", "-q")
    git(project, env, "add", "-A")
    hook = [sys.executable, "-m", "pre_commit", "run", "lock-check", "--all-files"]
    hook += ["--config", str(tmp_path / "local-hooks.yaml")]
    run(hook, project, env)  # the fresh locks pass, offline
    with (project / "requirements" / "base.in").open("a") as handle:
        handle.write("idna\n")
    done = run(hook, project, env, expect=1)
    assert re.search(r"\bbase\b", done.stdout), done.stdout
