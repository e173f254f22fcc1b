"""Tasks for every day, under the names the nox sessions have (README, "Daily tasks").

`invoke --list` lists them, `invoke TASK --help` shows a task's options and their defaults.
"""

from __future__ import annotations

{% if cookiecutter.with_container == "yes" -%}
import os
{% endif -%}
import shlex
import sys
from collections.abc import {% if cookiecutter.with_container == "yes" %}Callable, {% endif %}Iterator
from contextlib import contextmanager
from pathlib import Path
{%- if cookiecutter.with_container == "yes" %}
from typing import TYPE_CHECKING
{%- endif %}

from invoke import task
from invoke.context import Context
from invoke.exceptions import Exit

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from tooling import ToolingError, lock, project, tiers  # noqa: E402
{%- if cookiecutter.with_container == "yes" %}

if TYPE_CHECKING:
    from tooling.engines import Secrets
{%- endif %}


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


@task(
    help={"check": "only compare: name what differs from the dev lock and exit 1, change nothing"}
)
def dev(c: Context, check: bool = False) -> None:
    """Make .venv exactly the dev tier's lock plus the app (editable) and install the git hooks."""
    from tooling import devenv

    the_project = load_project()
    with one_line_errors():
        if check:
            print(devenv.check(the_project))
        else:
            devenv.ensure(the_project, log=lambda line: print(line, flush=True))


@task(
    help={
        "name": "a requirement as pip reads it: numpy, 'numpy>=2', 'uvicorn[standard]'",
        "tier": "the tier whose .in gets it (default: the root tier, which the wheel requires)",
    },
)
def add(c: Context, name: str, tier: str | None = None) -> None:
    """Add a dependency to a tier's .in and lock (uv add writes where no tier looks)."""
    from tooling import dependencies

    if name.startswith("-"):  # invoke hands a positional argument even `--help`
        raise Exit("usage: invoke add NAME [--tier TIER]; options: invoke --help add", code=1)

    the_project = load_project()
    with one_line_errors():
        print(
            dependencies.add(the_project, [name], tier, lambda: lock.main(the_project, [])),
            flush=True,
        )


@task(
    help={
        "name": "the package to remove",
        "tier": "the tier whose .in lists it (default: the root tier)",
    },
)
def remove(c: Context, name: str, tier: str | None = None) -> None:
    """Remove a dependency from a tier's .in and lock."""
    from tooling import dependencies

    if name.startswith("-"):
        raise Exit("usage: invoke remove NAME [--tier TIER]; options: invoke --help remove", code=1)

    the_project = load_project()
    with one_line_errors():
        print(
            dependencies.remove(the_project, [name], tier, lambda: lock.main(the_project, [])),
            flush=True,
        )


@task(name="tests", aliases=["test"])
def tests(c: Context) -> None:
    """Run the test suite (nox -s tests)."""
    c.run("nox -s tests", pty=sys.stdout.isatty())


@task
def lint(c: Context) -> None:
    """Check style, formatting and types (nox -s lint)."""
    c.run("nox -s lint", pty=sys.stdout.isatty())


@task(
    name="lock",
    iterable=["upgrade_package", "skip_cooldown"],
    help={
        "check": "only check that every lock is current (no network)",
        "tools": "lock the tools' own locks instead (requirements/tools/ and the like)",
        "upgrade": "upgrade every package",
        "upgrade-package": "upgrade this package in every tier (repeatable)",
        "report": "also write what moved, per tier, as Markdown to this file",
        "skip-cooldown": "upgrade this package ignoring the cooldown, this run only (repeatable)",
    },
)
def lock_(
    c: Context,
    check: bool = False,
    upgrade: bool = False,
    upgrade_package: list[str] | None = None,
    report: str | None = None,
    skip_cooldown: list[str] | None = None,
    tools: bool = False,
) -> None:
    """Lock every tier with hashes, or check the locks."""
    argv = ["--check"] if check else []
    argv += ["--tools"] if tools else []
    argv += ["--upgrade"] if upgrade else []
    for name in upgrade_package or []:
        argv += ["--upgrade-package", name]
    for name in skip_cooldown or []:
        argv += ["--skip-cooldown", name]
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
    options = {"--service": service, "--min-severity": min_severity, "--tier": tier}
    for option, value in options.items():
        argv += [option, value] if value else []
    # A login or token in the URL travels in the environment, off nox's command line.
    env = {"LOCKSTEP_OSV_URL": osv_url} if osv_url else {}
    argv += ["--osv-url-env", "LOCKSTEP_OSV_URL"] if osv_url else []
    run_nox(c, argv, env)


@task
def sbom(c: Context) -> None:
    """Write a CycloneDX SBOM per tier into sbom/ (nox -s sbom)."""
    run_nox(c, ["nox", "-s", "sbom"])


def run_nox(c: Context, argv: list[str], env: dict[str, str] | None = None) -> None:
    """Run nox; its own output explains a failure, so end with its exit code alone."""
    result = c.run(shlex.join(argv), warn=True, pty=sys.stdout.isatty(), env=env or {})
    if result is None or result.failed:
        raise Exit(code=result.exited if result is not None else 1)


