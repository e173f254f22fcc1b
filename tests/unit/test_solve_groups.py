"""Solve groups: tiers that need another build of a package lock apart, sharing their parents."""

from __future__ import annotations

import hashlib
import itertools
import re
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from tooling import ToolingError, lock, lockfile
from tooling.project import load
from tooling.tiers import TierError, describe, read_tiers, solve_groups
from uv_stand_in import tier_compile

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_INDEX = "https://download.pytorch.org/whl/cu121"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def block(name: str, version: str, *via: str, files: str = "") -> str:
    lines = [f"{name}=={version} \\", f"    --hash=sha256:{digest(files or name + version)}"]
    if len(via) == 1:
        lines.append(f"    # via {via[0]}")
    else:
        lines += ["    # via", *(f"    #   {origin}" for origin in via)]
    return "\n".join(lines) + "\n"


def structlog(version: str = "24.1.0", files: str = "") -> str:
    return block("structlog", version, "-r requirements/base.in", files=files)


BODIES = {
    "default": structlog()
    + block("fastapi", "0.110.0", "-r requirements/backend.in")
    + block("pytest", "8.0.0", "-r requirements/dev.in"),
    "cpu": block("accel", "1.0+cpu", "-r requirements/cpu-worker.in") + structlog(),
    # the CUDA index serves structlog files of its own: other hashes, same version
    "cuda": block("accel", "1.0+cu121", "-r requirements/gpu-worker.in")
    + structlog(files="mirror"),
}
GROUP_OF_INPUT = {
    "requirements/dev.in": "default",
    "requirements/cpu-worker.in": "cpu",
    "requirements/gpu-worker.in": "cuda",
}


class GroupUv:
    """A stand-in for uv that answers per solve group, from the group's top `.in` files."""

    def __init__(
        self,
        bodies: dict[str, str] | None = None,
        during: Callable[[str, Sequence[str], Path], str | None] | None = None,
    ) -> None:
        self.bodies = dict(bodies or BODIES)
        self.during = during
        self.calls: list[tuple[str, list[str], str]] = []  # (group, argv, shared pins given)
        self.lock = threading.Lock()

    def __call__(self, argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        if (derived := tier_compile(argv, cwd)) is not None:
            return derived
        group = next(GROUP_OF_INPUT[arg] for arg in argv if arg in GROUP_OF_INPUT)
        shared = ""
        if "--constraint" in argv:
            shared = (cwd / argv[argv.index("--constraint") + 1]).read_text()
        with self.lock:
            self.calls.append((group, list(argv), shared))
        error = self.during(group, argv, cwd) if self.during else None
        if error:
            return subprocess.CompletedProcess(argv, 1, "", error)
        body = self.bodies[group]
        for constraint in shared.splitlines():  # honoured as uv would
            name, version = constraint.split("==")
            body = re.sub(rf"^{name}==\S+", f"{name}=={version}", body, flags=re.MULTILINE)
        Path(argv[argv.index("--output-file") + 1]).write_text(body)
        return subprocess.CompletedProcess(argv, 0, "", "")

    def groups(self) -> list[str]:
        return sorted(group for group, _, _ in self.calls)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".python-version").write_text("3.11\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lockstep.solve-groups]\ncpu = ["cpu-worker"]\ncuda = ["gpu-worker"]\n'
    )
    requirements = tmp_path / "requirements"
    requirements.mkdir()
    (requirements / "base.in").write_text("structlog\n")
    (requirements / "backend.in").write_text("-r base.in\nfastapi\n")
    (requirements / "cpu-worker.in").write_text(
        f"-r base.in\n--extra-index-url {CPU_INDEX}\naccel==1.0+cpu\n"
    )
    (requirements / "gpu-worker.in").write_text(
        f"-r base.in\n--extra-index-url {CUDA_INDEX}\naccel==1.0+cu121\n"
    )
    (requirements / "dev.in").write_text("-r backend.in\npytest\n")
    return tmp_path


def locks(root: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((root / "requirements").glob("*.txt"))}


def pin_lines(text: str, name: str) -> list[tuple[str, ...]]:
    return [pin.lines for pin in lockfile.parse(text).pins if pin.name == name]


