"""Container helpers for the template's slow tests: buildah, podman and docker, set up here.

No registry is reachable, so the base image is bootstrapped from Debian
packages with mmdebstrap (its python3 stands in for ``python:X.Y-slim``),
committed with buildah, and moved into podman's and docker's stores. Each
engine is configured by these helpers alone, so a fresh machine with the
packages installed needs nothing else:

- buildah: chroot isolation (crun refuses hybrid cgroup hosts) and the storage
  driver as a flag (buildah 1.28 reads it from nowhere else);
- podman: a containers.conf with runc, ulimits root can grant without
  CAP_SYS_RESOURCE and a subnet of its own, and a storage root of its own, so
  nothing it builds comes from buildah's cache;
- docker: the daemon that answers, else a dockerd started here (with a data
  root of its own, stopped and removed at the end of the session), and a
  client that can build with BuildKit (Debian's 20.10 has it built in).

Every image a test run builds lives in that run's own stores (`run_dir`), never
in the machine's: `remove_run_stores` deletes them at the end, and a run that
was killed is swept by the next one. Only the base images (`BASE_STORE`) and
their archives are kept between runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# The Debian release whose python3 has the given minor version.
DEBIAN_SUITES = {"3.11": "bookworm", "3.13": "trixie"}
BASE_REPOSITORY = "localhost/lockstep-test-base"
ENGINE_NAMES = ("buildah", "podman", "docker")
CACHE = Path(os.environ.get("LOCKSTEP_TEST_CACHE", "/var/tmp/lockstep-test"))
BASE_STORE = CACHE / "base-store"  # the base images only, kept between runs
RUNS = CACHE / "runs"  # one folder per test run, named by its process ID
CACHE_MOUNTS = CACHE / "cache-mounts"  # the private stores' RUN cache mounts, kept
# Leave out what no test needs, so vfs (which copies whole layers) stays fast.
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DPKG_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
)
PODMAN_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
default_subnet = "10.89.0.0/16"

[engine]
runtime = "runc"
"""
# Variables that point buildah or podman at a store or configuration; each engine's
# environment sets its own.
_STORE_VARIABLES = ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "DOCKER_HOST")


def run_quiet(
    argv: Sequence[str], env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), env=dict(env or os.environ), capture_output=True, text=True, check=check
    )


def storage_driver() -> str:
    return os.environ.get("STORAGE_DRIVER", "vfs")


def storage_conf(directory: Path) -> Path:
    """A storage.conf for a containers-storage root in `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "storage.conf"
    text = (
        f'[storage]\ndriver = "{storage_driver()}"\n'
        f'graphroot = "{directory / "store"}"\nrunroot = "{directory / "run"}"\n'
    )
    if not conf.is_file() or conf.read_text() != text:  # buildah_env() asks on every call
        conf.write_text(text)
    return conf


def store_spec(directory: Path) -> str:
    """The `containers-storage:[...]` store of `storage_conf(directory)`."""
    return f"{storage_driver()}@{directory / 'store'}+{directory / 'run'}"


@functools.cache
def run_dir() -> Path:
    """This test run's stores (buildah's, podman's, dockerd's) and temporary files, swept at its
    end or the next run's start."""
    RUNS.mkdir(parents=True, exist_ok=True)
    for folder in RUNS.iterdir():
        if folder.name.isdigit() and not _alive(int(folder.name)):
            _remove_stores(folder)
    mine = RUNS / str(os.getpid())
    _remove_stores(mine)  # a dead run with the same process ID
    mine.mkdir()
    return mine


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_run_stores() -> None:
    """Delete every container and image this run made (if it made a store at all)."""
    if run_dir.cache_info().currsize:
        _remove_stores(run_dir())
        run_dir.cache_clear()


