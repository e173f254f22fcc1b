"""Lock, lint, test, audit and build the project; plain `nox` runs lock_check, lint and tests.

Each session wraps the tooling package; `invoke --list` has the same tasks under the same
names (README, "Daily tasks"). Options go after `--`, e.g. `nox -s lock -- --help`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # nox does not put the noxfile's folder on sys.path

from tooling import ToolingError, interpreter, lock, project, summary  # noqa: E402
from tooling.lock import fresh  # noqa: E402

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lock_check", "lint", "tests"]

# The supply-chain tools, locked with hashes: pip-audit, cvss and cyclonedx-bom;
# safety 3 apart, because its pins clash with pip-audit's.
AUDIT_TOOLS = ROOT / "requirements" / "tools" / "audit.txt"
SAFETY_TOOLS = ROOT / "requirements" / "tools" / "safety.txt"

try:
    # LOCKS_CURRENT: the last `nox -s lock` left every file as it is (a no-op lock stops there)
    PROJECT, LOCKS_CURRENT = fresh.load_project(ROOT)
    PYTHON, NO_PYTHON = interpreter.session_python(PROJECT)
except ToolingError as error:
    sys.exit(f"error: {error}")


def python_session(name: str | None = None) -> Callable[[Callable[[nox.Session], None]], object]:
    """A session in a venv of .python-version's Python; without that Python, one line says so."""

    def register(func: Callable[[nox.Session], None]) -> object:
        if NO_PYTHON is None:
            return nox.session(name=name, python=PYTHON)(func)

        def missing(session: nox.Session) -> None:
            session.error(NO_PYTHON)

        missing.__doc__ = func.__doc__
        return nox.session(name=name or func.__name__, venv_backend="none")(missing)

    return register


def install_tier(session: nox.Session, tier: str) -> None:
    try:
        args, note = project.tier_install_args(PROJECT, tier)
    except ToolingError as error:
        session.error(str(error))
    if note:
        session.warn(note)
    session.install(*args)


@python_session()
def tests(session: nox.Session) -> None:
    """Run the test suite with the app's coverage (pass pytest options after --)."""
    install_tier(session, PROJECT.dev_tier)
    session.install("--no-deps", "-e", ".")
    # [tool.coverage] in pyproject.toml: what is measured, and fail_under for a full run;
    # a run narrowed by options (-k, a file) reports coverage without failing on it.
    threshold = [] if not session.posargs else ["--cov-fail-under=0"]
    session.run(
        "pytest", "--cov", "--cov-report=term-missing:skip-covered", *threshold, *session.posargs
    )
    if os.environ.get(summary.VARIABLE):
        total = session.run("coverage", "report", "--format=total", silent=True)
        summary.append(
            f"## Coverage\n\n{str(total).strip()}% of the app's lines and branches run by the tests"
        )


