"""The lock-refresh workflow: its scripts run as GitHub would, with stand-ins for
nox, uv and gh and a real git remote, and once end to end with the real lock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Bake, read_lock
from tests.offline_tools import (
    GITHUB_CASES,
    git,
    load_yaml,
    offline_env,
    run,
    workflow_steps,
)

pytestmark = pytest.mark.slow


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
        nox, tools = calls(log)
        assert nox == ["nox", "-s", "lock", "--", *expected, "--report", f"{out}/report.md"]
        assert tools == ["nox", "-s", "lock", "--", "--tools", *expected]  # under the cooldown
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
    nox, tools = calls(log)
    assert nox == [
        *("nox", "-s", "lock", "--", "--skip-cooldown", "urllib3"),
        *("--report", f"{out}/report.md"),
    ]
    assert tools == ["nox", "-s", "lock", "--", "--tools", "--skip-cooldown", "urllib3"]
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