def _remove_stores(folder: Path) -> None:
    if not folder.exists():
        return
    _stop_leftover_dockerd(folder / "docker" / "docker.pid")
    for conf in folder.glob("*/storage.conf"):
        env = {**_plain_env(), "CONTAINERS_STORAGE_CONF": str(conf)}
        if (conf.parent / "containers.conf").exists():
            env["CONTAINERS_CONF"] = str(conf.parent / "containers.conf")
            run_quiet(["podman", "rm", "--all", "--force"], env, check=False)
        for args in (["rm", "--all"], ["rmi", "--all", "--force"]):
            run_quiet(["buildah", "--storage-driver", storage_driver(), *args], env, check=False)
    unmount_inside(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _stop_leftover_dockerd(pidfile: Path) -> None:
    """The dockerd of a killed run (started in a session of its own, so it outlived the run)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)


def unmount_inside(folder: Path) -> None:
    with open("/proc/mounts") as mounts:
        inside = [line.split()[1] for line in mounts if line.split()[1].startswith(f"{folder}/")]
    for mount in sorted(inside, reverse=True):
        subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)


def _plain_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _STORE_VARIABLES}
    env["STORAGE_DRIVER"] = storage_driver()
    env["BUILDAH_ISOLATION"] = os.environ.get("BUILDAH_ISOLATION", "chroot")
    return env


def buildah_env() -> dict[str, str]:
    """buildah's environment: chroot isolation, the storage driver and this run's own store.

    vfs and chroot work unprivileged and without kernel overlay support; a
    caller's own STORAGE_DRIVER (overlay is much faster) or BUILDAH_ISOLATION wins.
    """
    return {**_plain_env(), "CONTAINERS_STORAGE_CONF": str(storage_conf(run_dir() / "buildah"))}


def buildah(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = buildah_env()
    return run_quiet(["buildah", "--storage-driver", env["STORAGE_DRIVER"], *args], env, check)


def base_store_buildah(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**_plain_env(), "CONTAINERS_STORAGE_CONF": str(storage_conf(BASE_STORE))}
    return run_quiet(["buildah", "--storage-driver", env["STORAGE_DRIVER"], *args], env, check)


def host_arch() -> str:
    """The host's architecture as images name it (amd64, arm64)."""
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def base_image_name(python_version: str, arch: str | None = None) -> str:
    """The host's base image keeps its first name; another architecture's carries it."""
    suffix = "" if arch in (None, host_arch()) else f"-{arch}"
    return f"{BASE_REPOSITORY}:{python_version}-pip{suffix}"


@contextlib.contextmanager
def exclusive(name: str) -> Iterator[None]:
    """One process at a time (pytest-xdist workers, two test runs)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_base_image(python_version: str = "3.11", arch: str | None = None) -> str:
    """A local stand-in for ``python:<version>-slim`` in this run's buildah store.

    Built once into the kept base store, copied from there into each run's store.
    `arch` (amd64, arm64) picks another architecture's (about 4 minutes to bootstrap
    the first time; its programs run under qemu).
    """
    image = base_image_name(python_version, arch)
    if buildah("inspect", "--type", "image", image, check=False).returncode == 0:
        return image
    build_base_image(python_version, arch)
    base_store_buildah(
        "push", image, f"containers-storage:[{store_spec(run_dir() / 'buildah')}]{image}"
    )
    return image


def base_index_name(python_version: str) -> str:
    return f"{BASE_REPOSITORY}:{python_version}-index"


def ensure_base_index(
    python_version: str = "3.11", arches: Sequence[str] = ("amd64", "arm64")
) -> str:
    """A manifest list of the base image for each of `arches`, in this run's buildah store:
    a local stand-in for a multi-platform ``python:<version>-slim``."""
    index = base_index_name(python_version)
    if buildah("manifest", "inspect", index, check=False).returncode == 0:
        return index
    images = [ensure_base_image(python_version, arch) for arch in arches]
    buildah("manifest", "create", index)
    for image in images:
        buildah("manifest", "add", index, image)
    return index


def emulation_missing(arch: str) -> str | None:
    """Why this machine cannot run `arch`'s programs (None: it can, natively or under qemu)."""
    if arch == host_arch():
        return None
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(arch, arch)
    registered = Path(f"/proc/sys/fs/binfmt_misc/qemu-{machine}")
    if registered.is_file() and registered.read_text().startswith("enabled"):
        return None
    return (
        f"qemu-{machine} is not registered with binfmt_misc (`.ci/run` installs "
        "qemu-user-static and binfmt-support as root and registers it)"
    )