def test_each_group_locks_its_own_build_from_its_own_index(project: Path) -> None:
    uv = GroupUv()
    lock.lock(load(project), run=uv)
    assert uv.groups() == ["cpu", "cuda", "default"]
    written = locks(project)
    assert set(written) == {
        "_union.txt",
        "_union-cpu.txt",
        "_union-cuda.txt",
        "base.txt",
        "backend.txt",
        "cpu-worker.txt",
        "gpu-worker.txt",
        "dev.txt",
    }
    assert "accel==1.0+cpu \\" in written["cpu-worker.txt"]
    assert "accel==1.0+cu121 \\" in written["gpu-worker.txt"]
    assert f"--extra-index-url {CPU_INDEX}\n" in written["cpu-worker.txt"]
    assert f"--extra-index-url {CUDA_INDEX}\n" in written["gpu-worker.txt"]
    for name in ("base.txt", "backend.txt", "dev.txt", "_union.txt", "cpu-worker.txt"):
        assert CUDA_INDEX not in written[name], name
    assert "accel" not in written["backend.txt"] + written["dev.txt"]
    assert lock.check(load(project)) == []


def test_the_shared_base_is_byte_identical_in_every_lock(project: Path) -> None:
    lock.lock(load(project), run=GroupUv())
    written = locks(project)
    expected = pin_lines(written["base.txt"], "structlog")
    for name in ("backend.txt", "dev.txt", "cpu-worker.txt", "gpu-worker.txt", "_union-cuda.txt"):
        assert pin_lines(written[name], "structlog") == expected, name
    assert digest("mirror") not in "".join(written.values())


def test_a_first_lock_resolves_every_group_at_once(project: Path) -> None:
    together = threading.Barrier(3, timeout=10)

    def overlap(group: str, argv: Sequence[str], cwd: Path) -> None:
        together.wait()  # no group waits for another

    uv = GroupUv(during=overlap)
    lock.lock(load(project), run=uv)
    assert sorted((group, shared) for group, _, shared in uv.calls) == [
        ("cpu", ""),
        ("cuda", ""),
        ("default", ""),
    ]
    assert lock.check(load(project)) == []


def test_a_group_whose_shared_pins_came_out_different_resolves_again(project: Path) -> None:
    bodies = dict(BODIES, cpu=BODIES["cpu"].replace("structlog==24.1.0", "structlog==24.2.0"))
    uv = GroupUv(bodies)
    lock.lock(load(project), run=uv)
    assert [
        (shared, "--offline" in argv) for group, argv, shared in uv.calls if group == "cpu"
    ] == [
        ("", False),
        ("structlog==24.1.0\n", True),  # from the pages its first resolution just fetched
    ]
    assert [shared for group, _, shared in uv.calls if group == "cuda"] == [""]
    assert "structlog==24.1.0 \\" in locks(project)["cpu-worker.txt"]
    assert lock.check(load(project)) == []


def test_an_offline_pin_this_run_did_not_fetch_is_resolved_online(project: Path) -> None:
    bodies = dict(BODIES, cpu=BODIES["cpu"].replace("structlog==24.1.0", "structlog==24.2.0"))
    older_accel_needs = block("cpuhelper", "1.0", "accel")

    def offline_pins_a_new_package(group: str, argv: Sequence[str], cwd: Path) -> None:
        if group == "cpu" and "--constraint" in argv:  # with structlog 24.1.0, accel needs more
            uv.bodies["cpu"] = BODIES["cpu"] + older_accel_needs

    uv = GroupUv(bodies, during=offline_pins_a_new_package)
    lock.lock(load(project), run=uv)
    assert [
        (shared, "--offline" in argv) for group, argv, shared in uv.calls if group == "cpu"
    ] == [
        ("", False),
        ("structlog==24.1.0\n", True),  # its cpuhelper page may be an old cached one
        ("structlog==24.1.0\n", False),
    ]
    assert "cpuhelper==1.0 \\" in locks(project)["cpu-worker.txt"]
    assert lock.check(load(project)) == []


