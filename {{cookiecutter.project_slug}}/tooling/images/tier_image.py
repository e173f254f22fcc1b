"""Container images per tier: what the build needs, and the smoke checks.

One Dockerfile serves every tier (`--build-arg TIER=...`); the Python version
comes from .python-version as `--build-arg PYTHON_VERSION=...`, so the image
and the locks cannot disagree. A CA bundle, a pip.conf or a .netrc with
credentials reaches the build only as a build secret, never as an argument or
a layer. How each engine builds, inspects and runs is in tooling/engines/.

Images are reproducible: every timestamp comes from SOURCE_DATE_EPOCH (the
last commit's time), the base image is pinned by digest in base-images.lock
(tooling/base_image/),
and the smoke test proves an image holds exactly its tier's lock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from tooling import lockfile, summary
from tooling.engines import Engine, ImageError, ImageFacts, Secrets, last_line
from tooling.project import Project
from tooling.smoke import check_environment

DEFAULT_BUDGET_MB = 500
UV_REQUIREMENTS = Path("dist") / "uv-requirements.txt"

# Runs inside the image: import every top-level module each installed
# distribution provides, and report the user id.
IMPORT_CHECK = r"""
import importlib, importlib.metadata as md, json, os
names = set()
for dist in md.distributions():
    top = dist.read_text("top_level.txt")
    if top:
        names.update(line.strip() for line in top.splitlines())
    else:
        for file in dist.files or []:
            first = file.parts[0]
            if first.endswith((".dist-info", ".data")) or first in ("..", "bin", "__pycache__"):
                continue
            if len(file.parts) > 1 or first.endswith(".py"):
                names.add(first.removesuffix(".py"))
names = sorted(n for n in names if n and n.isidentifier() and not n.startswith("_"))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:
        failed[name] = f"{type(error).__name__}: {error}"
print(json.dumps({"uid": os.getuid(), "imported": names, "failed": failed}))
"""


def image_name(project_name: str, tier: str) -> str:
    return f"{project_name}:{tier}"


def secret_files(
    ca_bundle: str | None, pip_conf: str | None, netrc: str | None, env: Mapping[str, str]
) -> Secrets:
    """The CA bundle (--ca-bundle, else SSL_CERT_FILE), pip.conf and .netrc to pass as secrets."""
    ca = ca_bundle or env.get("SSL_CERT_FILE") or None
    paths = []
    for option, value in (("--ca-bundle", ca), ("--pip-conf", pip_conf), ("--netrc", netrc)):
        if value and not Path(value).is_file():
            raise ImageError(f"{option} {value}: no such file")
        paths.append(Path(value) if value else None)
    return Secrets(*paths)


def uv_requirements(project: Project) -> str:
    """uv's pin and hashes from the dev tier's lock: what the image's environment stage installs."""
    source = f"requirements/{project.dev_tier}.txt"
    lock = lockfile.read(project.requirements_dir / f"{project.dev_tier}.txt", source)
    for pin in lock.pins:
        if pin.name == "uv":
            if not pin.hashes:
                raise ImageError(f"{source} pins uv without hashes: run `nox -s lock`")
            return "\n".join(pin.lines) + "\n"
    raise ImageError(
        f"{source} does not pin uv, which the image build installs: "
        f"add uv to requirements/{project.dev_tier}.in and run `nox -s lock`"
    )


def write_uv_requirements(project: Project) -> Path:
    """dist/uv-requirements.txt, a small file of its own so no tier's layers depend on the dev lock."""
    path = project.root / UV_REQUIREMENTS
    path.parent.mkdir(exist_ok=True)
    text = uv_requirements(project)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


# --- the smoke test of a built image ----------------------------------------------------


def budget_mb(project: Project, tier: str, platform: str | None = None) -> int:
    """[tool.lockstep.platform-budget-mb."PLATFORM"] TIER, else image-budget-mb TIER, else 500."""
    own = project.settings.get("platform-budget-mb", {}).get(platform or "", {})
    if tier in own:
        return int(own[tier])
    budgets = project.settings.get("image-budget-mb", {})
    return int(budgets.get(tier, DEFAULT_BUDGET_MB))


