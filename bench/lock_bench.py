"""Benchmark the generated project's lock against its peers, in one run.

Usage: python bench/lock_bench.py [--runs N] [--only-noop | --only-groups | --only-size | --only-calls]   (inside the template's .venv)

Bakes a project, gives it a realistic tier set (a few dozen packages with
heavy ones such as pandas, scipy and boto3), warms every tool's cache once,
then times each contender N times on the same inputs and prints medians and
ratios. Peers: pip-compile-multi --uv --autoresolve (hashes on every tier),
pip-compile (pip-tools) layer by layer, one bare `uv pip compile` of the
union of all tiers, and `uv lock` plus one `uv export` per tier of the same
tiers as PEP 735 dependency groups (the peer a uv user would pick instead).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
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
# Solve groups: two workers that lock apart from the default group, sharing base.
# In the first set the groups agree on base's pins, so one concurrent round is
# enough; in the second the backend's boto3 holds python-dateutil below 3
# while the workers alone would take 4.x, so they resolve again, constrained.
AGREEING_TIERS = {
    "base": "pydantic>=2\nstructlog\nrequests\npython-dateutil\nPyYAML\n",
    "backend": "-r base.in\nfastapi\nrich\n",
    "worker-a": "-r base.in\nnumpy\npandas\nscipy\nstatsmodels\n",
    "worker-b": "-r base.in\npyarrow\nmatplotlib\n",
    "dev": "-r backend.in\npytest\npytest-cov\nhypothesis\nruff\nmypy\n",
}
HELD_BACK_TIERS = {
    "base": "pydantic>=2\nstructlog\nrequests\npython-dateutil\nPyYAML\n",
    "backend": "-r base.in\nboto3\nrich\n",
    "worker-a": "-r base.in\nnumpy\npandas\nscipy\nstatsmodels\n",
    "worker-b": "-r base.in\npyarrow\nmatplotlib\n",
    "dev": "-r backend.in\npytest\npytest-cov\nhypothesis\nruff\nmypy\n",
}
GROUP_MEMBERS = {"default": ["backend", "dev"], "a": ["worker-a"], "b": ["worker-b"]}
GROUPS_TABLE = '\n[tool.lockstep.solve-groups]\na = ["worker-a"]\nb = ["worker-b"]\n'
LOCK_IN_PROCESS = (
    "import sys; from pathlib import Path; sys.path.insert(0, '.');"
    "from tooling import lock, project; lock.lock(project.load(Path('.')))"
)
# The same lock keeping every hash uv lists (what every lock held before wheels no
# allowed Python can install were left out).
# (patched where resolve looks it up: the package's name only points at it)
LOCK_EVERY_HASH_IN_PROCESS = LOCK_IN_PROCESS.replace(
    "lock.lock(",
    "import tooling.lock.resolve as r; r.only_installable = lambda *a: list(a[3]); lock.lock(",
)
# The full lock, each uv it runs timed (seconds from the interpreter's start): JSON on stdout.
CALLS_IN_PROCESS = """
import json, sys, time
started = time.perf_counter()
from pathlib import Path
sys.path.insert(0, ".")
from tooling import lock, project
from tooling.lock import uv
spans = []
def kind(argv):
    if list(argv[:2]) == ["python", "find"]:
        return "uv python find (the Python every compile builds with)"
    if "pylock.toml" in argv:
        return "uv: PEP 751 lock of the union's pins (their files), offline"
    if "union-pins.txt" in argv:
        return "uv: a tier's closure, offline (several at once)"
    return "uv: the union's resolution, hashed"
def timed(argv, cwd):
    start = time.perf_counter()
    result = uv.run_uv(argv, cwd)
    spans.append((kind(argv), start - started, time.perf_counter() - started))
    return result