def build_base_image(python_version: str, arch: str | None = None) -> None:
    """Bootstrap the base image into the kept base store, unless it is there."""
    image = base_image_name(python_version, arch)
    arch = arch or host_arch()
    with exclusive("base"):
        if base_store_buildah("inspect", "--type", "image", image, check=False).returncode == 0:
            return
        with tempfile.TemporaryDirectory() as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            run_quiet(
                [
                    "mmdebstrap",
                    f"--arch={arch}",
                    "--variant=minbase",
                    # pip too, as python:X.Y-slim has it: the image build uses it for uv.
                    "--include=python3,python3-venv,python3-pip,ca-certificates",
                    *(f"--dpkgopt=path-exclude={pattern}" for pattern in _DPKG_EXCLUDES),
                    DEBIAN_SUITES[python_version],
                    str(rootfs),
                ]
            )
            container = base_store_buildah("from", "scratch").stdout.strip()
            try:
                base_store_buildah("add", container, str(rootfs), "/")
                # What python:X.Y-slim sets too; the Dockerfile extends PATH.
                base_store_buildah(
                    "config",
                    "--cmd",
                    "python3",
                    "--env",
                    f"PATH={_PATH}",
                    "--env",
                    "LANG=C.UTF-8",
                    "--os",
                    "linux",
                    "--arch",
                    arch,
                    container,
                )
                base_store_buildah("commit", "--rm", container, image)
            except BaseException:
                base_store_buildah("rm", container, check=False)
                raise


def base_archive(python_version: str = "3.11") -> Path:
    """The base image as a docker-archive tar (cached), for `docker load` / `podman load`."""
    image = base_image_name(python_version)
    build_base_image(python_version)
    image_id = base_store_buildah(
        "inspect", "--type", "image", "--format", "{{.FromImageID}}", image
    )
    archive = CACHE / f"base-{python_version}-{image_id.stdout.strip()[:12]}.tar"
    with exclusive("archive"):
        if not archive.is_file():
            for stale in CACHE.glob(f"base-{python_version}-*.tar"):
                stale.unlink()  # an earlier base image's
            partial = archive.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            base_store_buildah("push", image, f"docker-archive:{partial}:{image}")
            partial.replace(archive)
    return archive


