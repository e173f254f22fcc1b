"""Invoke tasks for humans: short names for the nox sessions and project facts.

Run `invoke --list` to see them.
"""

from __future__ import annotations

{% if cookiecutter.with_container == "yes" -%}
import os
{% endif -%}
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invoke import task
from invoke.context import Context
from invoke.exceptions import Exit

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from tooling import ToolingError, lock, project, tiers  # noqa: E402


@contextmanager
def one_line_errors() -> Iterator[None]:
    """A problem the user can fix ends the task with one line and its exit code."""
    try:
        yield
    except ToolingError as error:
        raise Exit(f"error: {error}", code=error.exit_code) from None


def load_project() -> project.Project:
    with one_line_errors():
        loaded = project.load(ROOT)
    return loaded


@task(name="tiers")
def show_tiers(c: Context) -> None:
    """Show the requirement tiers, what each one includes and its solve group."""
    the_project = load_project()
    with one_line_errors():
        graph = tiers.read_tiers(the_project.requirements_dir)
        groups = tiers.solve_groups(graph, the_project.settings.get("solve-groups", {}))
    print("\n".join(tiers.describe(graph, groups)))


@task
def test(c: Context) -> None:
    """Run the test suite (nox -s tests)."""
    c.run("nox -s tests", pty=sys.stdout.isatty())


@task
def lint(c: Context) -> None:
    """Check style, formatting and types (nox -s lint)."""
    c.run("nox -s lint", pty=sys.stdout.isatty())


@task(
    name="lock",
    iterable=["upgrade_package"],
    help={
        "check": "only check that every lock is current (no network)",
        "upgrade": "upgrade every package",
        "upgrade-package": "upgrade this package in every tier (repeatable)",
        "report": "also write what moved, per tier, as Markdown to this file",
    },
)
def lock_(
    c: Context,
    check: bool = False,
    upgrade: bool = False,
    upgrade_package: list[str] | None = None,
    report: str | None = None,
) -> None:
    """Lock every tier with hashes, or check the locks."""
    argv = ["--check"] if check else []
    argv += ["--upgrade"] if upgrade else []
    for name in upgrade_package or []:
        argv += ["--upgrade-package", name]
    argv += ["--report", report] if report else []
    with one_line_errors():
        lock.main(load_project(), argv)


@task(
    help={
        "service": "pypi, osv or esms (default: PIP_AUDIT_VULNERABILITY_SERVICE, else pypi)",
        "osv-url": "the query URL of an OSV service, e.g. an internal mirror (with --service osv)",
        "min-severity": "findings known to be below it are reported but pass (low ... critical)",
        "tier": "audit only this tier's lock",
    }
)
def audit(
    c: Context,
    service: str | None = None,
    osv_url: str | None = None,
    min_severity: str | None = None,
    tier: str | None = None,
) -> None:
    """Audit every pinned version of every lock with pip-audit, then safety (nox -s audit)."""
    argv = ["nox", "-s", "audit", "--"]
    options = {
        "--service": service,
        "--osv-url": osv_url,
        "--min-severity": min_severity,
        "--tier": tier,
    }
    for option, value in options.items():
        argv += [option, value] if value else []
    run_nox(c, argv)


@task
def sbom(c: Context) -> None:
    """Write a CycloneDX SBOM per tier into sbom/ (nox -s sbom)."""
    run_nox(c, ["nox", "-s", "sbom"])


def run_nox(c: Context, argv: list[str]) -> None:
    """Run nox; its own output explains a failure, so end with its exit code alone."""
    result = c.run(shlex.join(argv), warn=True, pty=sys.stdout.isatty())
    if result is None or result.failed:
        raise Exit(code=result.exited if result is not None else 1)


@task
{%- if cookiecutter.with_container == "yes" %}
def smoke(c: Context, tier: str | None = None, image: bool = False) -> None:
    """Smoke-test a tier: in a fresh venv, or in its built image with --image."""
    argv = ["nox", "-s", "smoke-test", "--"]
    argv += ["--tier", tier] if tier else []
    argv += ["--image"] if image else []
{%- else %}
def smoke(c: Context, tier: str | None = None) -> None:
    """Smoke-test a tier: its lock and the wheel in a fresh venv (nox -s smoke-test)."""
    argv = ["nox", "-s", "smoke-test", "--"]
    argv += ["--tier", tier] if tier else []
{%- endif %}
    run_nox(c, argv)
{%- if cookiecutter.with_container == "yes" %}


