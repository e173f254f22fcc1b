"""Run the template's whole test suite: `python tests/run.py [pytest options]`.

Needs only Python and pip (the `container` tests also need buildah and
mmdebstrap). It creates `.venv` beside the template, installs the hashed lock
`requirements/dev.txt` into it (again only when the lock changed), saying
what it does at each step, and runs pytest there with the environment's tools
on PATH, in three pytest-xdist workers unless the options name their own (`-n 0`
runs in one process).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "dev.txt"


def environment_dir() -> Path:
    return Path(os.environ.get("LOCKSTEP_VENV", ROOT / ".venv"))


def step(message: str) -> None:
    print(f"tests/run.py: {message}", flush=True)


def ensure_environment(env_dir: Path) -> Path:
    python = env_dir / "bin" / "python"
    stamp = env_dir / ".dev-lock-sha256"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    if not python.exists():
        step(f"creating the test environment {env_dir}")
        venv.create(env_dir, with_pip=True)
    packages = sum(1 for line in LOCK.read_text().splitlines() if "==" in line)
    lock = LOCK.relative_to(ROOT)
    step(f"installing {lock}: {packages} packages, hashes required (about a minute the first time)")
    # --no-deps: the lock is complete, so pip need not read what each package requires (a
    # venv's own pip 23.x refuses a requirement with extras once a newer release exists);
    # `pip check` then proves that every requirement is met by the lock's pins.
    install = ["install", "--quiet", "--no-deps", "--require-hashes", "-r", str(LOCK)]
    subprocess.run([str(python), "-m", "pip", *install], check=True)
    subprocess.run([str(python), "-m", "pip", "check"], check=True, stdout=subprocess.DEVNULL)
    stamp.write_text(digest)
    step(f"installed {lock}; running pytest")
    return python


# Three pytest-xdist workers: the container tests in two groups by engine, each on one worker
# (a worker's tests build in its own stores and share their images; conftest.xdist_group), every
# other module whole on whichever worker is free; most of those wait on the package index, not
# on the two cores. `-n 0` (or `-p no:xdist`) runs in this process.
PARALLEL = ["--numprocesses", "3", "--dist", "loadgroup", "--no-loadscope-reorder"]


def pytest_options(given: list[str]) -> list[str]:
    """The caller's options, after the parallel defaults unless the caller chose otherwise."""
    chosen = any(
        option in ("-n", "--numprocesses", "--dist", "-pno:xdist")
        or option.startswith(("-n", "--numprocesses=", "--dist="))
        or (option == "-p" and following == "no:xdist")
        for option, following in itertools.pairwise([*given, ""])
    )
    return given if chosen else [*PARALLEL, *given]


def main() -> int:
    env_dir = environment_dir()
    try:
        python = ensure_environment(env_dir)
    except subprocess.CalledProcessError as error:
        print(f"error: installing the test environment failed (exit {error.returncode})")
        return 1
    env = dict(os.environ, PATH=f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    env["VIRTUAL_ENV"] = str(env_dir)
    command = [str(python), "-m", "pytest", *pytest_options(sys.argv[1:])]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