class Engine:
    """The test's own view of one engine: its CLI, its environment, and what tests look at."""

    name = ""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)  # for `invoke build`, `nox -s smoke-test`, ...

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_quiet([self.name, *args], self.env, check)

    def has_image(self, image: str) -> bool:
        return self.cli("image", "inspect", image, check=False).returncode == 0

    def ensure_base(self, python_version: str = "3.11") -> str:
        image = base_image_name(python_version)
        if not self.has_image(image):
            self.cli("load", "--input", str(base_archive(python_version)))
        return image

    def inspect(self, image: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.cli("image", "inspect", image).stdout)[0]
        config = data.get("Config") or {}
        return {
            "id": str(data["Id"]).removeprefix("sha256:"),
            "user": config.get("User", ""),
            "entrypoint": config.get("Entrypoint"),
            "env": config.get("Env") or [],
            "healthcheck": data.get("Healthcheck") or config.get("Healthcheck"),
            "history": self.history(image),
            "size": int(data["Size"]),
        }

    def history(self, image: str) -> list[str]:
        shown = self.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
        return shown.stdout.splitlines()

    def run_in_image(
        self, image: str, argv: Sequence[str], *, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in a throwaway container (not through the entrypoint); never raises."""
        options = ["--user", user] if user else []
        return self.cli(
            "run", "--rm", "--network", "none", *options, "--entrypoint", argv[0], image,
            *argv[1:], check=False,
        )  # fmt: skip

    def build(
        self,
        context: Path,
        tag: str,
        *,
        build_args: Mapping[str, str],
        secrets: Mapping[str, str],
        host_network: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """A plain build of the Dockerfile, as a user would type it; never raises."""
        argv = [*self.build_command(), "--tag", tag]
        argv += [f"--build-arg={name}={value}" for name, value in build_args.items()]
        argv += [f"--secret=id={name},src={path}" for name, path in secrets.items()]
        argv += ["--network", "host"] if host_network else []
        return run_quiet([*argv, str(context)], self.env, check=False)

    def build_command(self) -> list[str]:
        return [self.name, "build", "--format", "docker"]

    def blobs(self, image: str, directory: Path) -> list[bytes]:
        """The contents of every uncompressed layer and the config of `image`."""
        self.cli("push", image, f"dir:{directory}")
        return [blob.read_bytes() for blob in directory.iterdir()]

    def changed_image(self, image: str, script: str) -> str:
        """Run `script` as root in a container of `image` and commit it under the same tag.

        Returns the original image ID, for `restore`.
        """
        original = self.inspect(image)["id"]
        name = f"lockstep-tamper-{os.getpid()}"
        self.cli(
            "run", "--name", name, "--user", "0", "--entrypoint", "/bin/sh", image, "-c", script
        )
        try:
            self.cli("commit", name, image)
        finally:
            self.cli("rm", "--force", name, check=False)
        return original

    def restore(self, original_id: str, image: str) -> None:
        self.cli("tag", original_id, image)


class Buildah(Engine):
    name = "buildah"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        driver = self.env.get("STORAGE_DRIVER", storage_driver())
        return run_quiet(["buildah", "--storage-driver", driver, *args], self.env, check)

    def has_image(self, image: str) -> bool:
        return self.cli("inspect", "--type", "image", image, check=False).returncode == 0

    def ensure_base(self, python_version: str = "3.11") -> str:
        return ensure_base_image(python_version)

    def inspect(self, image: str) -> dict[str, Any]:
        info = json.loads(self.cli("inspect", "--type", "image", image).stdout)
        docker = info.get("Docker") or {}
        config = docker.get("config") or {}
        layers = json.loads(info["Manifest"])["layers"]
        return {
            "id": info["FromImageID"],
            "user": config.get("User", ""),
            "entrypoint": config.get("Entrypoint"),
            "env": config.get("Env") or [],
            "healthcheck": config.get("Healthcheck"),
            "history": [str(entry) for entry in docker.get("history") or []],
            "size": sum(int(layer["size"]) for layer in layers),
        }

    def layer_digests(self, image: str) -> list[str]:
        manifest = json.loads(
            json.loads(self.cli("inspect", "--type", "image", image).stdout)["Manifest"]
        )
        return [str(layer["digest"]) for layer in manifest["layers"]]

    def run_in_image(
        self, image: str, argv: Sequence[str], *, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """buildah 1.28's chroot `run` now and then passes on no output at all: ask again."""
        container = self.cli("from", "--pull-never", image).stdout.strip()
        try:
            options = ["--user", user] if user else []
            for _ in range(3):
                result = self.cli("run", *options, container, "--", *argv, check=False)
                if result.returncode or result.stdout or result.stderr:
                    break
            return result
        finally:
            self.cli("rm", container, check=False)

    def build_command(self) -> list[str]:
        return [
            "buildah",
            "--storage-driver",
            self.env["STORAGE_DRIVER"],
            "build",
            "--format",
            "docker",
        ]

    def blobs(self, image: str, directory: Path) -> list[bytes]:
        self.cli("push", "--disable-compression", image, f"dir:{directory}")
        return [blob.read_bytes() for blob in directory.iterdir()]

    def changed_image(self, image: str, script: str) -> str:
        original = self.inspect(image)["id"]
        container = self.cli("from", "--pull-never", image).stdout.strip()
        try:
            self.cli("run", "--user", "0", container, "--", "/bin/sh", "-c", script)
            # Docker format, as the build's: an OCI commit would drop the HEALTHCHECK.
            self.cli("commit", "--quiet", "--format", "docker", container, image)
        finally:
            self.cli("rm", container, check=False)
        return original


class Podman(Engine):
    name = "podman"

    def ensure_base(self, python_version: str = "3.11") -> str:
        # Straight from buildah's store into podman's: no tar file in between.
        image = base_image_name(python_version)
        if not self.has_image(image):
            build_base_image(python_version)
            base_store_buildah("push", image, f"containers-storage:[{self.store_spec()}]{image}")
        return image

    def store_spec(self) -> str:
        # Every storage.conf here is written by storage_conf(), beside the store it names.
        return store_spec(Path(self.env["CONTAINERS_STORAGE_CONF"]).parent)


class Docker(Engine):
    name = "docker"

    def build_command(self) -> list[str]:
        return ["docker", "build"]  # BuildKit from DOCKER_BUILDKIT=1 in its environment

    def blobs(self, image: str, directory: Path) -> list[bytes]:
        archive = directory / "image.tar"
        directory.mkdir(parents=True, exist_ok=True)
        self.cli("save", "--output", str(archive), image)
        found = []
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    found.append(tar.extractfile(member).read())  # type: ignore[union-attr]
        return found


# podman 4.3 (conmon) here waits its 20-second "conmon timeout" after every container it
# runs when the folder holding its store and run root is 47 characters or longer (a path
# it builds from them outgrows a limit): every `podman run` then takes 20 s.
PODMAN_ROOT_LIMIT = 46


def podman_env(root: Path) -> dict[str, str]:
    """podman configured for hosts like this one, with a storage root of its own under `root`."""
    if len(str(root)) > PODMAN_ROOT_LIMIT:
        raise RuntimeError(
            f"{root}: a podman store here needs a folder of at most {PODMAN_ROOT_LIMIT} "
            "characters (each run waits 20 s otherwise); set LOCKSTEP_TEST_CACHE shorter"
        )
    storage_conf(root)
    (root / "containers.conf").write_text(PODMAN_CONF)
    env = _plain_env()
    env["BUILDAH_ISOLATION"] = "oci"  # podman builds with its OCI runtime (runc), as users' do
    env["CONTAINERS_CONF"] = str(root / "containers.conf")
    env["CONTAINERS_STORAGE_CONF"] = str(root / "storage.conf")
    return env


# --- docker -----------------------------------------------------------------------------


@functools.cache
def docker_client_that_builds() -> str | None:
    """A docker client with BuildKit: one with buildx, or a 20.x client (BuildKit built in)."""
    candidates = [shutil.which("docker"), "/usr/bin/docker"]
    for client in dict.fromkeys(path for path in candidates if path and Path(path).is_file()):
        if run_quiet([client, "buildx", "version"], check=False).returncode == 0:
            return client
        shown = run_quiet([client, "version", "--format", "{{.Client.Version}}"], check=False)
        version = shown.stdout.strip()
        if version and int(version.split(".")[0]) < 23:
            return client
    return None


def docker_tools_missing() -> list[str]:
    missing = [] if docker_client_that_builds() else ["a docker client with BuildKit"]
    return missing + ([] if shutil.which("dockerd") else ["dockerd"])


class DockerDaemon:
    """The docker daemon the tests use: one that already answers, else one started here."""

    def __init__(self, client: str) -> None:
        self.bin = Path(tempfile.mkdtemp(prefix="lockstep-docker-bin-"))
        (self.bin / "docker").symlink_to(client)
        self.env = {
            **buildah_env(),
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "DOCKER_BUILDKIT": "1",
        }
        if os.environ.get("DOCKER_HOST"):
            self.env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        self.process: subprocess.Popen[bytes] | None = None
        self.run_dir: Path | None = None

    def answers(self) -> bool:
        return run_quiet(["docker", "info"], self.env, check=False).returncode == 0

    def start(self) -> None:
        if self.answers():
            return
        # Its own data root, removed at the end: two test runs at once never share one.
        root = self.run_dir = run_dir() / "docker"
        root.mkdir()
        self.env["DOCKER_HOST"] = f"unix://{root / 'docker.sock'}"
        self.log = root / "dockerd.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    "dockerd",
                    "--data-root", str(root / "data"),
                    "--exec-root", str(root / "exec"),
                    "--pidfile", str(root / "docker.pid"),
                    "--host", self.env["DOCKER_HOST"],
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dockerd did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.bin, ignore_errors=True)
        if self.run_dir is not None:
            unmount_inside(self.run_dir)
            shutil.rmtree(self.run_dir, ignore_errors=True)


