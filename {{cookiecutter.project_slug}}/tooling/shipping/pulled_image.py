"""An image as its registry serves it: fetched with skopeo into a folder, read, never run.

`invoke verify` checks a pulled image without starting it, so nothing in the
image under test takes part in its own check (a changed interpreter cannot
report clean hashes), and no engine's store is touched. skopeo checks every
blob against the digest the manifest names and the manifest against the
reference's digest; the layers are then read in order, as an engine extracts
them (tooling/shipping/layers.py): each file's sha256, mode and links, the text of
the small files that describe distributions and the base's packages, and the
bytes of the environment's bytecode. The temporary folder goes
however verify ends, SIGTERM and Ctrl-C included.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from types import FrameType
from typing import Any

from tooling import ToolingError
from tooling.engines import ImageFacts, healthcheck_test, registry_failure
from tooling.inventory import check_record, unlisted_among
from tooling.shipping.layers import Filesystem, LayerError, Node, stack

# Read whole (a name, or a path: the base's packages); every other file is hashed only,
# but for the bytes of the environment's bytecode (see tooling/shipping/layers.py).
KEPT_TEXT = {"METADATA", "RECORD", "pyvenv.cfg", "var/lib/dpkg/status"}
MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "ppc64le": "ppc64le"}
BLOB = re.compile(r"sha256:([0-9a-f]{64})")
STOPPING = (signal.SIGTERM, signal.SIGINT)
PYVENV_VERSION = re.compile(r"^(?:version_info|version)\s*=\s*(\S+)\s*$", re.MULTILINE)

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


class PulledImageError(ToolingError):
    pass


class Stopped(PulledImageError):
    """SIGTERM (a cancelled CI job) or Ctrl-C: the temporary folder goes, nothing is verified."""

    def __init__(self, signal_number: int) -> None:
        name = signal.Signals(signal_number).name
        super().__init__(
            f"stopped by {name}: nothing was verified, its temporary files are removed"
        )
        self.exit_code = 128 + signal_number


def run_captured(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


@dataclass
class PulledImage:
    digest: str  # of the manifest, as the registry serves it
    config: dict[str, Any]
    image_id: str  # the config's digest: what `docker images` and `buildah images` show
    layers: list[Path]
    size: int  # compressed, as the manifest lists the layers

    def facts(self) -> ImageFacts:
        config = self.config.get("config") or {}
        return ImageFacts(
            id=self.image_id,
            entrypoint=list(config.get("Entrypoint") or []),
            healthcheck=healthcheck_test(config),
            user=str(config.get("User") or ""),
            env=list(config.get("Env") or []),
            labels=dict(config.get("Labels") or {}),
            size=self.size,
            digest=self.digest,
        )


def need_skopeo() -> None:
    if shutil.which("skopeo") is None:
        raise PulledImageError(
            "invoke verify fetches the image with skopeo, which is not installed: "
            "install it (apt-get install skopeo, dnf install skopeo or brew install skopeo)"
        )


def index_platforms(
    reference: str, tls_verify: bool, run: Runner = run_captured
) -> tuple[str, list[str]]:
    """The manifest's digest and, for an image index, its platforms (os/arch[/variant]).

    Attestation entries (platform unknown/unknown) are no images to run and are left out.
    """
    need_skopeo()
    shown = run(
        [
            "skopeo", "inspect", "--raw", f"--tls-verify={str(tls_verify).lower()}",
            f"docker://{reference}",
        ]
    )  # fmt: skip
    if shown.returncode != 0:
        raise PulledImageError(registry_failure(shown.stderr, "pull", reference, "skopeo"))
    try:
        manifest = json.loads(shown.stdout)
    except ValueError:
        raise PulledImageError(f"{reference}: the registry's manifest is not JSON") from None
    digest = f"sha256:{hashlib.sha256(shown.stdout.encode()).hexdigest()}"
    found = []
    for entry in manifest.get("manifests") or [] if isinstance(manifest, dict) else []:
        platform = entry.get("platform") or {} if isinstance(entry, dict) else {}
        parts = [str(platform.get(key) or "") for key in ("os", "architecture", "variant")]
        if parts[0] and parts[0] != "unknown":
            found.append("/".join(part for part in parts if part))
    return digest, found


def fetch(
    reference: str,
    tls_verify: bool,
    folder: Path,
    run: Runner = run_captured,
    platform: str | None = None,
) -> PulledImage:
    """Copy `reference` from its registry into `folder` (a dir: layout) and read its manifest.

    From an image index, `platform` (os/arch[/variant]) chooses the image.
    """
    need_skopeo()
    chosen = []
    if platform:
        os_name, architecture, *variant = platform.split("/")
        chosen = ["--override-os", os_name, "--override-arch", architecture]
        chosen += ["--override-variant", variant[0]] if variant else []
    copied = run(
        [
            "skopeo", *chosen, "copy", "--quiet", "--preserve-digests",
            f"--src-tls-verify={str(tls_verify).lower()}",
            f"docker://{reference}", f"dir:{folder}",
        ]
    )  # fmt: skip
    if copied.returncode != 0:
        raise PulledImageError(registry_failure(copied.stderr, "pull", reference, "skopeo"))
    try:
        return read_layout(folder, reference)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise PulledImageError(
            f"{reference}: its manifest or config is not one verify can read ({error!r})"
        ) from None


def blob(folder: Path, digest: object) -> Path:
    found = BLOB.fullmatch(str(digest))
    if found is None:
        raise ValueError(f"{digest} is not a sha256 digest")
    return folder / found.group(1)


def read_layout(folder: Path, reference: str) -> PulledImage:
    """The image skopeo wrote into `folder`: manifest, config and the layers' files."""
    manifest_bytes = (folder / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    if "layers" not in manifest:
        raise PulledImageError(f"{reference} is a {manifest.get('mediaType')}, not one image")
    config_digest = str(manifest["config"]["digest"])
    return PulledImage(
        digest=f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}",
        config=json.loads(blob(folder, config_digest).read_bytes()),
        image_id=config_digest,
        layers=[blob(folder, layer["digest"]) for layer in manifest["layers"]],
        size=sum(int(layer.get("size", 0)) for layer in manifest["layers"]),
    )


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # signal handlers live there


