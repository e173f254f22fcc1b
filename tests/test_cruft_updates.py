"""Template updates with cruft: a real `cruft create` from a git copy of this
template, a new template commit, `cruft check` failing, `cruft diff` showing
only the user's edits, `cruft update` merging it next to them (answered with
`-y`, on a pipe and on a terminal), and `cruft check` passing again; the same
after plain cookiecutter; the bake's next steps printed once, never by a
cruft re-render.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.offline_tools import (
    CASES,
    git,
    run,
)

pytestmark = pytest.mark.slow


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
