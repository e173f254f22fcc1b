"""The project's images on this machine: run a tier's image, prune what builds left behind.

`invoke run` starts a built tier image in the engine that built it, with an env file
(buildah, which has no `run IMAGE`, runs the entrypoint in a working container);
`invoke prune` removes the untagged (`<none>`) images whose labels name this project,
in every engine present, and says how much it freed. Nothing else is touched.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tooling.engines import Engine, ImageError, last_line
from tooling.images.provenance import TIER_LABEL

TITLE_LABEL = "org.opencontainers.image.title"  # the project's name, set in the Dockerfile
DEFAULT_ENV_FILE = ".env"


def env_file_for_run(root: Path, requested: str | None) -> Path | None:
    """--env-file when given (it must exist), else .env when there is one, else none."""
    if requested:
        path = Path(requested)
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise ImageError(f"env file {requested} not found: write it, or leave out --env-file")
        return path
    default = root / DEFAULT_ENV_FILE
    return default if default.is_file() else None


def run_argv(
    engine: Engine, image: str, env_file: Path | None, args: Sequence[str], tty: bool
) -> list[str]:
    """`docker run` / `podman run` of the image: removed on exit, never pulled, the env file."""
    argv = ["run", "--rm", "--pull", "never"]
    argv += ["--interactive", "--tty"] if tty else []
    argv += ["--env-file", str(env_file)] if env_file else []
    return engine.command(*argv, image, *args)


def run_image(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run in the foreground, the container's output straight to this terminal."""
    try:
        return subprocess.run(list(argv), env=dict(env), check=False).returncode
    except OSError as error:
        raise ImageError(f"cannot run {argv[0]}: {error.strerror}") from None


def env_assignments(env_file: Path | None, env: Mapping[str, str]) -> list[str]:
    """KEY=VALUE lines of an env file as docker reads one: `#` comments and blank lines
    skipped, a bare KEY taken from this environment (left out when unset there)."""
    if env_file is None:
        return []
    assignments = []
    for line in env_file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" in line:
            assignments.append(line)
        elif line in env:
            assignments.append(f"{line}={env[line]}")
    return assignments


Foreground = Callable[[Sequence[str], Mapping[str, str]], int]


def run_with_buildah(
    engine: Engine,
    image: str,
    entrypoint: Sequence[str],
    env_file: Path | None,
    args: Sequence[str],
    foreground: Foreground = run_image,
) -> int:
    """buildah has no `run IMAGE`: a working container of the image runs its entrypoint."""
    created = engine.run(engine.command("from", "--pull-never", image))
    if created.returncode != 0:
        raise ImageError(f"cannot start a container from {image}: {last_line(created.stderr)}")
    container = created.stdout.strip().splitlines()[-1]
    try:
        for assignment in env_assignments(env_file, engine.env):
            configured = engine.run(engine.command("config", "--env", assignment, container))
            if configured.returncode != 0:
                name = assignment.split("=")[0]
                raise ImageError(f"cannot set {name}: {last_line(configured.stderr)}")
        return foreground(engine.command("run", container, "--", *entrypoint, *args), engine.env)
    finally:
        engine.run(engine.command("rm", container))


@dataclass(frozen=True)
class Removed:
    engine: str
    image_id: str
    tier: str
    size: int


def dangling_ids(engine: Engine) -> list[str]:
    """The IDs of the engine's untagged images (whoever built them)."""
    listing = ["images", "--filter", "dangling=true", "--quiet", "--no-trunc"]
    listed = engine.run(engine.command(*listing))
    if listed.returncode != 0:
        raise ImageError(f"{engine.name} cannot list its images: {last_line(listed.stderr)}")
    ids = [line.strip().removeprefix("sha256:") for line in listed.stdout.splitlines()]
    return list(dict.fromkeys(found for found in ids if found))


def prune_engine(engine: Engine, project_name: str, log: Callable[[str], None]) -> list[Removed]:
    """Remove the engine's untagged images built from this project (its labels say so)."""
    removed = []
    for image_id in dangling_ids(engine):
        facts = engine.inspect(image_id)
        if facts is None or facts.labels.get(TITLE_LABEL) != project_name:
            continue
        if TIER_LABEL not in facts.labels:
            continue
        deleted = engine.run(engine.command("rmi", image_id))
        if deleted.returncode != 0:
            log(f"{engine.name}: kept {image_id[:12]}: {last_line(deleted.stderr)}")
            continue
        tier = facts.labels.get(TIER_LABEL) or "?"
        removed.append(Removed(engine.name, image_id, tier, facts.size))
        log(f"{engine.name}: removed {image_id[:12]} (tier {tier}, {megabytes(facts.size)})")
    return removed


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def prune(engines: Sequence[Engine], project_name: str, log: Callable[[str], None]) -> str:
    """Prune in each engine; return the one-line total."""
    removed: list[Removed] = []
    for engine in engines:
        removed += prune_engine(engine, project_name, log)
    if not removed:
        return f"no untagged {project_name} images to remove"
    total = megabytes(sum(image.size for image in removed))
    return (
        f"removed {len(removed)} untagged {project_name} image(s) of {total} in all "
        "(layers that tagged images still use stay)"
    )


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def run(engine: Engine, image: str, env_file: Path | None, args: Sequence[str]) -> int:
    """Run the image's entrypoint with `args` in `engine`; return the app's exit code."""
    if engine.name == "buildah":
        entrypoint = engine.facts(image).entrypoint
        return run_with_buildah(engine, image, entrypoint, env_file, args)
    return run_image(run_argv(engine, image, env_file, args, interactive()), engine.env)