@task(
    name="smoke-test",
    aliases=["smoke"],
    help={
        "tier": "the tier to check (required): its lock and the wheel in a fresh venv",
{%- if cookiecutter.with_container == "yes" %}
        "image": "check the tier's built image <project>:<tier> instead of a venv",
{%- endif %}
    },
)
{%- if cookiecutter.with_container == "yes" %}
def smoke_test(c: Context, tier: str | None = None, image: bool = False) -> None:
    """Smoke-test a tier in a fresh venv, or its built image (nox -s smoke-test)."""
    argv = ["nox", "-s", "smoke-test", "--"]
    argv += ["--tier", tier] if tier else []
    argv += ["--image"] if image else []
{%- else %}
def smoke_test(c: Context, tier: str | None = None) -> None:
    """Smoke-test a tier's lock and the wheel in a fresh venv (nox -s smoke-test)."""
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
        "platform": "platforms to build for, e.g. linux/amd64,linux/arm64 (default: "
        "[tool.lockstep] platforms, else this machine's); several make a manifest list",
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
    platform: str | None = None,
) -> None:
    """Build the image of one tier (--tier NAME) or of every tier (--all), reproducibly."""
    from tooling import engines, images

    the_project = load_project()
    with one_line_errors():
        graph = tiers.read_tiers(the_project.requirements_dir)
        if all == bool(tier):
            raise engines.ImageError(
                "name one tier with --tier NAME, or build every tier with --all"
            )
        secrets = images.secret_files(ca_bundle, pip_conf, netrc, os.environ)
    build_images(
        c,
        the_project,
        list(graph) if all else [str(tier)],
        engine,
        base_image or os.environ.get("BASE_IMAGE") or None,
        secrets,
        target,
        network,
        platform,
    )


def build_images(
    c: Context,
    the_project: project.Project,
    chosen: list[str],
    engine: str | None,
    base_override: str | None,
    secrets: Secrets,
    target: str | None = None,
    network: str | None = None,
    platform: str | None = None,
) -> dict[str, str]:
    """Check the locks, build the wheel, then each tier's image; return image -> image ID."""
    from tooling.images import build

    with one_line_errors():
        return build.build_tiers(
            the_project,
            chosen,
            engine,
            base_override,
            secrets,
            wheel_builder(c),
            target,
            network,
            log=lambda line: print(line, flush=True),
            warn=lambda line: print(line, file=sys.stderr),
            platform=platform,
        )


def wheel_builder(c: Context) -> Callable[[], bool]:
    """How the image builds make the project's wheel: `nox -s build`, its output shown."""

    def build_wheel() -> bool:
        built = c.run("nox -s build", warn=True, pty=sys.stdout.isatty())
        return built is not None and built.ok

    return build_wheel


@task(
    help={
        "tier": "the tier whose image to push (<project>:<tier>, smoke-tested first)",
        "registry": "HOST[:PORT][/NAMESPACE], e.g. ghcr.io/acme or 127.0.0.1:5000",
        "engine": "docker, podman or buildah (default: the engine that built the image)",
        "insecure": "allow plain HTTP to a registry that is not on loopback",
    }
)
def publish(
    c: Context,
    tier: str | None = None,
    registry: str | None = None,
    engine: str | None = None,
    insecure: bool = False,
) -> None:
    """Push a smoke-tested tier image as :<tier> and :<tier>-<commit>; print it by digest.

    A tier last built for several platforms is pushed as one image index, every platform's
    image smoke-tested first."""
    from tooling import engines, images, shipping
    from tooling import registry as registries

    the_project = load_project()
    with one_line_errors():
        if not tier or not registry:
            raise shipping.ShipError("name the tier and the registry: --tier NAME --registry HOST")
        where = registries.parse_registry(registry)
        names = list(tiers.read_tiers(the_project.requirements_dir))
        project.tier_lock(the_project, tier, names)
        image = images.image_name(the_project.name, tier)
        shipping.check_record_writable(ROOT, tier)  # before anything, the engine's choice included
        built = engines.read_build_record(ROOT).get(image) or {}
        if built.get("platforms"):  # the last build made one image per platform: push an index
            chosen = engines.get(engine or str(built["engine"]), os.environ)
        else:
            chosen = engines.locate(image, ROOT, engine, os.environ)
        publish_one = shipping.publish_index if built.get("platforms") else shipping.publish
        reference = publish_one(
            chosen,
            the_project,
            tier,
            names,
            where,
            insecure,
            project.read_version(the_project),
            log=lambda line: print(line, flush=True),
        )
    print(reference)


