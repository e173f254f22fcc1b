"""Sessions for maintaining the template itself (not the generated project).

`python tests/run.py` needs only Python and pip; these sessions are for
maintainers who have nox.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests"]
LOCK = "requirements/dev.txt"


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The template's whole test suite (what CI runs)."""
    session.install("--require-hashes", "-r", LOCK)
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff on the hooks, tests, benchmarks and extensions."""
    session.install("--require-hashes", "-r", LOCK)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(venv_backend="none")
def lock(session: nox.Session) -> None:
    """Re-lock the template's own tools (pass --upgrade to move everything)."""
    session.run(
        "uv",
        "pip",
        "compile",
        "--universal",
        "--python-version",
        "3.11",
        "--generate-hashes",
        "--quiet",
        "requirements/dev.in",
        "-o",
        LOCK,
        *session.posargs,
    )


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Lock benchmark against pip-compile-multi and bare uv (figures for docs/benchmarks.md)."""
    session.install("--require-hashes", "-r", LOCK)
    session.run("python", "bench/lock_bench.py", *session.posargs)


@nox.session(python="3.11", name="bench_images")
def bench_images(session: nox.Session) -> None:
    """Image size overhead and build times per tier with buildah (figures: docs/benchmarks.md)."""
    session.install("--require-hashes", "-r", LOCK)
    session.run("python", "bench/image_bench.py", *session.posargs)


@nox.session(python="3.11", name="bench_ship")
def bench_ship(session: nox.Session) -> None:
    """`invoke verify` of a published image against the smoke test of the local one."""
    session.install("--require-hashes", "-r", LOCK)
    session.run("python", "bench/ship_bench.py", *session.posargs)