def ignore_stops() -> None:
    """From here on SIGTERM and Ctrl-C are ignored (until stopped_by_signals ends)."""
    if in_main_thread():
        for number in STOPPING:
            signal.signal(number, signal.SIG_IGN)


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGTERM and Ctrl-C raise Stopped, so what the block holds is cleaned up on the way out."""
    if not in_main_thread():
        yield
        return

    def stop(number: int, frame: FrameType | None) -> None:
        ignore_stops()  # a second signal must not cut the clean-up short
        raise Stopped(number)

    previous = {number: signal.signal(number, stop) for number in STOPPING}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder that is gone when the block ends, however it ends: an error,
    SIGTERM (a cancelled CI job) or Ctrl-C (each raised as one line) included."""
    with stopped_by_signals():
        try:
            scratch = tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True)
        except OSError as error:
            raise PulledImageError(
                f"verify cannot make a temporary folder: {error.strerror or error} "
                "(TMPDIR chooses where it goes)"
            ) from None
        try:
            yield Path(scratch.name)
        finally:
            ignore_stops()  # the folder goes whole, even when a signal comes now
            scratch.cleanup()


@contextmanager
def fetched(
    reference: str, tls_verify: bool, run: Runner = run_captured, platform: str | None = None
) -> Iterator[PulledImage]:
    """The image, fetched into a temporary folder that is gone when the block ends, however it ends.

    An error, SIGTERM (a cancelled CI job), Ctrl-C and running out of memory
    are each one line; the folder (and the layers in it) is removed first.
    """
    with scratch_folder("verify-") as folder:
        try:
            yield fetch(reference, tls_verify, folder, run, platform)
        except MemoryError:
            raise PulledImageError(
                f"verify ran out of memory checking {reference}: give it more memory"
            ) from None


