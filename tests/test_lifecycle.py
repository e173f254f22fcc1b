"""The generated project's CI, hooks and template updates, checked with the real tools.

- every workflow, composite action and dependabot.yml against the schemas
  check-jsonschema ships (offline), and zizmor with every audit on (offline);
- the lock-refresh workflow's scripts run as GitHub would, with stand-ins for
  nox, uv and gh and a real git remote;
- the pre-commit config with pre-commit itself, and its local hooks run;
- the CI steps that compute the dev lock and the image tiers, run as CI would;
- a real `cruft create` from a git copy of this template, a new template
  commit, `cruft check` failing, `cruft diff` showing only the user's edits,
  `cruft update` merging it next to them (answered with `-y`, on a pipe and
  on a terminal), and `cruft check` passing again; the same after plain
  cookiecutter; the bake's next steps printed once, never by a cruft re-render.

Every tool here runs with the proxy pointed at a closed port, so a test
that reached the network would fail instead of passing by luck.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SHA_PINNED, TEMPLATE, Bake, read_docs, read_lock

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
DEAD_PROXY = "http://127.0.0.1:9"
CASES = [
    pytest.param({"ci_provider": "github", "with_container": "yes"}, id="github-containers"),
    pytest.param({"ci_provider": "github", "with_container": "no"}, id="github-no-containers"),
    pytest.param({"ci_provider": "none", "with_container": "no"}, id="no-ci"),
]
GITHUB_CASES = CASES[:2]


def offline_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = DEAD_PROXY
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    if home is not None:  # no user config for git, cookiecutter or cruft
        home.mkdir(parents=True, exist_ok=True)
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_AUTHOR_NAME="Template Test",
            GIT_AUTHOR_EMAIL="test@example.com",
            GIT_COMMITTER_NAME="Template Test",
            GIT_COMMITTER_EMAIL="test@example.com",
            PRE_COMMIT_HOME=str(home / "pre-commit"),
        )
    env.update(extra)
    return env


def run(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    *,
    expect: int | None = 0,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if expect is not None:
        assert done.returncode == expect, (
            f"{' '.join(argv)} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def git(repo: Path, env: dict[str, str], *args: str) -> str:
    return run(["git", *args], repo, env).stdout.strip()


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.y*ml"))


def actions(project: Path) -> list[Path]:
    return sorted((project / ".github" / "actions").glob("*/action.y*ml"))


def workflow_steps(project: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in workflows(project):
        for name, job in load_yaml(path)["jobs"].items():
            for step in job["steps"]:
                yield name, step
    for path in actions(project):
        for step in load_yaml(path)["runs"]["steps"]:
            yield path.parent.name, step


# --- static checks of the generated files ---------------------------------------------


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


# --- the lock-refresh workflow -----------------------------------------------------------


def lock_refresh(project: Path) -> dict[str, Any]:
    return load_yaml(project / ".github" / "workflows" / "lock-refresh.yml")


@pytest.mark.parametrize("answers", GITHUB_CASES)
def test_lock_refresh_shape(bake: Bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    workflow = lock_refresh(project)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert triggers["workflow_dispatch"]["inputs"]["packages"]["required"] is False
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    jobs = workflow["jobs"]
    assert set(jobs) == {"refresh", "propose"}
    # Least privilege: the job that installs and runs the new packages may only read;
    # the one that writes runs none of them.
    assert jobs["refresh"]["permissions"] == {"contents": "read"}
    assert jobs["propose"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert jobs["propose"]["needs"] == "refresh"
    refresh = " ".join(step.get("run", "") for step in jobs["refresh"]["steps"])
    for command in (
        "nox -s lock -- --check",
        "nox -s lint tests",
        "nox -s audit",
        'nox -s lock -- "${lock_arguments[@]}" --report "$OUT/report.md"',
    ):
        assert command in refresh
    propose = " ".join(step.get("run", "") for step in jobs["propose"]["steps"])
    assert not re.search(r"\b(nox|pip|uv|python|pytest|invoke)\b", propose), propose
    for step in jobs["propose"]["steps"]:
        assert "setup-tools" not in step.get("uses", "")


def stand_ins(folder: Path) -> Path:
    """nox, uv and gh that record their arguments; nox writes the report it is asked for."""
    folder.mkdir()
    for name in ("nox", "uv", "gh"):
        script = folder / name
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            "argv = [os.path.basename(sys.argv[0]), *sys.argv[1:]]\n"
            "with open(os.environ['STAND_IN_LOG'], 'a') as log:\n"
            "    log.write(json.dumps(argv) + '\\n')\n"
            "if '--report' in argv:\n"
            "    with open(argv[argv.index('--report') + 1], 'w') as report:\n"
            "        report.write('## base\\n\\n| package | from | to |\\n|---|---|---|\\n"
            "| idna | 3.6 | 3.7 |\\n')\n"
            "if argv[1:3] == ['pr', 'list']:\n"
            "    print(os.environ.get('OPEN_PULL_REQUEST', ''))\n"
        )
        script.chmod(0o755)
    return folder


def run_step(
    script: str, cwd: Path, env: dict[str, str], *, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """A `run:` step as GitHub runs it on Linux."""
    return run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd, env, expect=expect
    )


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    log.unlink()
    return [json.loads(line) for line in lines]


def test_lock_refresh_upgrades_what_was_asked(bake: Bake, tmp_path: Path) -> None:
    project = bake()
    (project / "requirements" / "base.txt").write_text("the new base lock\n")
    (project / "requirements" / "pylock.base.toml").write_text("# the new base pylock\n")
    script = {step.get("id"): step.get("run") for _, step in workflow_steps(project)}["upgrade"]
    bin_dir, log, out = stand_ins(tmp_path / "bin"), tmp_path / "calls.jsonl", tmp_path / "out"

    def upgrade(
        packages: str, expect: int = 0, skip_cooldown: str = "false"
    ) -> subprocess.CompletedProcess[str]:
        env = offline_env(STAND_IN_LOG=str(log), PACKAGES=packages, OUT=str(out))
        env["SKIP_COOLDOWN"] = skip_cooldown
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        return run_step(script, project, env, expect=expect)

    for packages, expected in [
        ("", ["--upgrade"]),
        ("urllib3", ["--upgrade-package", "urllib3"]),
        (
            "urllib3, requests\nzope.interface",
            [
                *("--upgrade-package", "urllib3", "--upgrade-package", "requests"),
                *("--upgrade-package", "zope.interface"),
            ],
        ),
    ]:
        upgrade(packages)
        nox, *uv = calls(log)
        assert nox == ["nox", "-s", "lock", "--", *expected, "--report", f"{out}/report.md"]
        assert uv == [
            [
                *("uv", "pip", "compile", "--quiet", "--universal", "--generate-hashes"),
                *("--python-version", "3.11", *expected, f"{name}.in", "-o", f"{name}.txt"),
            ]
            for name in (
                ".github/cruft-requirements",
                "requirements/tools/audit",
                "requirements/tools/safety",
            )
        ]
        assert (out / "requirements" / "base.txt").read_text() == "the new base lock\n"
        assert (out / "requirements" / "pylock.base.toml").read_text() == "# the new base pylock\n"
        assert (out / "requirements" / "tools" / "audit.txt").read_text() == (
            project / "requirements" / "tools" / "audit.txt"
        ).read_text()
        assert (out / "cruft-requirements.txt").read_text() == (
            project / ".github" / "cruft-requirements.txt"
        ).read_text()
        assert "| idna | 3.6 | 3.7 |" in (out / "report.md").read_text()

    for bad in ("--index-url=https://evil.example/simple", "numpy;id", "../x", "a b -r x"):
        done = upgrade(bad, expect=1)
        assert "::error::packages: " in done.stdout and "is not a package name" in done.stdout
        assert calls(log) == []

    # A security fix younger than the cooldown: the tier locks take it now.
    upgrade("urllib3", skip_cooldown="true")
    nox, *uv = calls(log)
    assert nox == [
        *("nox", "-s", "lock", "--", "--skip-cooldown", "urllib3"),
        *("--report", f"{out}/report.md"),
    ]
    assert all(call[-5:-3] == ["--upgrade-package", "urllib3"] for call in uv)
    done = upgrade("", expect=1, skip_cooldown="true")
    assert "::error::skip_cooldown: name the packages" in done.stdout
    assert calls(log) == []


def test_lock_refresh_opens_updates_and_closes_one_pull_request(bake: Bake, tmp_path: Path) -> None:
    project = bake(with_container="no")
    env = offline_env(tmp_path / "home")
    (project / "requirements" / "base.txt").write_text("the old base lock\n")
    (project / "requirements" / "pylock.base.toml").write_text("# pylock of the old base lock\n")
    git(project, env, "init", "-q", "-b", "main")
    git(project, env, "add", "-A")
    git(project, env, "commit", "-q", "-m", "generated")
    origin = tmp_path / "origin.git"  # the repository on GitHub
    run(["git", "clone", "-q", "--bare", str(project), str(origin)], tmp_path, env)
    script = {step.get("id"): step.get("run") for _, step in workflow_steps(project)}["propose"]
    bin_dir, log = stand_ins(tmp_path / "bin"), tmp_path / "calls.jsonl"
    artifact = tmp_path / "artifact"  # what the refresh job handed over
    (artifact / "requirements").mkdir(parents=True)
    shutil.copy(project / ".github" / "cruft-requirements.txt", artifact)
    shutil.copytree(project / "requirements" / "tools", artifact / "requirements" / "tools")
    (artifact / "report.md").write_text("## base\n\nidna 3.6 -> 3.7\n")
    run_url = "https://github.com/team/service/actions/runs/42"

    def propose(run_number: int, base_lock: str, packages: str, open_pr: str) -> Path:
        (artifact / "requirements" / "base.txt").write_text(base_lock)
        (artifact / "requirements" / "pylock.base.toml").write_text(f"# pylock of {base_lock}")
        checkout = tmp_path / f"checkout-{run_number}"  # each job starts from a fresh checkout
        run(["git", "clone", "-q", str(origin), str(checkout)], tmp_path, env)
        runner_temp = tmp_path / f"runner-temp-{run_number}"
        runner_temp.mkdir()
        step_env = {
            **env,
            "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
            "STAND_IN_LOG": str(log),
            "OPEN_PULL_REQUEST": open_pr,
            "GH_TOKEN": "token",
            "BRANCH": "lock-refresh",
            "BASE": "main",
            "PACKAGES": packages,
            "FILES": str(artifact),
            "RUN_URL": run_url,
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_SERVER_URL": "https://github.com",
        }
        run_step(script, checkout, step_env)
        return runner_temp / "pull-request.md"

    # First week: the locks moved, no pull request yet.
    body = propose(1, "the new base lock\n", "", open_pr="")
    assert git(origin, env, "diff", "--name-only", "main", "lock-refresh").split() == [
        "requirements/base.txt",
        "requirements/pylock.base.toml",
    ]
    assert git(origin, env, "show", "lock-refresh:requirements/base.txt") == "the new base lock"
    assert git(origin, env, "rev-list", "--count", "main..lock-refresh") == "1"
    gh = [call for call in calls(log) if call[0] == "gh"]
    assert gh[0][:3] == ["gh", "pr", "list"]
    assert gh[1] == ["gh", "auth", "setup-git", "--hostname", "github.com"]
    assert gh[2] == [
        *("gh", "pr", "create", "--base", "main", "--head", "lock-refresh"),
        *("--title", "Refresh the locks", "--body-file", str(body)),
    ]
    assert body.read_text().startswith("## base\n\nidna 3.6 -> 3.7\n")
    assert run_url in body.read_text()

    # A targeted upgrade while that pull request is open: the same branch and pull request.
    body = propose(2, "the newer base lock\n", "urllib3", open_pr="7")
    assert git(origin, env, "show", "lock-refresh:requirements/base.txt") == "the newer base lock"
    assert git(origin, env, "rev-list", "--count", "main..lock-refresh") == "1"
    gh = [call for call in calls(log) if call[0] == "gh"]
    assert gh[-1] == [
        *("gh", "pr", "edit", "7"),
        *("--title", "Upgrade urllib3 in the locks", "--body-file", str(body)),
    ]

    # Main is current again: the open pull request is closed, nothing is pushed.
    before = git(origin, env, "rev-parse", "lock-refresh")
    propose(3, "the old base lock\n", "", open_pr="7")
    gh = [call for call in calls(log) if call[0] == "gh"]
    assert gh[-1][:4] == ["gh", "pr", "close", "7"] and "--delete-branch" in gh[-1]
    assert not [call for call in gh if call[1:3] in (["pr", "create"], ["pr", "edit"])]
    assert git(origin, env, "rev-parse", "lock-refresh") == before


@pytest.mark.network
def test_lock_refresh_end_to_end_with_the_real_lock(bake: Bake, tmp_path: Path) -> None:
    """A project a release behind: the refresh upgrades it for real, and the pull request says so.

    The upgrade step runs the real `nox -s lock` and uv against the package
    index; only gh is a stand-in, and the remote is a real git repository.
    """
    project = bake(tiers="base, dev:base", with_container="no")
    base_in = project / "requirements" / "base.in"
    base_in.write_text(base_in.read_text().replace("\nstructlog\n", "\nstructlog==24.1.0\n"))
    run(["nox", "-s", "lock"], project, {**os.environ, "NO_COLOR": "1"})
    base_in.write_text(base_in.read_text().replace("\nstructlog==24.1.0\n", "\nstructlog\n"))
    run(["nox", "-s", "lock"], project, {**os.environ, "NO_COLOR": "1"})  # keeps 24.1.0
    assert {"name": "structlog", "version": "24.1.0"}.items() <= next(
        pin for pin in read_lock(project, "requirements/base.txt") if pin["name"] == "structlog"
    ).items()
    env = offline_env(tmp_path / "home")
    git(project, env, "init", "-q", "-b", "main")
    git(project, env, "add", "-A")
    git(project, env, "commit", "-q", "-m", "generated")
    origin = tmp_path / "origin.git"
    run(["git", "clone", "-q", "--bare", str(project), str(origin)], tmp_path, env)
    steps = {step.get("id"): step.get("run") for _, step in workflow_steps(project)}

    refresh = tmp_path / "refresh"  # the refresh job's checkout, with the index reachable
    run(["git", "clone", "-q", str(origin), str(refresh)], tmp_path, env)
    out = tmp_path / "runner-temp" / "lock-refresh"
    online = {**os.environ, "NO_COLOR": "1", "PACKAGES": "", "OUT": str(out)}
    run_step(steps["upgrade"], refresh, online)
    run(["nox", "-s", "lock", "--", "--check"], refresh, online)
    report = (out / "report.md").read_text()
    assert re.search(r"^- structlog 24\.1\.0 → \S+ \(base, dev\)$", report, re.MULTILINE), report

    checkout = tmp_path / "propose"
    run(["git", "clone", "-q", str(origin), str(checkout)], tmp_path, env)
    log = tmp_path / "calls.jsonl"
    propose_env = {
        **env,
        "PATH": f"{stand_ins(tmp_path / 'bin')}{os.pathsep}{env['PATH']}",
        "STAND_IN_LOG": str(log),
        "OPEN_PULL_REQUEST": "",
        "BRANCH": "lock-refresh",
        "BASE": "main",
        "PACKAGES": "",
        "FILES": str(out),
        "RUN_URL": "https://github.com/team/service/actions/runs/1",
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "GITHUB_SERVER_URL": "https://github.com",
    }
    run_step(steps["propose"], checkout, propose_env)
    moved = git(origin, env, "diff", "--name-only", "main", "lock-refresh").split()
    assert {"requirements/base.txt", "requirements/dev.txt", "requirements/_union.txt"} <= set(
        moved
    )
    [create] = [call for call in calls(log) if call[1:3] == ["pr", "create"]]
    body = Path(create[create.index("--body-file") + 1]).read_text()
    assert body.startswith(report)


@pytest.mark.parametrize("answers", GITHUB_CASES)
def test_actionlint_config_accepts_exactly_the_self_repository_references(
    bake: Bake, answers: dict[str, str]
) -> None:
    """actionlint's message for each `$/` reference matches the shipped ignore pattern.

    The message is actionlint's own wording (rule-action, 1.7.12); anything
    else actionlint says, about these references or others, is not ignored.
    """
    project = bake(**answers)
    config = load_yaml(project / ".github" / "actionlint.yaml")
    assert list(config) == ["paths"]
    [(glob, settings)] = config["paths"].items()
    assert glob == ".github/workflows/**/*.{yml,yaml}"
    patterns = [re.compile(pattern) for pattern in settings["ignore"]]

    def ignored(message: str) -> bool:
        return any(pattern.search(message) for pattern in patterns)

    def invalid_format(spec: str, why: str) -> str:
        return (
            f"specifying action {json.dumps(spec)} in invalid format because {why}. available "
            'formats are "{owner}/{repo}@{ref}" or "{owner}/{repo}/{path}@{ref}"'
        )

    references = {step["uses"] for _, step in workflow_steps(project) if "uses" in step}
    own = sorted(uses for uses in references if uses.startswith("$/"))
    assert own == ["$/.github/actions/setup-tools"]
    assert all(ignored(invalid_format(uses, "ref is missing")) for uses in own)
    assert not ignored(invalid_format("actions/checkout", "ref is missing"))
    assert not ignored(invalid_format("$/.github/actions/setup-tools", "owner is missing"))
    assert not ignored(
        'input "cache-noxx" is not defined in action "$/.github/actions/setup-tools"'
    )


# --- template updates with cruft ---------------------------------------------------------


def template_files() -> list[Path]:
    """The template as a user would clone it: tracked and new files, nothing ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return [Path(name) for name in listed if name and (TEMPLATE / name).is_file()]