imported = time.perf_counter() - started
lock.lock(project.load(Path(".")), run=timed)
print(json.dumps({"imported": imported, "spans": spans, "end": time.perf_counter() - started}))
"""
CHECK_IN_PROCESS = (
    "import sys, time; from pathlib import Path; sys.path.insert(0, '.');"
    "from tooling import project; from tooling.lock import check; p = project.load(Path('.'));"
    "start = time.perf_counter(); problems = check(p);"
    "print(time.perf_counter() - start); assert not problems, problems"
)


# Warm means warm bytecode too, as on a user's machine (some CI images turn it off).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def cooldown_of(project: Path) -> str:
    """The project's `cooldown` setting ("7 days"), or "" when it has none."""
    settings = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["lockstep"]
    return str(settings.get("cooldown") or "")


def peer_env(project: Path) -> dict[str, str]:
    """The peers' environment: uv cuts off at the project's cooldown, as our lock does.

    Our lock passes the cooldown to uv as --exclude-newer; every uv a peer runs
    (pip-compile-multi's too) reads the same relative cutoff from UV_EXCLUDE_NEWER.
    """
    cooldown = cooldown_of(project)
    return {**ENV, "UV_EXCLUDE_NEWER": cooldown} if cooldown else ENV


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, env=env or ENV
    )
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


def uv_project(folder: Path) -> Path:
    """The tiers as PEP 735 dependency groups of a project that is not a package."""
    folder.mkdir()
    groups = []
    for name, text in TIERS.items():
        members = [
            f'{{include-group = "{line[3:].removesuffix(".in")}"}}'
            if line.startswith("-r ")
            else f'"{line}"'
            for line in text.splitlines()
        ]
        groups.append(f"{name} = [{', '.join(members)}]")
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "peer"\nversion = "0"\nrequires-python = ">=3.11"\n'
        "dependencies = []\n\n[dependency-groups]\n" + "\n".join(groups) + "\n"
    )
    return folder


def lock_and_export(folder: Path, env: dict[str, str]) -> None:
    """`uv lock` from scratch, then one hashed requirements file per tier."""
    (folder / "uv.lock").unlink(missing_ok=True)
    uv = str(BIN / "uv")
    run([uv, "lock", "--quiet"], folder, env)
    for name in TIERS:
        export = [uv, "export", "--quiet", "--frozen", "--no-emit-project", "--only-group", name]
        run([*export, "--format", "requirements-txt", "-o", f"{name}.txt"], folder, env)


def peers(
    arguments: argparse.Namespace, project: Path, ins: list[str], reset: Callable[[], None]
) -> tuple[float, float, float, float | None, float]:
    """Full locks: ours, one bare union compile, pip-compile-multi, pip-tools (optional),
    uv lock plus uv export."""
    runs = arguments.runs
    python = sys.executable
    uv = str(BIN / "uv")
    env = peer_env(project)
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
            env,
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
            env,
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
    folder = uv_project(project.parent / "uv-project")
    exported = timed(runs, lambda: None, lambda: lock_and_export(folder, env))
    return ours, union, multi, plain, exported


