"""Benchmark the generated project's lock against its peers, in one run.

Usage: python bench/lock_bench.py [--runs N] [--only-noop]   (inside the template's .venv)

Bakes a project, gives it a realistic tier set (a few dozen packages with
heavy ones such as pandas, scipy and boto3), warms every tool's cache once,
then times each contender N times on the same inputs and prints medians and
ratios. Peers: pip-compile-multi --uv --autoresolve (hashes on every tier),
pip-compile (pip-tools) layer by layer, and one bare `uv pip compile` of the
union of all tiers.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TIERS = {
    "base": "pydantic>=2\nstructlog\nrequests\nboto3\npython-dateutil\nPyYAML\n",
    "sniper": "-r base.in\n",
    "hunter": "-r base.in\nnumpy\npyarrow\nrich\n",
    "strategist": "-r hunter.in\npandas\nscipy\nstatsmodels\nmatplotlib\n",
    "dev": "-r strategist.in\npytest\npytest-cov\nhypothesis\nruff\nmypy\n",
}
LOCK_IN_PROCESS = (
    "import sys; from pathlib import Path; sys.path.insert(0, '.');"
    "from tooling import lock, project; lock.lock(project.load(Path('.')))"
)
CHECK_IN_PROCESS = (
    "import sys, time; from pathlib import Path; sys.path.insert(0, '.');"
    "from tooling import lock, project; p = project.load(Path('.'));"
    "start = time.perf_counter(); problems = lock.check(p);"
    "print(time.perf_counter() - start); assert not problems, problems"
)


def run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return result.stdout


def clean(requirements: Path) -> None:
    for lock in requirements.glob("*.txt"):
        lock.unlink()


def timed(runs: int, prepare: Callable[[], None], action: Callable[[], object]) -> float:
    prepare()
    action()  # warm the caches
    samples = []
    for _ in range(runs):
        prepare()
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def peers(
    arguments: argparse.Namespace, project: Path, ins: list[str], reset: Callable[[], None]
) -> tuple[float, float, float, float | None]:
    """Full locks: ours, one bare union compile, pip-compile-multi, pip-tools (optional)."""
    runs = arguments.runs
    python = sys.executable
    uv = str(BIN / "uv")
    ours = timed(runs, reset, lambda: run([python, "-c", LOCK_IN_PROCESS], project))
    union = timed(
        runs,
        reset,
        lambda: run(
            [
                uv,
                "pip",
                "compile",
                *ins,
                "--universal",
                "--python-version",
                "3.11",
                "--generate-hashes",
                "--quiet",
                "-o",
                "requirements/union.txt",
            ],
            project,
        ),
    )
    hashes = [arg for name in TIERS for arg in ("-g", name)]
    multi = timed(
        runs,
        reset,
        lambda: run(
            [
                str(BIN / "pip-compile-multi"),
                "--uv",
                "--autoresolve",
                "--python-version",
                "3.11",
                "-d",
                "requirements",
                *hashes,
            ],
            project,
        ),
    )

    def pip_tools() -> None:
        for name in TIERS:  # parents first, each constrained by nothing but its own -r
            run(
                [
                    str(BIN / "pip-compile"),
                    "--quiet",
                    "--generate-hashes",
                    "--strip-extras",
                    f"requirements/{name}.in",
                    "-o",
                    f"requirements/{name}.txt",
                ],
                project,
            )

    plain = timed(1, reset, pip_tools) if arguments.with_pip_tools else None

    return ours, union, multi, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--with-pip-tools", action="store_true", help="also time pip-compile (minutes)"
    )
    parser.add_argument(
        "--only-noop",
        action="store_true",
        help="time only the no-op lock and the drift check (after one real lock)",
    )
    arguments = parser.parse_args()
    runs = arguments.runs
    work = Path(tempfile.mkdtemp(prefix="lock-bench-"))
    try:
        project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(work)))
        requirements = project / "requirements"
        for name, text in TIERS.items():
            (requirements / f"{name}.in").write_text(text)
        ins = [f"requirements/{name}.in" for name in sorted(TIERS)]
        python = sys.executable

        def reset() -> None:
            clean(requirements)

        ours = multi = union = 0.0
        plain = None
        if not arguments.only_noop:
            ours, union, multi, plain = peers(arguments, project, ins, reset)

        reset()
        run([python, "-c", LOCK_IN_PROCESS], project)
        noop = timed(runs, lambda: None, lambda: run([str(BIN / "nox"), "-s", "lock"], project))
        nox_alone = timed(runs, lambda: None, lambda: run([str(BIN / "nox"), "--list"], project))
        check = statistics.median(
            float(run([python, "-c", CHECK_IN_PROCESS], project)) for _ in range(max(runs, 5))
        )
        packages = sum(
            1
            for line in (requirements / "_union.txt").read_text().splitlines()
            if "==" in line and not line.startswith((" ", "#"))
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"lock benchmark: 5 tiers, {packages} locked packages, median of {runs} warm runs\n")
    print("| measurement | seconds | ratio | target |")
    print("|---|---|---|---|")
    if arguments.only_noop:
        print(f"| no-op `nox -s lock` (with nox start-up) | {noop:.3f} | | <= 0.3 s |")
        print(f"| `nox --list` alone (nox start-up) | {nox_alone:.3f} | | |")
        print(f"| drift check alone (`lock.check`) | {check:.4f} | | <= 0.05 s |")
        return
    print(f"| full hashed lock of all tiers (ours) | {ours:.2f} | 1.00 | |")
    print(
        f"| pip-compile-multi --uv --autoresolve, hashes | {multi:.2f} | "
        f"ours {ours / multi:.2f}x | <= 0.25x |"
    )
    if plain is not None:
        print(
            f"| pip-compile (pip-tools), layer by layer | {plain:.2f} "
            f"| ours {ours / plain:.3f}x | |"
        )
    print(
        f"| bare uv pip compile of the union | {union:.2f} | ours {ours / union:.2f}x | <= 1.2x |"
    )
    print(f"| no-op `nox -s lock` (with nox start-up) | {noop:.3f} | | <= 0.3 s |")
    print(f"| `nox --list` alone (nox start-up) | {nox_alone:.3f} | | |")
    print(f"| drift check alone (`lock.check`) | {check:.4f} | | <= 0.05 s |")


if __name__ == "__main__":
    main()