@pytest.fixture
def template_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A git repository holding a copy of this template, with one commit."""
    env = offline_env(tmp_path / "home")
    repo = tmp_path / "cookiecutter-lockstep"
    for relative in template_files():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE / relative, repo / relative)
    git(repo, env, "init", "-q", "-b", "main")
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "-m", "template v1")
    return repo, env


def commit_template_change(repo: Path, env: dict[str, str]) -> str:
    """A new template commit: a README line, and a new dev tool written by the hook."""
    readme = repo / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text() + "\nTemplate v2 was here.\n")
    hook = repo / "hooks" / "post_gen_project.py"
    text = hook.read_text()
    assert 'DEV_PACKAGES = ["pytest",' in text
    hook.write_text(
        text.replace('DEV_PACKAGES = ["pytest",', 'DEV_PACKAGES = ["coverage", "pytest",')
    )
    git(repo, env, "commit", "-q", "-am", "template v2")
    return git(repo, env, "rev-parse", "HEAD")


def tree(project: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(project)): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def cruft(
    project: Path, env: dict[str, str], *args: str, expect: int | None = 0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "cruft", *args], project, env, expect=expect, stdin=stdin)


def in_terminal(
    argv: list[str], cwd: Path, env: dict[str, str], prompt: str, answers: list[str]
) -> tuple[int, str]:
    """Run `argv` on a pseudo-terminal, typing the next answer each time `prompt` appears."""
    terminal, child_end = pty.openpty()
    output = b""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=child_end,
        stdout=child_end,
        stderr=child_end,
        start_new_session=True,  # no way to the real terminal
    ) as process:
        os.close(child_end)
        typed = 0
        while True:
            if not select.select([terminal], [], [], 300)[0]:
                process.kill()
                raise AssertionError(f"{argv} stalled:\n{output.decode()[-4000:]}")
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the command exited and the terminal closed
                break
            if not chunk:
                break
            output += chunk
            if typed < len(answers) and output.count(prompt.encode()) > typed:
                os.write(terminal, f"{answers[typed]}\n".encode())
                typed += 1
    os.close(terminal)
    return process.returncode, output.decode().replace("\r\n", "\n")


UPDATE_PROMPT = "Apply diff and update?"


def update_with_yes_flag(project: Path, env: dict[str, str]) -> str:
    done = cruft(project, env, "update", "-y")
    return done.stdout + done.stderr


def update_answering_on_stdin(project: Path, env: dict[str, str]) -> str:
    """Answers piped in: a mistyped one, "v" to look at the changes, then yes."""
    done = cruft(project, env, "update", stdin="maybe\nv\ny\n")
    output = done.stdout + done.stderr
    assert output.count(UPDATE_PROMPT) == 3
    assert "'maybe' is not one of 'y', 'n', 's', 'v'" in output
    assert "\n+Template v2 was here.\n" in output
    return output


def update_answering_in_a_terminal(project: Path, env: dict[str, str]) -> str:
    argv = [sys.executable, "-m", "cruft", "update"]
    status, output = in_terminal(argv, project, env, UPDATE_PROMPT, ["y"])
    assert status == 0, output[-4000:]
    assert output.count(UPDATE_PROMPT) == 1
    return output


def check_update_cycle(
    project: Path,
    repo: Path,
    env: dict[str, str],
    first: str,
    *,
    template: str | None = None,
    publish: Callable[[], None] = lambda: None,
    update: Callable[[Path, dict[str, str]], str] = update_with_yes_flag,
) -> None:
    """From a fresh project at `first`: edit, new template commit, check, diff, update, check.

    `template` is what .cruft.json must name (default: the repository's path);
    `publish` makes a new template commit visible there; `update` runs `cruft update`
    and answers it.
    """
    state = json.loads((project / ".cruft.json").read_text())
    assert state["template"] == (template or str(repo))
    assert state["commit"] == first
    assert state["context"]["cookiecutter"]["_commit"] == first
    git(project, env, "init", "-q", "-b", "main")
    git(project, env, "add", "-A")
    git(project, env, "commit", "-q", "-m", "generated")
    cruft(project, env, "check")

    # The user's own edits, which the update must keep.
    with (project / "requirements" / "base.in").open("a") as handle:
        handle.write("httpx\n")
    readme = project / "README.md"
    readme.write_text("Our team's note.\n\n" + readme.read_text())
    git(project, env, "commit", "-q", "-am", "our edits")
    before = tree(project)

    second = commit_template_change(repo, env)
    publish()
    assert cruft(project, env, "check", expect=None).returncode != 0
    # `cruft diff`: this project's own edits against the template at the recorded commit.
    shown = cruft(project, env, "diff").stdout
    assert "\n-Our team's note.\n" in shown and "\n-httpx\n" in shown
    assert "Template v2" not in shown and "Next steps" not in shown
    assert "Next steps" not in update(project, env)
    after = tree(project)

    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    assert changed == {"README.md", "requirements/dev.in", ".cruft.json"}
    readme_text = readme.read_text()
    assert readme_text.startswith("Our team's note.\n")
    assert readme_text.count("Template v2 was here.") == 1
    dev_in = (project / "requirements" / "dev.in").read_text().splitlines()
    assert dev_in.count("coverage") == 1 and dev_in.count("pytest") == 1
    assert (project / "requirements" / "base.in").read_text().endswith("structlog\nhttpx\n")
    assert not [name for name in after if name.endswith((".rej", ".orig"))]
    assert json.loads(after[".cruft.json"])["commit"] == second

    git(project, env, "add", "-A")
    git(project, env, "commit", "-q", "-m", "template v2")
    cruft(project, env, "check")


@pytest.mark.parametrize("answers", CASES)
def test_cruft_create_then_update(
    template_repo: tuple[Path, dict[str, str]], answers: dict[str, str], tmp_path: Path
) -> None:
    repo, env = template_repo
    first = git(repo, env, "rev-parse", "HEAD")
    out = tmp_path / "projects"
    out.mkdir()
    created = cruft(
        tmp_path,
        env,
        *("create", str(repo), "--no-input", "--output-dir", str(out)),
        *("--extra-context", json.dumps(answers)),
    )
    project = out / "my-service"
    assert created.stdout.count("Created my-service. Next steps") == 1
    context = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    assert {key: context[key] for key in answers} == answers
    assert (project / ".github").is_dir() == (answers["ci_provider"] == "github")
    check_update_cycle(project, repo, env, first)
    assert (project / ".github").is_dir() == (answers["ci_provider"] == "github")
    assert (project / "Dockerfile").is_file() == (answers["with_container"] == "yes")


def test_plain_cookiecutter_records_the_template_for_cruft(
    template_repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """`python -m cookiecutter .` from a clean checkout writes what `cruft create` would."""
    repo, env = template_repo
    first = git(repo, env, "rev-parse", "HEAD")
    made_by_cruft = tmp_path / "by-cruft"
    made_by_cruft.mkdir()
    cruft(tmp_path, env, "create", str(repo), "--no-input", "--output-dir", str(made_by_cruft))
    out = tmp_path / "by-cookiecutter"
    cookiecutter = [sys.executable, "-m", "cookiecutter", "--no-input", "--output-dir", str(out)]
    done = run([*cookiecutter, "."], repo, {**env, "PWD": str(repo)})  # relative, as in the README
    assert "no `origin` remote" in done.stderr
    project = out / "my-service"
    expected = (made_by_cruft / "my-service" / ".cruft.json").read_text()
    assert (project / ".cruft.json").read_text() == expected
    check_update_cycle(project, repo, env, first)


def test_no_cruft_state_from_a_dirty_checkout(
    template_repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = template_repo
    (repo / "README.md").write_text("uncommitted\n")
    out = tmp_path / "out"
    done = run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "--output-dir", str(out), str(repo)],
        tmp_path,
        env,
    )
    assert not (out / "my-service" / ".cruft.json").exists()
    assert "cruft link" in done.stderr


def bake_from(clone: Path, out: Path, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """`python -m cookiecutter --no-input --output-dir OUT .` in the clone, as the Quick start."""
    cookiecutter = [sys.executable, "-m", "cookiecutter", "--no-input", "--output-dir", str(out)]
    done = run([*cookiecutter, "."], clone, {**env, "PWD": str(clone)})
    return json.loads((out / "my-service" / ".cruft.json").read_text()), done.stderr


@pytest.mark.parametrize(
    "update",
    [update_with_yes_flag, update_answering_on_stdin, update_answering_in_a_terminal],
    ids=["yes-flag", "answers-piped", "terminal"],
)
def test_baking_from_a_clone_records_its_origin_url(
    template_repo: tuple[Path, dict[str, str]],
    tmp_path: Path,
    update: Callable[[Path, dict[str, str]], str],
) -> None:
    """Teammates can `cruft update` from the URL the template was cloned from, as documented."""
    repo, env = template_repo
    first = git(repo, env, "rev-parse", "HEAD")
    hosted = tmp_path / "hosted" / "cookiecutter-lockstep.git"
    run(["git", "clone", "-q", "--bare", str(repo), str(hosted)], tmp_path, env)
    url = hosted.as_uri()
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", url, str(clone)], tmp_path, env)

    state, stderr = bake_from(clone, tmp_path / "projects", env)
    assert state["template"] == state["context"]["cookiecutter"]["_template"] == url
    assert "note:" not in stderr
    check_update_cycle(
        tmp_path / "projects" / "my-service",
        repo,
        env,
        first,
        template=url,
        publish=lambda: git(repo, env, "push", "-q", url, "main"),
        update=update,
    )


def test_cruft_json_gets_no_credentials_and_no_unpushed_commit(
    template_repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = template_repo
    secret_url = "https://deploy:s3cret@git.example.com/team/cookiecutter-lockstep.git"
    git(repo, env, "remote", "add", "origin", secret_url)
    git(repo, env, "update-ref", "refs/remotes/origin/main", "HEAD")  # as after a push

    state, stderr = bake_from(repo, tmp_path / "pushed", env)
    assert state["template"] == "https://git.example.com/team/cookiecutter-lockstep.git"
    assert "s3cret" not in json.dumps(state) and "deploy" not in json.dumps(state)

    # A template commit made here and not pushed: origin would not have it.
    (repo / "README.md").write_text("a local change\n")
    git(repo, env, "commit", "-q", "-am", "local only")
    state, stderr = bake_from(repo, tmp_path / "unpushed", env)
    assert state["template"] == str(repo)
    [note] = [line for line in stderr.splitlines() if line.startswith("note:")]
    assert "not on any branch of origin" in note and "cruft link" in note
    assert "s3cret" not in stderr


# --- the template's own first day ----------------------------------------------------------


@pytest.mark.parametrize("ci", ["", "true"])
def test_container_tests_skip_with_a_reason_without_buildah(ci: str) -> None:
    """Without buildah and mmdebstrap they skip saying why; under CI=true that fails the run."""
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(PATH=str(BIN), CI=ci)  # this environment's tools, no buildah or mmdebstrap
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_images.py"],
        cwd=TEMPLATE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    reason = "needs buildah and mmdebstrap (`.ci/run` installs them as root with apt)"
    assert reason in done.stdout, done.stdout[-3000:]
    assert "FileNotFoundError" not in done.stdout
    if ci:
        assert done.returncode == 1 and "skipped under CI=true" in done.stdout
        assert re.search(r" \d+ (failed|errors?)", done.stdout.splitlines()[-1])
        assert " passed" not in done.stdout.splitlines()[-1]
    else:
        assert done.returncode == 0 and " skipped" in done.stdout.splitlines()[-1]
        assert " passed" not in done.stdout.splitlines()[-1]


def test_run_py_says_what_it_installs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests import run as runner

    lock = tmp_path / "dev.txt"
    lock.write_text("# a lock with nothing to install\n")
    monkeypatch.setattr(runner, "LOCK", lock)
    monkeypatch.setattr(runner, "ROOT", tmp_path)
    python = runner.ensure_environment(tmp_path / "venv")
    assert capsys.readouterr().out.splitlines() == [
        f"tests/run.py: creating the test environment {tmp_path / 'venv'}",
        "tests/run.py: installing dev.txt: 0 packages, hashes required "
        "(about a minute the first time)",
        "tests/run.py: installed dev.txt; running pytest",
    ]
    assert runner.ensure_environment(tmp_path / "venv") == python
    assert capsys.readouterr().out == ""  # already current: nothing to say


def console_commands(readme: str, heading: str) -> list[str]:
    """The `$ ` lines of each console block under a README heading, one script per block."""
    section = readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```console\n(.*?)```", section, flags=re.DOTALL)
    return [
        "\n".join(line[2:] for line in block.splitlines() if line.startswith("$ "))
        for block in blocks
    ]


@pytest.mark.network
def test_readme_first_day_commands_work_as_written(bake: Bake, tmp_path: Path) -> None:
    """Getting started, the switch to the locked tools and the git hooks, run as a user would.

    Another virtual environment is active throughout, as it often is: the
    commands must still fill `.venv`, and leave the other one alone.
    """
    project = bake(tiers="base, dev:base", with_container="no", ci_provider="none")
    readme = (project / "README.md").read_text()
    getting_started, switch = console_commands(readme, "Getting started")
    [hooks] = console_commands(readme, "Git hooks")
    other = tmp_path / "other-venv"
    run(["uv", "venv", "-q", str(other)], tmp_path, {**os.environ})
    env = {key: value for key, value in os.environ.items() if key != "PIP_FIND_LINKS"}
    env.update(PIP_CONFIG_FILE=os.devnull, VIRTUAL_ENV=str(other), NO_COLOR="1")
    env["PATH"] = f"{other / 'bin'}{os.pathsep}{env['PATH']}"
    git(project, offline_env(tmp_path / "home"), "init", "-q")

    for script in (getting_started, switch, hooks):
        run(["bash", "-e", "-c", script], project, env)

    pins = {pin["name"]: pin["version"] for pin in read_lock(project, "requirements/dev.txt")}
    ruff = run([str(project / ".venv" / "bin" / "ruff"), "--version"], project, env).stdout
    assert ruff.split() == ["ruff", pins["ruff"]]
    pre_commit = run([str(project / ".venv" / "bin" / "pre-commit"), "--version"], project, env)
    assert pre_commit.stdout.split() == ["pre-commit", pins["pre-commit"]]
    assert "/.venv/bin/python" in (project / ".git" / "hooks" / "pre-commit").read_text()
    assert not (other / "bin" / "ruff").exists() and not (other / "bin" / "pre-commit").exists()


def test_quick_start_no_input_example_bakes_beside_the_clone(
    template_repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """The README's `--no-input` example, run as written in a clone: the clone stays clean."""
    repo, env = template_repo
    readme = (TEMPLATE / "README.md").read_text()
    [example] = re.findall(r"`(python -m cookiecutter --no-input [^`]*)`", readme)
    assert "--output-dir .." in example
    run(["bash", "-e", "-c", example], repo, {**env, "PWD": str(repo)})
    project = repo.parent / "my-service"
    assert (project / "requirements" / "api.in").read_text().count("-r core.in") == 1
    assert json.loads((project / ".cruft.json").read_text())["template"] == str(repo)
    assert git(repo, env, "status", "--porcelain") == ""