# --- a store of its own, for cold builds ------------------------------------------------


class PrivateStore:
    """A containers-storage root of its own (buildah or podman), holding only given images.

    Nothing built before is there to reuse (a cold build), and nothing built in
    it touches the engine's usual store. ``env`` points the engine, and every
    tool that runs it (``invoke build``, the smoke test), at this store. RUN
    cache mounts (uv's download cache) are kept in `CACHE_MOUNTS`, which every
    private store shares: a cold build has no layer cache, but a warm download
    cache, as a user's second build would.
    """

    def __init__(self, *images: str, engine: str = "buildah") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="s", dir=run_dir()))  # short: PODMAN_ROOT_LIMIT
        self.tmp = self.dir / "tmp"
        self.tmp.mkdir()
        CACHE_MOUNTS.mkdir(parents=True, exist_ok=True)
        # buildah and podman keep RUN cache mounts in $TMPDIR/buildah-cache.
        (self.tmp / "buildah-cache").symlink_to(CACHE_MOUNTS, target_is_directory=True)
        self.driver = storage_driver()
        conf = storage_conf(self.dir)
        base_env = podman_env(self.dir) if engine == "podman" else buildah_env()
        self.env = {**base_env, "CONTAINERS_STORAGE_CONF": str(conf), "TMPDIR": str(self.tmp)}
        self.engine = Podman(self.env) if engine == "podman" else Buildah(self.env)
        self.images = images
        self.copy_in()

    def copy_in(self) -> None:
        destination = f"containers-storage:[{store_spec(self.dir)}]"
        for image in self.images:
            if image.startswith(f"{BASE_REPOSITORY}:"):
                version, _, arch = image.split(":")[-1].partition("-pip")
                build_base_image(version, arch.removeprefix("-") or None)
                base_store_buildah("push", image, f"{destination}{image}")
            else:
                buildah("push", image, f"{destination}{image}")

    def buildah(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_quiet(["buildah", "--storage-driver", self.driver, *args], self.env, check)

    def clear(self) -> None:
        """Remove every container and image (the layer cache), then copy the images in again."""
        self.buildah("rm", "--all", check=False)
        self.buildah("rmi", "--all", "--force", check=False)
        self.copy_in()

    def remove(self) -> None:
        self.buildah("rm", "--all", check=False)
        self.buildah("rmi", "--all", "--force", check=False)
        unmount_inside(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PrivateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


# --- a registry on loopback -------------------------------------------------------------


class Registry:
    """Debian's docker-registry (the distribution registry) on a free loopback port.

    Its storage is a temporary folder; ``stop`` (or leaving the ``with`` block)
    ends the process and removes it. Engines speak to a loopback registry
    without TLS.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lockstep-registry-"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        config = self.dir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n"
            f"http:\n  addr: {self.host}\n"
        )
        self.log = self.dir / "registry.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"docker-registry did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