def grouped(runs: int, work: Path, tiers: dict[str, str]) -> dict[str, float | str | int]:
    """A full lock with solve groups against bare compiles of its groups, run by run.

    The index here answers over a proxy whose latency drifts from minute to
    minute, so each run times ours, every group's bare compile alone and the
    three bare compiles at once back to back; the ratio is the median of the
    per-run ratios to that run's slowest group.
    """
    output = tempfile.mkdtemp(prefix="grouped-", dir=work)
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=output))
    requirements = project / "requirements"
    for path in requirements.glob("*.in"):
        path.unlink()
    for name, text in tiers.items():
        (requirements / f"{name}.in").write_text(text)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        re.sub(r"(?m)^(sniper|hunter|strategist) = \d+\n", "", pyproject.read_text())
    )
    with pyproject.open("a") as stream:
        stream.write(GROUPS_TABLE)
    python = sys.executable

    def bare(group: str) -> list[str]:
        ins = [f"requirements/{name}.in" for name in GROUP_MEMBERS[group]]
        command = [str(BIN / "uv"), "pip", "compile", *ins, "--universal", "--python-version"]
        return [*command, "3.11", "--generate-hashes", "--quiet", "-o", f"bare-{group}.txt"]

    def all_at_once() -> None:
        started = [
            subprocess.Popen(bare(group), cwd=project, env=peer_env(project))
            for group in GROUP_MEMBERS
        ]
        if any(process.wait() != 0 for process in started):
            raise SystemExit("benchmark step failed: three bare compiles at once")

    def once(action: Callable[[], object]) -> float:
        clean(requirements)
        for path in project.glob("bare-*.txt"):
            path.unlink()
        start = time.perf_counter()
        action()
        return time.perf_counter() - start

    contenders: dict[str, Callable[[], object]] = {
        "ours": lambda: run([python, "-c", LOCK_IN_PROCESS], project),
        **{
            group: lambda group=group: run(bare(group), project, peer_env(project))
            for group in GROUP_MEMBERS
        },
        "at once": all_at_once,
    }
    for action in contenders.values():  # warm the caches
        once(action)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, action in contenders.items():
            samples[name].append(once(action))
    slowest_each_run = [max(samples[g][i] for g in GROUP_MEMBERS) for i in range(runs)]

    def ratio(mine: list[float], peer: list[float]) -> float:
        return statistics.median(m / p for m, p in zip(mine, peer, strict=True))

    medians = {name: statistics.median(found) for name, found in samples.items()}
    clean(requirements)
    run([python, "-c", LOCK_IN_PROCESS], project)
    packages = len(
        {
            line.split("==")[0]
            for union in requirements.glob("_union*.txt")
            for line in union.read_text().splitlines()
            if "==" in line and not line.startswith((" ", "#"))
        }
    )
    return {
        "ours": medians["ours"],
        "slowest": max(medians[g] for g in GROUP_MEMBERS),
        "group": max(GROUP_MEMBERS, key=lambda g: medians[g]),
        "at once": medians["at once"],
        "ratio": ratio(samples["ours"], slowest_each_run),
        "floor": ratio(samples["at once"], slowest_each_run),
        "over floor": ratio(samples["ours"], samples["at once"]),
        "packages": packages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--with-pip-tools", action="store_true", help="also time pip-compile (minutes)"
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--only-noop",
        action="store_true",
        help="time only the no-op lock and the drift check (after one real lock)",
    )
    only.add_argument(
        "--only-groups",
        action="store_true",
        help="time only the lock with solve groups against its slowest group",
    )
    only.add_argument(
        "--only-calls",
        action="store_true",
        help="time each uv call of a full lock and the Python around them (where the time goes)",
    )
    only.add_argument(
        "--only-size",
        action="store_true",
        help="compare only the tier locks' sizes with and without uninstallable hashes",
    )
    arguments = parser.parse_args()
    runs = arguments.runs
    work = Path(tempfile.mkdtemp(prefix="lock-bench-"))
    rows = []
    try:
        if arguments.only_calls:
            rows += calls_rows(runs, work)
        elif not arguments.only_groups:
            rows += tiers_rows(arguments, work)
        if not (arguments.only_noop or arguments.only_size or arguments.only_calls):
            for label, tiers in (
                ("groups agree on the shared pins", AGREEING_TIERS),
                ("boto3 holds a shared pin back", HELD_BACK_TIERS),
            ):
                found = grouped(runs, work, tiers)
                rows.append(
                    f"| full lock with 3 solve groups, {label} ({found['packages']} packages) "
                    f"| {found['ours']:.2f} | 1.00 | |"
                )
                rows.append(
                    f"| bare uv pip compile of its slowest group ({found['group']}) alone "
                    f"| {found['slowest']:.2f} | ours {found['ratio']:.2f}x | <= 1.2x |"
                )
                rows.append(
                    f"| the 3 groups' bare compiles at once (uv's own floor) "
                    f"| {found['at once']:.2f} | {found['floor']:.2f}x "
                    f"(ours {found['over floor']:.2f}x of this) | |"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"lock benchmark: median of {runs} warm runs")
    print(
        "cooldown: the project's own setting (new projects: 7 days) is kept; our lock passes it "
        "to uv as --exclude-newer and every uv peer gets the same relative cutoff "
        "(UV_EXCLUDE_NEWER), so both resolve against the same releases; pip-tools has none\n"
    )
    print("| measurement | seconds | ratio | target |")
    print("|---|---|---|---|")
    print("\n".join(rows))