def marker_environment(config: Mapping[str, Any], python: str) -> dict[str, str]:
    """The PEP 508 marker values of the image's platform and its environment's Python."""
    architecture = str(config.get("architecture") or "amd64")
    system = str(config.get("os") or "linux")
    return {
        "implementation_name": "cpython",
        "implementation_version": python,
        "os_name": "posix",
        "platform_machine": MACHINES.get(architecture, architecture),
        "platform_release": "",
        "platform_system": system.capitalize(),
        "platform_version": "",
        "python_full_version": python,
        "platform_python_implementation": "CPython",
        "python_version": ".".join(python.split(".")[:2]),
        "sys_platform": system,
    }


def record_digest(hex_digest: str) -> str:
    """sha256 as RECORD writes it: urlsafe base64 without padding."""
    return base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).rstrip(b"=").decode()


def stacked(image: PulledImage, prefix: str) -> Filesystem:
    """The image's layers stacked, with the bytes of the bytecode under `prefix` kept."""
    try:
        return stack(image.layers, KEPT_TEXT, prefix)
    except LayerError as error:
        raise PulledImageError(str(error)) from None


def environment_files(tree: Filesystem, prefix: str) -> dict[str, Node]:
    """Everything but folders under `prefix` in the stacked layers, by path without a leading /."""
    try:
        entries = {path: node for path, node in tree.walk(prefix) if node.kind != "dir"}
    except LayerError as error:
        raise PulledImageError(f"the image has no environment at {prefix}: {error}") from None
    for path, node in entries.items():
        if posixpath.basename(path) in KEPT_TEXT and node.kind == "file" and node.text is None:
            raise PulledImageError(
                f"/{path} is {node.size} bytes, more than any installer writes: "
                "the image cannot be verified"
            )
    return entries


def environment_report(
    image: PulledImage, prefix: str, tree: Filesystem | None = None
) -> dict[str, Any]:
    """What tooling/inventory.py reports of a live environment, read from the layers
    (`tree`: the image's layers, already stacked)."""
    entries = environment_files(tree or stacked(image, prefix), prefix)
    root = prefix.strip("/")
    config = entries.get(f"{root}/pyvenv.cfg")
    found = PYVENV_VERSION.search(config.text or "") if config else None
    if found is None:
        raise PulledImageError(f"the image has no environment at {prefix} (no pyvenv.cfg)")
    python = found.group(1)
    site = f"{root}/lib/python{'.'.join(python.split('.')[:2])}/site-packages"

    def locate(relative: str) -> str:
        return posixpath.normpath(posixpath.join(site, relative))

    def file_hash(path: str, algorithm: str) -> str | None:
        file = entries.get(path)
        if file is None or file.kind != "file" or file.sha256 is None:
            return None
        # Installers write sha256; any other algorithm cannot be matched and counts as changed.
        return record_digest(file.sha256) if algorithm == "sha256" else ""

    distributions, problems, listed = [], [], set()
    for path, entry in sorted(entries.items()):
        folder, name = posixpath.split(path)
        if name != "METADATA" or posixpath.dirname(folder) != site:
            continue
        if not folder.endswith(".dist-info"):
            continue
        headers = HeaderParser().parsestr(entry.text or "")
        distribution = str(headers.get("Name", ""))
        distributions.append({"name": distribution, "version": str(headers.get("Version", ""))})
        record = entries.get(f"{folder}/RECORD")
        text = record.text if record is not None else None
        found_problems, files = check_record(distribution, text, locate, file_hash)
        problems += found_problems
        listed |= files
    return {
        "python": python,
        "prefix": prefix,
        "markers": marker_environment(image.config, python),
        "distributions": sorted(distributions, key=lambda d: (d["name"].lower(), d["version"])),
        "record_problems": problems,
        "unlisted": unlisted_among(
            [path for path in entries if path.startswith(site + "/")], site, listed
        ),
    }