def budget_setting(project: Project, tier: str, platform: str | None) -> str:
    """Where the tier's budget is set, for the line that says it is over."""
    if tier in project.settings.get("platform-budget-mb", {}).get(platform or "", {}):
        return f'[tool.lockstep.platform-budget-mb."{platform}"] {tier}'
    also = f' or [tool.lockstep.platform-budget-mb."{platform}"] {tier}' if platform else ""
    return f"[tool.lockstep.image-budget-mb] {tier}{also}"


def summarize_images(
    project: Project,
    title: str,
    checked: Sequence[tuple[str, str, ImageFacts]],
    platform: str | None = None,
) -> None:
    """Tier, image, image ID and size against budget, for the CI step summary."""
    rows = []
    for tier, image, facts in checked:
        size_mb, budget = facts.size / 1_000_000, budget_mb(project, tier, platform)
        verdict = "within budget" if size_mb <= budget else "OVER BUDGET"
        rows.append((tier, image, facts.id, f"{size_mb:.0f} MB", f"{budget} MB ({verdict})"))
    header = ("tier", "image", "image ID", "size", "budget")
    summary.append("\n".join([f"## {title}", "", *summary.table(header, rows)]))


def smoke_image(
    engine: Engine,
    image: str,
    tier: str,
    project: Project,
    version: str,
    platform: str | None = None,
) -> list[str]:
    """Check a built image (of `platform`, when several are built); return one line per check
    passed, raise naming what failed."""
    facts = engine.facts(image)
    summarize_images(project, "Image smoke test", [(tier, image, facts)], platform)
    # First, so a tampered image is named for what changed, not for what broke.
    passed = check_environment(
        "/opt/venv/bin/python",
        lambda argv: engine.run_in(image, argv),
        image,
        project.requirements_dir / f"{tier}.txt",
        f"requirements/{tier}.txt",
        project.python_version,
        (project.name, version),
    )
    if not facts.entrypoint:
        raise ImageError(f"{image} has no ENTRYPOINT")
    shown = engine.run_in(image, [*facts.entrypoint, "--version"])
    if shown.returncode != 0 or version not in shown.stdout:
        raise ImageError(
            f"{image}: --version did not print {version}: "
            f"{last_line(shown.stdout or shown.stderr)!r}"
        )
    passed.append(f"--version: {shown.stdout.strip()}")

    test = facts.healthcheck
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        raise ImageError(f"{image} has no HEALTHCHECK (build with --format docker)")
    command = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
    health = engine.run_in(image, command)
    if health.returncode != 0:
        raise ImageError(
            f"{image}: the HEALTHCHECK failed: {last_line(health.stdout or health.stderr)}"
        )
    passed.append(f"HEALTHCHECK {' '.join(command)}: exit 0")

    checked = engine.run_in(image, ["/opt/venv/bin/python", "-c", IMPORT_CHECK])
    try:
        report = json.loads(checked.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise ImageError(
            f"{image}: the import check did not run: {last_line(checked.stderr)}"
        ) from None
    if report["failed"]:
        failures = "; ".join(f"{name} ({why})" for name, why in report["failed"].items())
        raise ImageError(f"{image}: modules that do not import: {failures}")
    passed.append(f"imports: {len(report['imported'])} top-level modules")
    if report["uid"] != 1000:
        raise ImageError(f"{image}: runs as uid {report['uid']}, expected 1000")
    passed.append("user: uid 1000")

    size_mb = facts.size / 1_000_000
    budget = budget_mb(project, tier, platform)
    if size_mb > budget:
        raise ImageError(
            f"{image} is {size_mb:.0f} MB, over its {budget} MB budget "
            f"({budget_setting(project, tier, platform)} in pyproject.toml)"
        )
    passed.append(f"size: {size_mb:.0f} MB of a {budget} MB budget")
    return passed