def tiers_rows(arguments: argparse.Namespace, work: Path) -> list[str]:
    """Five tiers in one group: our lock against its peers, the no-op lock and the check."""
    runs = arguments.runs
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(work)))
    requirements = project / "requirements"
    for name, text in TIERS.items():
        (requirements / f"{name}.in").write_text(text)
    ins = [f"requirements/{name}.in" for name in sorted(TIERS)]
    python = sys.executable

    def reset() -> None:
        clean(requirements)

    rows = [] if arguments.only_noop else size_rows(project, reset)
    if arguments.only_size:
        return rows
    if not arguments.only_noop:
        ours, union, multi, plain, exported = peers(arguments, project, ins, reset)
        reset()
        run([python, "-c", LOCK_IN_PROCESS], project)
        packages = sum(
            1
            for line in (requirements / "_union.txt").read_text().splitlines()
            if "==" in line and not line.startswith((" ", "#"))
        )
        rows.append(
            f"| full hashed lock of 5 tiers ({packages} packages), ours | {ours:.2f} | 1.00 | |"
        )
        rows.append(
            f"| pip-compile-multi --uv --autoresolve, hashes | {multi:.2f} | "
            f"ours {ours / multi:.2f}x | <= 0.25x |"
        )
        if plain is not None:
            rows.append(
                f"| pip-compile (pip-tools), layer by layer | {plain:.2f} "
                f"| ours {ours / plain:.3f}x | |"
            )
        rows.append(
            f"| bare uv pip compile of the union | {union:.2f} | ours {ours / union:.2f}x "
            "| <= 1.2x |"
        )
        rows.append(
            f"| uv lock + uv export per tier (tiers as dependency groups) | {exported:.2f} "
            f"| ours {ours / exported:.2f}x | <= 1.0x |"
        )
    reset()
    run([python, "-c", LOCK_IN_PROCESS], project)
    rows += noop_rows(runs, project)
    return rows


EMPTY_NOXFILE = """import nox


@nox.session(venv_backend="none")
def empty(session: nox.Session) -> None:
    session.log("nothing")
"""


def noop_rows(runs: int, project: Path) -> list[str]:
    """The no-op lock against nox's own start-up, run by run, and the drift check alone.

    `nox --version` is nox starting and stopping; the no-op `nox -s lock` adds the
    noxfile, the project's settings and the digest of every file a lock reads.
    Each run times both back to back (the machine's load drifts); the ratio is
    the median of the per-run ratios. The run without a record is the first no-op
    after a fresh clone (tooling.lock.fresh): the full lock that finds nothing to do.
    An empty session shows what nox itself adds to any session (it runs `uv self
    version` to learn its backends, even for venv_backend="none").
    """
    nox = str(BIN / "nox")
    record = project / ".lockstep_cache"
    run([nox, "-s", "lock"], project)  # records the locks as current, warms the bytecode
    empty = project.parent / "empty-noxfile"
    empty.mkdir(exist_ok=True)
    (empty / "noxfile.py").write_text(EMPTY_NOXFILE)
    run([nox, "-s", "empty"], empty)
    samples: dict[str, list[float]] = {"noop": [], "version": [], "empty": [], "unrecorded": []}

    def once(name: str, command: list[str], cwd: Path = project) -> None:
        start = time.perf_counter()
        run(command, cwd)
        samples[name].append(time.perf_counter() - start)

    for _ in range(max(runs, 7)):
        once("noop", [nox, "-s", "lock"])
        once("version", [nox, "--version"])
        once("empty", [nox, "-s", "empty"], empty)
        shutil.rmtree(record)
        once("unrecorded", [nox, "-s", "lock"])
        if not (record / "locks-current").is_file():
            raise SystemExit("benchmark step failed: the lock recorded no state")
    noop, version, session, unrecorded = (statistics.median(samples[k]) for k in samples)
    ratio = statistics.median(
        n / v for n, v in zip(samples["noop"], samples["version"], strict=True)
    )
    nox_own = statistics.median(
        e / v for e, v in zip(samples["empty"], samples["version"], strict=True)
    )
    full = statistics.median(
        u / v for u, v in zip(samples["unrecorded"], samples["version"], strict=True)
    )
    check = statistics.median(
        float(run([sys.executable, "-c", CHECK_IN_PROCESS], project)) for _ in range(max(runs, 5))
    )
    return [
        f"| no-op `nox -s lock` (with nox start-up) | {noop:.3f} | {ratio:.2f}x | <= 1.3x, <= 0.3 s |",
        f"| `nox --version` alone (nox start-up, same runs) | {version:.3f} | 1.00 | |",
        f"| `nox -s` of an empty session (nox's own session cost) | {session:.3f} "
        f"| {nox_own:.2f}x | |",
        f"| no-op `nox -s lock` with no record (fresh clone) | {unrecorded:.3f} | {full:.2f}x | |",
        f"| drift check alone (`lock.check`) | {check:.4f} | | <= 0.05 s |",
    ]