def test_groups_follow_when_the_default_group_moves_a_shared_pin(project: Path) -> None:
    lock.lock(load(project), run=GroupUv())
    (project / "requirements" / "dev.in").write_text("-r backend.in\npytest\nstructlog>=25\n")
    bodies = {
        group: body.replace("structlog==24.1.0", "structlog==25.1.0")
        for group, body in BODIES.items()
    }
    uv = GroupUv(bodies)
    logged: list[str] = []
    lock.main(load(project), [], log=logged.append, run=uv)
    assert (uv.calls[0][0], uv.calls[0][2]) == ("default", "")
    assert sorted((group, shared) for group, _, shared in uv.calls[1:]) == [
        ("cpu", "structlog==25.1.0\n"),
        ("cuda", "structlog==25.1.0\n"),
    ]
    assert "structlog 24.1.0 → 25.1.0 (base, backend, cpu-worker, gpu-worker, dev)" in logged
    assert lock.check(load(project)) == []


def test_a_shared_pin_a_group_cannot_use_is_one_line(project: Path) -> None:
    bodies = dict(BODIES)
    bodies["cuda"] = BODIES["cuda"].replace("structlog==24.1.0", "structlog==25.1.0")

    def refuse(group: str, argv: Sequence[str], cwd: Path) -> str | None:
        if group == "cuda" and "--constraint" in argv:
            return (
                "error: No solution found\n  cause: Because accel==1.0+cu121 depends on "
                "structlog>=25 and you require structlog==24.1.0, we can conclude that your "
                "requirements are unsatisfiable.\n"
            )
        return None

    with pytest.raises(lock.LockError) as raised:
        lock.lock(load(project), run=GroupUv(bodies, during=refuse))
    message = str(raised.value)
    assert message.startswith(
        "solve group cuda cannot use structlog 24.1.0, which group default pins for the "
        "shared tier base: "
    )
    assert "\n" not in message
    assert locks(project) == {}


@pytest.mark.parametrize(
    "network",
    [
        "Failed to fetch: `https://download.pytorch.org/whl/cu121/structlog/`\n"
        "  Caused by: dns error: failed to lookup address information",
        "Failed to fetch: `https://download.pytorch.org/whl/cu121/structlog/`\n"
        "  Caused by: tcp connect error: Connection refused (os error 111)",
    ],
    ids=["dns", "refused"],
)
def test_an_unreachable_index_is_never_a_pin_conflict(project: Path, network: str) -> None:
    bodies = dict(BODIES)
    bodies["cuda"] = BODIES["cuda"].replace("structlog==24.1.0", "structlog==25.1.0")

    def offline(group: str, argv: Sequence[str], cwd: Path) -> str | None:
        if group == "cuda":
            return f"error: Request failed after 3 retries\n  Caused by: {network}\n"
        return None

    with pytest.raises(lock.LockError) as raised:
        lock.lock(load(project), run=GroupUv(bodies, during=offline))
    message = str(raised.value)
    assert message.startswith(
        f"cannot lock requirements/gpu-worker.in:2 (--extra-index-url {CUDA_INDEX}): "
        "Request failed after 3 retries"
    )
    assert "cannot use" not in message and "pins for the shared tier" not in message


def test_only_the_stale_group_resolves_and_the_check_names_only_its_tiers(
    project: Path,
) -> None:
    lock.lock(load(project), run=GroupUv())
    before = locks(project)
    gpu = project / "requirements" / "gpu-worker.in"
    gpu.write_text(gpu.read_text() + "# pinned for the driver on our GPU nodes\naccel>=1\n")
    problems = lock.check(load(project))
    assert problems == [
        "union-cuda: requirements/gpu-worker.in changed since requirements/_union-cuda.txt "
        "was locked",
        "gpu-worker: requirements/gpu-worker.in changed since requirements/gpu-worker.txt "
        "was locked",
    ]
    uv = GroupUv()
    result = lock.lock(load(project), run=uv)
    assert uv.groups() == ["cuda"]
    assert uv.calls[0][2] == "structlog==24.1.0\n"  # constrained by the settled default group
    assert {path.name for path in result.written} == {"_union-cuda.txt", "gpu-worker.txt"}
    after = locks(project)
    assert {name for name in after if after[name] != before[name]} == {
        "_union-cuda.txt",
        "gpu-worker.txt",
    }
    idle = GroupUv()
    again = lock.lock(load(project), run=idle)
    assert idle.calls == [] and again.written == [] and not again.resolved
    assert lock.check(load(project)) == []


def test_stale_groups_resolve_concurrently(project: Path) -> None:
    together = threading.Barrier(2, timeout=10)

    def wait_for_the_others(group: str, argv: Sequence[str], cwd: Path) -> None:
        if group != "default":  # it runs first; then cpu and cuda must overlap
            together.wait()  # breaks (and fails the lock) unless both uv runs overlap

    lock.lock(load(project), run=GroupUv(during=wait_for_the_others))
    assert lock.check(load(project)) == []