@task(
    help={
        "image": "HOST[:PORT]/NAME:TAG or HOST[:PORT]/NAME@sha256:DIGEST",
        "tier": "the tier to check against (default: the image's lockstep.tier label)",
        "rebuild": "also rebuild the tier from this commit and compare image IDs",
        "engine": "docker, podman or buildah for --rebuild (default: as invoke build chooses)",
        "insecure": "allow plain HTTP to a registry that is not on loopback",
        "platform": "of an image index, check only this platform (e.g. linux/arm64); "
        "default: every platform",
    }
)
def verify(
    c: Context,
    image: str | None = None,
    tier: str | None = None,
    rebuild: bool = False,
    engine: str | None = None,
    insecure: bool = False,
    platform: str | None = None,
) -> None:
    """Fetch an image from its registry and prove it is exactly what HEAD's commit builds."""
    from tooling import shipping

    the_project = load_project()
    with one_line_errors():
        if not image:
            raise shipping.ShipError(
                "name the image: --image HOST/NAME:TAG or HOST/NAME@sha256:..."
            )
        result = shipping.verify(
            ROOT,
            image,
            tier,
            insecure,
            log=lambda line: print(line, flush=True),
            platform=platform,
        )
        if rebuild:
            result.problems += shipping.rebuild_problems(
                the_project,
                result,
                engine,
                wheel_builder(c),
                log=lambda line: print(line, flush=True),
                warn=lambda line: print(line, file=sys.stderr),
            )
    for problem in result.problems:
        print(f"error: {problem}", file=sys.stderr)
    if result.problems:
        raise Exit(code=1)
    print(
        f"verified {result.reference}: {result.digest} is exactly requirements/{result.tier}.txt "
        f"of commit {result.commit}"
    )


@task(
    help={
        "tier": "the tier whose built image to scan (<project>:<tier>)",
        "engine": "docker, podman or buildah (default: the engine that built the image)",
    }
)
def scan(c: Context, tier: str | None = None, engine: str | None = None) -> None:
    """Scan a tier image for OS-package CVEs with trivy or grype ([tool.lockstep] severity)."""
    import subprocess
    import tempfile

    from tooling import engines, images
    from tooling.images import image_scan

    the_project = load_project()
    with one_line_errors():
        if not tier:
            raise image_scan.ScanError("name the tier to scan: --tier NAME")
        names = list(tiers.read_tiers(the_project.requirements_dir))
        if tier not in names:
            raise image_scan.ScanError(f"unknown tier {tier!r}: choose one of {', '.join(names)}")
        image = images.image_name(the_project.name, tier)
        with tempfile.TemporaryDirectory(prefix="scan-") as tmp:
            archive = Path(tmp) / "image.tar"
            argv = image_scan.scanner_argv(the_project, tier, archive)
            engines.locate(image, ROOT, engine, os.environ).export_archive(image, archive)
            print(f"scanning {image} with {argv[0]}", flush=True)
            scanned = subprocess.run(argv, check=False)
    if scanned.returncode != 0:
        raise Exit(f"error: {argv[0]} found blocking findings in {image} (or failed)", code=1)


@task(
    name="run",
    help={
        "tier": "the tier whose built image to run (<project>:<tier>)",
        "env-file": "environment variables for the container (default: .env when it exists)",
        "engine": "docker, podman or buildah (default: the engine that built the image)",
    },
)
def run_image(
    c: Context, tier: str | None = None, env_file: str | None = None, engine: str | None = None
) -> None:
    """Run a tier's built image here; arguments after -- go to the app (`-- health`)."""
    from tooling import engines, images
    from tooling.images import local_images

    the_project = load_project()
    with one_line_errors():
        names = list(tiers.read_tiers(the_project.requirements_dir))
        if tier not in names:
            raise engines.ImageError(
                f"name the tier to run with --tier NAME: one of {', '.join(names)}"
            )
        image = images.image_name(the_project.name, tier)
        found = engines.locate(image, ROOT, engine, os.environ)
        found.facts(image)  # not built: one line, before any container starts
        env = local_images.env_file_for_run(ROOT, env_file)
        print(f"running {image} with {found.name}" + (f", env from {env}" if env else ""))
        code = local_images.run(found, image, env, shlex.split(c.remainder))
    if code != 0:
        raise Exit(code=code)


@task(help={"engine": "docker, podman or buildah (default: every engine present)"})
def prune(c: Context, engine: str | None = None) -> None:
    """Remove the untagged (<none>) images this project's builds left; print what was freed."""
    from tooling import engines
    from tooling.images import local_images

    the_project = load_project()
    with one_line_errors():
        names = [engines.choose_engine(engine, os.environ)] if engine else engines.present_engines()
        present = [engines.get(name, os.environ) for name in names]
        print(local_images.prune(present, the_project.name, print))


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
    from tooling import base_image, engines

    the_project = load_project()
    with one_line_errors():
        names = list(tiers.read_tiers(the_project.requirements_dir))
        if refresh:
            chosen_engine = engines.get(engines.choose_engine(engine, os.environ), os.environ)
            configured = the_project.settings.get("platforms") or []
            pins = base_image.refresh_base_pins(
                the_project, names, chosen_engine, pull=not local, platforms=configured
            )
            for key, pinned in pins.items():
                print(f"pinned {pinned}" + (f" for {key.split(' ')[1]}" if " " in key else ""))
            print(f"wrote {base_image.BASE_IMAGES}")
            return
        for name in names:
            base, note = base_image.base_image_for_build(the_project, name, None)
            print(f"{name}: {base}" + (" (not pinned yet)" if note else ""))
{%- endif %}
