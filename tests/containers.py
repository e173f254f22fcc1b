"""Container helpers for the template's slow tests.

Everything goes through buildah, which needs no daemon: rootful, with the vfs
storage driver and chroot isolation so it also works inside an unprivileged
CI container. No registry is needed either: the base image is bootstrapped
from Debian packages, whose python3 stands in for the official
``python:X.Y-slim`` image.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The Debian release whose python3 has the given minor version.
DEBIAN_SUITES = {"3.11": "bookworm", "3.13": "trixie"}
BASE_REPOSITORY = "localhost/lockstep-test-base"
# Leave out what no test needs, so vfs (which copies whole layers) stays fast.
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DPKG_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
)


def buildah_env() -> dict[str, str]:
    """The environment buildah needs on a machine without a container engine.

    vfs and chroot work unprivileged and without kernel overlay support; a
    caller's own STORAGE_DRIVER (overlay is much faster) or BUILDAH_ISOLATION wins.
    """
    return {
        **os.environ,
        "STORAGE_DRIVER": os.environ.get("STORAGE_DRIVER", "vfs"),
        "BUILDAH_ISOLATION": os.environ.get("BUILDAH_ISOLATION", "chroot"),
    }


def buildah(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = buildah_env()
    # Older buildah (Debian 12 ships 1.28) ignores STORAGE_DRIVER: say it as a flag too.
    return subprocess.run(
        ["buildah", "--storage-driver", env["STORAGE_DRIVER"], *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


def image_exists(image: str) -> bool:
    return buildah("inspect", "--type", "image", image, check=False).returncode == 0


def base_image_name(python_version: str) -> str:
    return f"{BASE_REPOSITORY}:{python_version}-pip"


def ensure_base_image(python_version: str = "3.11") -> str:
    """Build (once) a local stand-in for ``python:<version>-slim`` and return its name.

    Safe to call from several pytest-xdist workers: the first builds, the others wait.
    """
    image = base_image_name(python_version)
    suite = DEBIAN_SUITES[python_version]
    lock_path = Path(tempfile.gettempdir()) / "lockstep-test-base.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image_exists(image):
            return image
        with tempfile.TemporaryDirectory() as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            subprocess.run(
                [
                    "mmdebstrap",
                    "--variant=minbase",
                    # pip too, as python:X.Y-slim has it: the image build uses it for uv.
                    "--include=python3,python3-venv,python3-pip,ca-certificates",
                    *(f"--dpkgopt=path-exclude={pattern}" for pattern in _DPKG_EXCLUDES),
                    suite,
                    str(rootfs),
                ],
                check=True,
                capture_output=True,
            )
            container = buildah("from", "scratch").stdout.strip()
            try:
                buildah("add", container, str(rootfs), "/")
                # What python:X.Y-slim sets too; the Dockerfile extends PATH.
                buildah(
                    "config",
                    "--cmd",
                    "python3",
                    "--env",
                    f"PATH={_PATH}",
                    "--env",
                    "LANG=C.UTF-8",
                    container,
                )
                buildah("commit", "--rm", container, image)
            except BaseException:
                buildah("rm", container, check=False)
                raise
    return image


def build_image(
    context: Path,
    tag: str,
    *,
    build_args: Mapping[str, str] = {},
    secrets: Mapping[str, str] = {},
    target: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``buildah build`` in Docker format (OCI images drop HEALTHCHECK)."""
    argv = ["build", "--format", "docker", "--layers", "--tag", tag]
    argv += [f"--build-arg={name}={value}" for name, value in build_args.items()]
    argv += [f"--secret=id={name},src={path}" for name, path in secrets.items()]
    if target:
        argv += ["--target", target]
    return buildah(*argv, str(context), check=check)


def run_in_image(
    image: str, argv: Sequence[str], *, entrypoint: bool = False, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run argv in a throwaway container; ``entrypoint=True`` prefixes the image's ENTRYPOINT.

    The image's USER applies unless ``user`` overrides it. Never raises on a
    non-zero exit: the caller asserts on the result.
    """
    if entrypoint:
        argv = [*(image_config(image)["entrypoint"] or []), *argv]
    container = buildah("from", "--pull-never", image).stdout.strip()
    try:
        options = ["--user", user] if user else []
        return buildah("run", *options, container, "--", *argv, check=False)
    finally:
        buildah("rm", container, check=False)


def _inspect(image: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", image).stdout)
    return result


def image_size(image: str) -> int:
    """Uncompressed size in bytes: the sum of the image's layers, as ``docker images`` counts."""
    manifest = json.loads(_inspect(image)["Manifest"])
    return sum(int(layer["size"]) for layer in manifest["layers"])


def layer_digests(image: str, store: PrivateStore | None = None) -> list[str]:
    """The digests of an image's layers, base first (in `store`, else the default one)."""
    inspected = (store.buildah if store else buildah)("inspect", "--type", "image", image)
    manifest = json.loads(json.loads(inspected.stdout)["Manifest"])
    return [str(layer["digest"]) for layer in manifest["layers"]]


def image_config(image: str) -> dict[str, Any]:
    """The parts of an image's configuration the tests look at."""
    info = _inspect(image)
    docker = info.get("Docker") or {}
    config = docker.get("config") or {}
    return {
        "user": config.get("User", ""),
        "entrypoint": config.get("Entrypoint"),
        "cmd": config.get("Cmd"),
        "env": config.get("Env") or [],
        "healthcheck": config.get("Healthcheck"),
        "history": docker.get("history") or info.get("OCIv1", {}).get("history") or [],
    }


class PrivateStore:
    """A buildah storage root of its own, holding only the images copied into it.

    Nothing built before is there to reuse (a cold build), and nothing built in
    it touches the caller's store. ``env`` points buildah, and every tool that
    runs it (``invoke build``, the smoke test), at this store. RUN cache mounts
    live under its TMPDIR, so they survive ``clear()`` (a warm download cache).
    """

    def __init__(self, *images: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lockstep-store-"))
        self.root, self.runroot = self.dir / "root", self.dir / "run"
        self.tmp = self.dir / "tmp"
        self.tmp.mkdir()
        self.driver = buildah_env()["STORAGE_DRIVER"]
        conf = self.dir / "storage.conf"
        conf.write_text(
            f'[storage]\ndriver = "{self.driver}"\n'
            f'graphroot = "{self.root}"\nrunroot = "{self.runroot}"\n'
        )
        self.env = {
            **buildah_env(),
            "CONTAINERS_STORAGE_CONF": str(conf),
            "TMPDIR": str(self.tmp),
        }
        self.images = images
        self.copy_in()

    def copy_in(self) -> None:
        destination = f"containers-storage:[{self.driver}@{self.root}+{self.runroot}]"
        for image in self.images:
            buildah("push", image, f"{destination}{image}")

    def buildah(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["buildah", "--storage-driver", self.driver, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
        )

    def clear(self) -> None:
        """Remove every container and image (the layer cache), then copy the images in again."""
        self.buildah("rm", "--all", check=False)
        self.buildah("rmi", "--all", "--force", check=False)
        self.copy_in()

    def remove(self) -> None:
        self.buildah("rm", "--all", check=False)
        self.buildah("rmi", "--all", "--force", check=False)
        with open("/proc/mounts") as mounts:  # only what lies inside this store
            inside = [line.split()[1] for line in mounts if str(self.dir) in line.split()[1]]
        for mount in sorted(inside, reverse=True):
            subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PrivateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