def test_local_version_labels_survive_an_upgrade(
    project: Path, forge_digests: Callable[[Path], None]
) -> None:
    lock.lock(load(project), run=GroupUv())
    bodies = dict(BODIES)
    bodies["cpu"] = BODIES["cpu"].replace("accel==1.0+cpu", "accel==1.1+cpu")
    bodies["cuda"] = BODIES["cuda"].replace("accel==1.0+cu121", "accel==1.1+cu121")
    for tier, index in (("cpu-worker", CPU_INDEX), ("gpu-worker", CUDA_INDEX)):
        (project / "requirements" / f"{tier}.in").write_text(
            f"-r base.in\n--extra-index-url {index}\naccel\n"
        )
    logged: list[str] = []
    uv = GroupUv(bodies)
    lock.main(load(project), ["--upgrade-package", "accel"], log=logged.append, run=uv)
    assert all(
        ("--upgrade-package", "accel") in itertools.pairwise(argv) for _, argv, _ in uv.calls
    )
    assert "accel 1.0+cpu → 1.1+cpu (cpu-worker)" in logged
    assert "accel 1.0+cu121 → 1.1+cu121 (gpu-worker)" in logged
    cpu = lockfile.parse(locks(project)["cpu-worker.txt"])
    assert ("accel", "1.1+cpu") in cpu.versions()
    assert lock.check(load(project)) == []
    (project / "requirements" / "cpu-worker.in").write_text(
        f"-r base.in\n--extra-index-url {CPU_INDEX}\naccel==1.0+cpu\n"
    )
    forge_digests(project)
    assert (
        "cpu-worker: requirements/cpu-worker.in:3: accel==1.0+cpu is not met by cpu-worker.txt "
        "(accel 1.1+cpu)"
    ) in lock.check(load(project))


def test_a_shared_pin_edited_in_one_group_fails_the_check(project: Path) -> None:
    lock.lock(load(project), run=GroupUv())
    union = project / "requirements" / "_union-cpu.txt"
    text = union.read_text().replace(digest("structlog24.1.0"), digest("other"))
    body = lock.recorded(text).body
    union.write_text(text.replace(lock.recorded(text).body_digest or "", digest(body)))
    problems = lock.check(load(project))
    assert (
        "union-cpu: structlog 24.1.0 of the shared tier base is not locked as solve group "
        "default locks it"
    ) in problems


def test_a_removed_group_loses_its_union(project: Path) -> None:
    lock.lock(load(project), run=GroupUv())
    (project / "pyproject.toml").write_text('[tool.lockstep.solve-groups]\ncpu = ["cpu-worker"]\n')
    (project / "requirements" / "gpu-worker.in").unlink()
    logged: list[str] = []
    lock.main(load(project), [], log=logged.append, run=GroupUv())
    assert "deleted requirements/_union-cuda.txt: solve group cuda is gone" in logged
    assert "deleted requirements/gpu-worker.txt: requirements/gpu-worker.in is gone" in logged
    assert not (project / "requirements" / "_union-cuda.txt").exists()
    assert lock.check(load(project)) == []