@task(
    name="build",
    help={
        "tier": "the tier to build (image <project>:<tier>)",
        "all": "build every tier",
        "engine": "docker, podman or buildah (default: CONTAINER_ENGINE, else detected)",
        "base-image": "base image, instead of the one pinned in base-images.lock (env BASE_IMAGE)",
        "ca-bundle": "CA bundle passed as a build secret (default: SSL_CERT_FILE)",
        "pip-conf": "pip.conf with a private index and credentials, passed as a build secret",
        "netrc": ".netrc with the index hosts' credentials, passed as a build secret",
        "target": "Dockerfile stage (default: runtime; `dev` for a development image)",
        "network": "network of the build's RUN steps, e.g. host to reach an index on localhost",
    },
)
def build(
    c: Context,
    tier: str | None = None,
    all: bool = False,
    engine: str | None = None,
    base_image: str | None = None,
    ca_bundle: str | None = None,
    pip_conf: str | None = None,
    netrc: str | None = None,
    target: str | None = None,
    network: str | None = None,
) -> None:
    """Build the image of one tier (--tier NAME) or of every tier (--all), reproducibly."""
    from tooling import engines, images

    the_project = load_project()
    with one_line_errors():
        graph = tiers.read_tiers(the_project.requirements_dir)
        if all == bool(tier):
            raise images.ImageError(
                "name one tier with --tier NAME, or build every tier with --all"
            )
        chosen = list(graph) if all else [str(tier)]
        for name in chosen:
            project.tier_lock(the_project, name, list(graph))
        problems = lock.check(the_project)
        if problems:
            raise images.ImageError(f"locks are not current: {'; '.join(problems)}")
        chosen_engine = engines.get(engines.choose_engine(engine, os.environ), os.environ)
        secrets = images.secret_files(ca_bundle, pip_conf, netrc, os.environ)
        override = base_image or os.environ.get("BASE_IMAGE") or None
        bases = {name: images.base_image_for_build(the_project, name, override) for name in chosen}
    built = c.run("nox -s build", warn=True, pty=sys.stdout.isatty())
    if built is None or built.failed:
        raise Exit("error: building the wheel (nox -s build) failed; see the output above", code=1)
    epoch = project.source_date_epoch(ROOT, os.environ)
    for name in chosen:
        base, note = bases[name]
        if note:
            print(f"warning: {note}", file=sys.stderr)
        request = engines.BuildRequest(
            tier=name,
            tag=images.image_name(the_project.name, name),
            python_version=the_project.python_version,
            source_date_epoch=epoch,
            base_image=base,
            secrets=secrets,
            target=target,
            network=network,
        )
        print(f"building {request.tag} with {chosen_engine.name} from {base}", flush=True)
        with one_line_errors():
            image_id = chosen_engine.build(request, ROOT)
            engines.record_build(ROOT, request.tag, chosen_engine.name, image_id, name)
        print(f"built {request.tag}: image ID {image_id} (SOURCE_DATE_EPOCH={epoch})")


@task(
    name="base-image",
    help={
        "refresh": "resolve every tier's base image again and rewrite base-images.lock",
        "local": "pin the copy the engine already has instead of pulling (offline)",
        "engine": "docker, podman or buildah (default: CONTAINER_ENGINE, else detected)",
    },
)
def base_image(
    c: Context, refresh: bool = False, local: bool = False, engine: str | None = None
) -> None:
    """Show the base image each tier builds from; --refresh pins them by digest."""
    from tooling import engines, images

    the_project = load_project()
    with one_line_errors():
        names = list(tiers.read_tiers(the_project.requirements_dir))
        if refresh:
            chosen_engine = engines.get(engines.choose_engine(engine, os.environ), os.environ)
            pins = images.refresh_base_pins(the_project, names, chosen_engine, pull=not local)
            for pinned in pins.values():
                print(f"pinned {pinned}")
            print(f"wrote {images.BASE_IMAGES}")
            return
        for name in names:
            base, note = images.base_image_for_build(the_project, name, None)
            print(f"{name}: {base}" + (" (not pinned yet)" if note else ""))
{%- endif %}