def calls_rows(runs: int, work: Path) -> list[str]:
    """Where a full lock's time goes: each uv call (start and length, medians) and the Python
    before, between and after them, beside one bare union compile run right after it."""
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(work)))
    requirements = project / "requirements"
    for name, text in TIERS.items():
        (requirements / f"{name}.in").write_text(text)
    ins = [f"requirements/{name}.in" for name in sorted(TIERS)]
    bare = [str(BIN / "uv"), "pip", "compile", *ins, "--universal", "--python-version", "3.11"]
    bare += ["--generate-hashes", "--quiet", "-o", "bare.txt"]
    clean(requirements)
    run([sys.executable, "-c", LOCK_IN_PROCESS], project)  # warm the caches
    found: dict[str, list[tuple[float, float]]] = {}
    totals: dict[str, list[float]] = {"whole lock": [], "bare": [], "imported": [], "after": []}
    for _ in range(runs):
        clean(requirements)
        start = time.perf_counter()
        timings = json.loads(run([sys.executable, "-c", CALLS_IN_PROCESS], project))
        totals["whole lock"].append(time.perf_counter() - start)
        totals["imported"].append(timings["imported"])
        totals["after"].append(timings["end"] - max(end for _, _, end in timings["spans"]))
        for kind, begin, end in timings["spans"]:
            found.setdefault(kind, []).append((begin, end - begin))
        start = time.perf_counter()
        run(bare, project, peer_env(project))
        totals["bare"].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in totals.items()}
    rows = [
        f"| full lock (Python start to exit) | {median['whole lock']:.3f} | "
        f"{median['whole lock'] / median['bare']:.2f}x bare | <= 1.2x |",
        f"| bare uv pip compile of the union, right after each | {median['bare']:.3f} | 1.00 | |",
        f"| Python start and imports, until the lock starts | {median['imported']:.3f} | | |",
    ]
    for kind, spans in sorted(
        found.items(), key=lambda item: statistics.median(s for s, _ in item[1])
    ):
        begin = statistics.median(s for s, _ in spans)
        length = statistics.median(d for _, d in spans)
        count = len(spans) / runs
        rows.append(f"| {kind} (x{count:g}, from {begin:.3f} s) | {length:.3f} | | |")
    rows.append(f"| Python after the last uv (pylocks, writing) | {median['after']:.3f} | | |")
    return rows


def size_rows(project: Path, reset: Callable[[], None]) -> list[str]:
    """Each lock's size against the same lock with every hash uv lists, from one resolution."""
    sizes = {}
    for label, script in (("every", LOCK_EVERY_HASH_IN_PROCESS), ("ours", LOCK_IN_PROCESS)):
        reset()
        run([sys.executable, "-c", script], project)
        sizes[label] = {
            path.name: path.stat().st_size
            for path in sorted((project / "requirements").glob("*.txt"))
        }
    sizes["ours"]["all locks"] = sum(sizes["ours"].values())
    sizes["every"]["all locks"] = sum(sizes["every"].values())
    return [
        f"| size of {name} without uninstallable hashes (bytes: {size} of "
        f"{sizes['every'][name]}) | | {size / sizes['every'][name]:.2f}x | <= 0.9x |"
        for name, size in sizes["ours"].items()
    ]


if __name__ == "__main__":
    main()