def test_invoke_tiers_shows_the_groups(project: Path) -> None:
    graph = read_tiers(project / "requirements")
    groups = solve_groups(graph, {"cpu": ["cpu-worker"], "cuda": ["gpu-worker"]})
    assert [(g.name, g.members, g.closure) for g in groups] == [
        ("default", ("base", "backend", "dev"), ("base", "backend", "dev")),
        ("cpu", ("cpu-worker",), ("base", "cpu-worker")),
        ("cuda", ("gpu-worker",), ("base", "gpu-worker")),
    ]
    assert "gpu-worker <- base  [solve group cuda]" in describe(graph, groups)
    assert "base (root)  [solve group default]" in describe(graph, groups)
    assert describe(graph, solve_groups(graph, {})) == describe(graph)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'cpu = ["cpu-worker"]\ncuda = ["gpu-worker", "cpu-worker"]',
            "pyproject.toml: [tool.lockstep.solve-groups] cuda lists tier 'cpu-worker', which "
            "solve group cpu already has; a tier belongs to one group",
        ),
        ("cuda = []", "pyproject.toml: [tool.lockstep.solve-groups] cuda is an empty group"),
        (
            'cuda = ["gpu-wroker"]',
            "pyproject.toml: [tool.lockstep.solve-groups] cuda item 1 names tier 'gpu-wroker', "
            "which has no requirements/gpu-wroker.in; did you mean gpu-worker?",
        ),
        ('default = ["dev"]', "[tool.lockstep.solve-groups] default is reserved"),
        ('cuda = "gpu-worker"', "[tool.lockstep.solve-groups] cuda must be a list of tier names"),
    ],
)
def test_the_groups_table_is_validated(project: Path, table: str, message: str) -> None:
    (project / "pyproject.toml").write_text(f"[tool.lockstep.solve-groups]\n{table}\n")
    with pytest.raises(ToolingError) as raised:
        load(project)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_groups_that_include_each_others_tiers_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "requirements"
    folder.mkdir()
    for name, text in {"p": "", "q": "-r p.in\n", "r": "-r q.in\n"}.items():
        (folder / f"{name}.in").write_text(text)
    with pytest.raises(TierError) as raised:
        solve_groups(read_tiers(folder), {"x": ["p", "r"], "y": ["q"]})
    assert str(raised.value) == (
        "pyproject.toml: [tool.lockstep.solve-groups] x and y each include a tier of the other "
        "(through -r lines): put those tiers in one group"
    )


def edit(project: Path, tier: str, line: str) -> None:
    path = project / "requirements" / f"{tier}.in"
    path.write_text(path.read_text() + line + "\n")


def moved_structlog() -> dict[str, str]:
    return {
        group: body.replace("structlog==24.1.0", "structlog==25.1.0")
        for group, body in BODIES.items()
    }


def test_a_group_need_not_wait_when_the_shared_inputs_did_not_change(project: Path) -> None:
    lock.lock(load(project), run=GroupUv())
    edit(project, "dev", "pytest>=8")
    edit(project, "gpu-worker", "accel>=1")
    together = threading.Barrier(2, timeout=10)

    def overlap(group: str, argv: Sequence[str], cwd: Path) -> None:
        together.wait()  # default and cuda resolve at the same time

    uv = GroupUv(during=overlap)
    lock.lock(load(project), run=uv)
    assert sorted((group, shared) for group, _, shared in uv.calls) == [
        ("cuda", "structlog==24.1.0\n"),
        ("default", ""),
    ]
    assert lock.check(load(project)) == []


def test_a_group_that_guessed_wrong_resolves_again(project: Path) -> None:
    lock.lock(load(project), run=GroupUv())
    edit(project, "dev", "structlog>=25")
    edit(project, "gpu-worker", "accel>=1")

    def old_pin_impossible(group: str, argv: Sequence[str], cwd: Path) -> str | None:
        shared = cwd / "shared-pins.txt"
        if group == "cuda" and "structlog==24.1.0" in shared.read_text():
            return "error: No solution found\n  cause: structlog==24.1.0 is not available\n"
        return None

    uv = GroupUv(moved_structlog(), during=old_pin_impossible)
    lock.lock(load(project), run=uv)
    assert [shared for group, _, shared in uv.calls if group == "cuda"] == [
        "structlog==24.1.0\n",  # the guess, refused by uv: not an error
        "structlog==25.1.0\n",
    ]
    assert [shared for group, _, shared in uv.calls if group == "cpu"] == ["structlog==25.1.0\n"]
    assert "structlog==25.1.0" in locks(project)["gpu-worker.txt"]
    assert lock.check(load(project)) == []


@pytest.mark.parametrize(
    ("change", "argv"),
    [("base", []), (None, ["--upgrade"])],
    ids=["shared tier edited", "upgrade everything"],
)
def test_no_old_pin_is_guessed_when_the_shared_pins_are_meant_to_move(
    project: Path, change: str | None, argv: list[str]
) -> None:
    lock.lock(load(project), run=GroupUv())
    if change:
        edit(project, change, "structlog>=24")
    uv = GroupUv()
    lock.main(load(project), argv, log=lambda line: None, run=uv)
    assert sorted((group, shared) for group, _, shared in uv.calls) == [
        ("cpu", ""),
        ("cuda", ""),
        ("default", ""),
    ]
    assert lock.check(load(project)) == []
