"""What `invoke verify` proves of an image's /opt/venv: it is what the lock and the commit make.

tooling/shipping/expected/ derives what the venv must hold; this module gathers its
trusted inputs for one pulled image and compares: the tier's pylock (wheels
fetched by the lock's URL into a cache keyed by sha256, used only when the
hash is the lock's), the platform from the image's config and its glibc from
the base's dpkg status (both only choose among the lock's wheels, each of
them hash-pinned), the venv that `python3 -m venv` makes, the files the
Dockerfile copies beside it, and the project's own wheel built with `uv build`
from the commit verify checks (exported by tooling/shipping/commit.py), as pip
installs it. Nothing is taken from RECORD.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tooling import images, interpreter, lock, project
from tooling.images import layering
from tooling.shipping import expected
from tooling.shipping.expected import Expected, ExpectedError, Installer, Layout
from tooling.shipping.layers import Filesystem, Node

VENV = "/opt/venv"
DPKG_STATUS = "var/lib/dpkg/status"
MUSL_LOADER = re.compile(r"ld-musl-[A-Za-z0-9_]+\.so\.1")
HOMES = ("/usr/local/bin", "/usr/bin")  # where a base image's python3 lives: python:*, Debian's
APP_WHEELS = "/tmp/dist"  # where the Dockerfile's app stage copies the wheel pip installs


def wheel_cache(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lockstep" / "wheels"


def glibc(tree: Filesystem) -> tuple[int, int]:
    """The glibc of the image's base, which chooses among the lock's manylinux wheels.

    A musl base (Alpine) installs musllinux wheels, whose choice verify does not
    compute: it is refused in one line rather than compared with the wrong wheels.
    """
    musl = musl_loader(tree)
    if musl is not None:
        raise ExpectedError(
            f"the image is built on a musl base (/lib/{musl}, as Alpine's): verify computes "
            "the environment of glibc bases only (musllinux wheels are not derived), so "
            "nothing is verified; build on a Debian-based base such as python:*-slim"
        )
    status = file_node(tree, DPKG_STATUS)
    found = expected.glibc_of(status.text or "") if status is not None else None
    if found is None:
        raise ExpectedError(
            f"the image has no libc6 in /{DPKG_STATUS}: verify knows which wheels a "
            "Debian-based image installs (the Dockerfile's python:*-slim and Debian bases)"
        )
    return found


def musl_loader(tree: Filesystem) -> str | None:
    """The name of musl's dynamic loader in /lib (ld-musl-x86_64.so.1), None without one."""
    folder = tree.folder(["lib"], create=False)
    names = sorted(folder.children) if folder is not None else []
    return next((name for name in names if MUSL_LOADER.fullmatch(name)), None)


def file_node(tree: Filesystem, path: str) -> Node | None:
    *parts, name = path.split("/")
    folder = tree.folder(parts, create=False)
    return folder.children.get(name) if folder is not None else None


def interpreter_home(tree: Filesystem, minor: str) -> str:
    """The folder of the base image's python<minor>: what `python3 -m venv` writes as home."""
    for home in HOMES:
        if file_node(tree, f"{home.strip('/')}/python{minor}") is not None:
            return home
    raise ExpectedError(f"the image has no python{minor} in {' or '.join(HOMES)}")


def copied_files(root: Path, installed: Sequence[str], uv_requirements: str) -> Expected:
    """What the Dockerfile copies into /opt/venv/lock beside the environment: the lock of
    each tier the image installed (itself and the tiers it is layered on), and uv's pin."""
    want = {
        "lock": expected.Want(expected.FOLDER, 0o755),
        "lock/uv-requirements.txt": expected.file_want(uv_requirements.encode()),
    }
    for tier in installed:
        try:
            tier_lock = (root / "requirements" / f"{tier}.txt").read_bytes()
        except OSError as error:
            raise ExpectedError(f"cannot read requirements/{tier}.txt: {error.strerror}") from None
        want[f"lock/{tier}.txt"] = expected.file_want(tier_lock)
    return want


def build_app_wheel(the_project: project.Project, folder: Path, epoch: str) -> Path:
    """The project's wheel, built as `nox -s build` builds it from the project at its root
    (verify's: the commit's export), SOURCE_DATE_EPOCH `epoch`."""
    python, problem = interpreter.session_python(the_project)
    if problem:
        raise ExpectedError(problem)
    argv = [lock.find_uv(), "build", "--wheel", "--python", python, "--out-dir", str(folder)]
    built = subprocess.run(
        argv, cwd=the_project.root, capture_output=True, text=True, check=False,
        env={**os.environ, "SOURCE_DATE_EPOCH": epoch},
    )  # fmt: skip
    wheels = sorted(folder.glob("*.whl"))
    if built.returncode != 0 or len(wheels) != 1:
        last = (built.stderr.strip().splitlines() or ["no wheel was written"])[-1]
        raise ExpectedError(
            f"cannot build the project's wheel to compare the image with (uv build: {last}): "
            "run `nox -s build` to see why"
        )
    return wheels[0]


def app_files(the_project: project.Project, python_minor: str, epoch: str) -> Expected:
    """What pip installs from the project's wheel in the Dockerfile's app stage."""
    with tempfile.TemporaryDirectory(prefix="verify-wheel-") as folder:
        wheel = build_app_wheel(the_project, Path(folder), epoch)
        pip = Installer(
            "pip", newline=True, compiled_prefix="/opt/app",
            direct_url=f"file://{APP_WHEELS}/{wheel.name}",
        )  # fmt: skip
        return expected.installed_files(wheel.read_bytes(), wheel.name, Layout(python_minor), pip)


def expected_venv(
    the_project: project.Project,
    tier: str,
    tree: Filesystem,
    markers: Mapping[str, str],
    python_version: str,
    epoch: str,
) -> Expected:
    """Everything /opt/venv must hold, from the lock, the commit and the Dockerfile (all read
    from `the_project`: verify's is the commit's export)."""
    minor = the_project.python_minor
    pylock = the_project.requirements_dir / f"pylock.{tier}.toml"
    want = expected.expected_site_packages(
        pylock, minor, markers, glibc(tree), wheel_cache(), expected.fetch_url
    )
    want |= expected.venv_skeleton(minor, python_version, interpreter_home(tree, minor))
    installed = layering.installed_tiers(the_project, tier)
    want |= copied_files(the_project.root, installed, images.uv_requirements(the_project))
    want |= app_files(the_project, minor, epoch)
    return want


def venv_problems(
    the_project: project.Project,
    tier: str,
    tree: Filesystem,
    markers: Mapping[str, str],
    python_version: str,
    epoch: str,
) -> list[str]:
    """One line per path of the image's /opt/venv that the lock and the commit do not make
    (`epoch`: the SOURCE_DATE_EPOCH the project's wheel is built with)."""
    want = expected_venv(the_project, tier, tree, markers, python_version, epoch)
    nodes = dict(tree.walk(VENV))
    digests = expected.pyc_digests(want)
    kept = {
        path: node.data
        for path, node in nodes.items()
        if node.data is not None and node.sha256 not in digests
    }
    found = expected.found_in_layers(nodes, VENV, kept)
    return expected.differences(want, found, expected.judge_for(python_version))