@python_session()
def lint(session: nox.Session) -> None:
    """Check style, formatting and types."""
    install_tier(session, PROJECT.dev_tier)
    session.install("--no-deps", "-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
{%- if cookiecutter.with_container == "yes" %}
    if (ROOT / "Dockerfile").is_file():
        session.run("hadolint", "Dockerfile")
{%- endif %}


def run_lock(session: nox.Session, argv: list[str]) -> None:
    try:
        lock.main(PROJECT, argv, log=session.log, unchanged=LOCKS_CURRENT)
    except ToolingError as error:
        session.error(str(error))


@nox.session(name="lock", venv_backend="none")
def lock_(session: nox.Session) -> None:
    """Lock every tier with hashes (-- --check, --upgrade, --upgrade-package NAME)."""
    run_lock(session, session.posargs)


@nox.session(name="lock_check", venv_backend="none")
def lock_check(session: nox.Session) -> None:
    """Alias of `nox -s lock -- --check`: fail when any lock is stale (the drift check{% if cookiecutter.ci_provider == "github" %} CI runs{% endif %}), no network."""
    run_lock(session, ["--check"])


def audit_settings(command: str) -> list[str]:
    """[tool.lockstep] audit settings as options of `python -m tooling.audit COMMAND`."""
    arguments = ["--allowlist-max-days", str(PROJECT.setting("audit-allowlist-max-days"))]
    threshold = PROJECT.setting("audit-min-severity")
    if command == "pip-audit" and threshold:
        arguments += ["--min-severity", str(threshold)]
    if command == "safety":
        arguments += ["--free-database"] if PROJECT.setting("safety-free-database") else []
        arguments += ["--require"] if PROJECT.setting("safety-required") else []
    return arguments


@python_session()
def audit(session: nox.Session) -> None:
    """pip-audit every pinned version of every lock, then safety.

    Options after -- (--service osv --osv-url URL, --min-severity high, --tier NAME)
    go to pip-audit only; safety runs next with none (`nox -s safety -- ...` for its own).
    """
    from tooling.audit.service import osv_url_off_the_command_line

    # nox prints the command it runs: a login or token in --osv-url travels in the environment.
    arguments, env = osv_url_off_the_command_line([*audit_settings("pip-audit"), *session.posargs])
    session.install("--require-hashes", "-r", str(AUDIT_TOOLS))
    session.notify("safety", posargs=[])
    session.run("python", "-m", "tooling.audit", "pip-audit", *arguments, env=env)


@python_session()
def safety(session: nox.Session) -> None:
    """Second opinion from safety: SAFETY_API_KEY, or the free database if the project opts in."""
    from tooling.audit.safety import plan_safety, skip_reason

    arguments = [*audit_settings("safety"), *session.posargs]
    try:
        plan = plan_safety(os.environ, free_database="--free-database" in arguments)
        skipped = skip_reason(plan, "--require" in arguments) if plan.mode == "skip" else None
    except ToolingError as error:
        session.error(str(error))
    if skipped:  # one line, nothing installed
        summary.append(f"## safety\n\nsafety skipped: {skipped}")
        session.skip(skipped)
    session.install("--require-hashes", "-r", str(SAFETY_TOOLS))
    session.run("python", "-m", "tooling.audit", "safety", *arguments)


@python_session()
def sbom(session: nox.Session) -> None:
    """A reproducible CycloneDX SBOM per tier in sbom/ (-- --tier NAME for one)."""
    session.install("--require-hashes", "-r", str(AUDIT_TOOLS))
    session.run(
        "python", "-m", "tooling.audit", "sbom", "--pyproject", "pyproject.toml", *session.posargs
    )


@nox.session(venv_backend="none")
def build(session: nox.Session) -> None:
    """Build the sdist and wheel into dist/, reproducibly (SOURCE_DATE_EPOCH)."""
    dist = ROOT / "dist"
    prefix = PROJECT.name.replace("-", "_") + "-"
    for old in dist.glob(f"{prefix}*"):
        old.unlink()
    if NO_PYTHON:
        session.error(NO_PYTHON)
    epoch = project.source_date_epoch(ROOT, os.environ)
    build = [lock.find_uv(), "build", "--python", PYTHON, "--out-dir", str(dist)]
    session.run(*build, env={"SOURCE_DATE_EPOCH": epoch})
{%- if cookiecutter.with_container == "yes" %}
    if (ROOT / "Dockerfile").is_file():
        from tooling import images

        try:
            written = images.write_uv_requirements(PROJECT)
        except ToolingError as error:
            session.error(str(error))
        session.log(f"wrote {written.relative_to(ROOT)}: uv for the image build, from the dev lock")
{%- endif %}


def smoke_arguments(posargs: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nox -s smoke-test --")
    parser.add_argument("--tier", help="the tier to check (required)")
{%- if cookiecutter.with_container == "yes" %}
    parser.add_argument(
        "--image",
        nargs="?",
        const="",
        help="check a built image instead (default name: <project>:<tier>)",
    )
    parser.add_argument("--engine", help="docker, podman or buildah (default: detected)")
{%- endif %}
    return parser.parse_args(posargs)
{%- if cookiecutter.with_container == "yes" %}


def check_image(session: nox.Session, engine_name: str | None, image: str, tier: str) -> None:
    """The image checks (of each platform's image, when the last build made several), in the
    engine that holds the image (--engine wins)."""
    from tooling import images

    try:
        version = project.read_version(PROJECT)
        images.smoke_every_platform(PROJECT, image, tier, version, engine_name, session.log)
    except ToolingError as error:
        session.error(str(error))


def built_image(tier: str) -> str | None:
    """The image `invoke build` made of this tier here, if any."""
    try:
        from tooling import engines, images
    except ImportError:
        return None
    image = images.image_name(PROJECT.name, tier)
    return image if image in engines.read_build_record(ROOT) else None
{%- endif %}


@python_session("smoke-test")
def smoke_test(session: nox.Session) -> None:
{%- if cookiecutter.with_container == "yes" %}
    """Run the app from a tier's lock and the wheel in a fresh venv, then in its image if built.

    `-- --tier NAME` names the tier (required); `-- --image [REF]` checks only the image.
    """
{%- else %}
    """Run the app from a tier's lock and the wheel in a fresh venv.

    `-- --tier NAME` names the tier (required).
    """
{%- endif %}
    from tooling import smoke, tiers

    arguments = smoke_arguments(session.posargs)
    try:
        graph = tiers.read_tiers(PROJECT.requirements_dir)
        tier = smoke.chosen_tier(arguments.tier, list(graph))
        lock_file = project.tier_lock(PROJECT, tier, list(graph))
        version = project.read_version(PROJECT)
{%- if cookiecutter.with_container == "yes" %}
        if arguments.image is not None:
            try:
                from tooling import images
            except ImportError:
                session.error("image checks need tooling/images/; this project has no containers")
            image = arguments.image or images.image_name(PROJECT.name, tier)
            check_image(session, arguments.engine, image, tier)
            return
{%- endif %}
        wheel = project.wheel_path(ROOT / "dist", PROJECT.name)
    except ToolingError as error:
        session.error(str(error))
    session.install("--require-hashes", "-r", str(lock_file))
    session.install("--no-deps", str(wheel))
    try:
        checked = smoke.check_environment(
            str(Path(session.bin) / "python"),
            smoke.run_captured,
            f"venv of {tier}",
            lock_file,
            f"requirements/{tier}.txt",
            PROJECT.python_version,
            (PROJECT.name, version),
        )
    except ToolingError as error:
        session.error(str(error))
    for line in checked:
        session.log(line)
    shown = session.run(PROJECT.name, "--version", silent=True)
    if version not in str(shown):
        session.error(f"--version printed {str(shown).strip()!r}, expected {version}")
    session.run(PROJECT.name, "health")
{%- if cookiecutter.with_container == "yes" %}
    image = built_image(tier)
    if image is None:
        session.log("no built image of this tier here: image checks skipped (`invoke build`)")
    else:
        check_image(session, arguments.engine, image, tier)
{%- endif %}
