"""An image as its registry serves it: fetched with skopeo into a folder, read, never run.

`invoke verify` checks a pulled image without starting it, so nothing in the
image under test takes part in its own check (a changed interpreter cannot
report clean hashes), and no engine's store is touched. skopeo checks every
blob against the digest the manifest names and the manifest against the
reference's digest; the layers are then read in order, as an engine would
stack them (whiteouts and opaque folders included), but only the
environment's folder is kept: each file's sha256, and the text of the small
files that describe distributions.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import json
import lzma
import posixpath
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from tooling import ToolingError
from tooling.engines import ImageFacts, healthcheck_test, registry_failure
from tooling.inventory import check_record, unlisted_among

KEPT_TEXT = {"METADATA", "RECORD", "pyvenv.cfg"}  # read whole; every other file is hashed only
MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "ppc64le": "ppc64le"}
PYVENV_VERSION = re.compile(r"^(?:version_info|version)\s*=\s*(\S+)\s*$", re.MULTILINE)

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


class PulledImageError(ToolingError):
    pass


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
    manifest_bytes = (folder / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    if "layers" not in manifest:
        raise PulledImageError(f"{reference} is a {manifest.get('mediaType')}, not one image")
    config_digest = str(manifest["config"]["digest"])
    return PulledImage(
        digest=f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}",
        config=json.loads((folder / config_digest.split(":", 1)[1]).read_bytes()),
        image_id=config_digest,
        layers=[folder / str(layer["digest"]).split(":", 1)[1] for layer in manifest["layers"]],
        size=sum(int(layer.get("size", 0)) for layer in manifest["layers"]),
    )


@dataclass
class Entry:
    sha256: str | None  # hex, for a regular file
    text: str | None = None  # for the files in KEPT_TEXT
    link: str | None = None  # a symbolic link's target


@dataclass
class Tree:
    """The files under one folder of the stacked layers."""

    root: str  # "opt/venv", no slashes at either end
    entries: dict[str, Entry] = field(default_factory=dict)

    def inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + "/")

    def remove(self, path: str) -> None:
        """Remove `path` and everything under it (a whiteout, or a file replacing a folder)."""
        prefix = path.rstrip("/") + "/" if path else ""
        for name in [n for n in self.entries if n == path or n.startswith(prefix)]:
            del self.entries[name]

    def apply(self, layer: tarfile.TarFile) -> None:
        """One layer: its whiteouts hide what lower layers had, then its files are added."""
        added: dict[str, Entry] = {}
        hidden: list[str] = []
        for member in layer:
            path = posixpath.normpath(member.name.lstrip("/")).removeprefix("./")
            folder, name = posixpath.split(path)
            if name == ".wh..wh..opq":
                hidden.append(folder)
            elif name.startswith(".wh."):
                hidden.append(posixpath.join(folder, name[4:]))
            elif self.inside(path) or self.root.startswith(path + "/"):
                if member.isdir():
                    continue
                if member.islnk():
                    target = posixpath.normpath(member.linkname.lstrip("/")).removeprefix("./")
                    source = added.get(target) or self.entries.get(target)
                    added[path] = source or Entry(None)
                elif member.issym():
                    added[path] = Entry(None, link=member.linkname)
                elif member.isfile():
                    added[path] = read_entry(layer, member, name)
                else:
                    added[path] = Entry(None)
        for path in hidden:
            if path in ("", ".") or self.inside(path) or self.root.startswith(path + "/"):
                self.remove("" if path in ("", ".") else path)
        for path, entry in added.items():
            self.remove(path)
            self.entries[path] = entry


def read_entry(layer: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> Entry:
    stream = layer.extractfile(member)
    data = stream.read() if stream else b""
    text = data.decode("utf-8", errors="replace") if name in KEPT_TEXT else None
    return Entry(hashlib.sha256(data).hexdigest(), text)


# The first bytes by which engines (containers/image, docker) know a layer's compression.
MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"\xfd7zXZ\x00": "xz", b"BZh": "bzip2"}


def compression(path: Path) -> str:
    """The layer's compression: gzip, zstd, xz, bzip2, or "" for a plain tar."""
    with path.open("rb") as stream:
        start = stream.read(6)
    return next((name for magic, name in MAGIC.items() if start.startswith(magic)), "")


def open_layer(path: Path, compressed: str) -> tarfile.TarFile:
    if compressed == "zstd":
        raise PulledImageError(
            f"layer {path.name[:12]} is zstd-compressed, which verify cannot read; "
            "publish with gzip layers (the default)"
        )
    if compressed == "gzip":
        return tarfile.open(fileobj=gzip.open(path), mode="r|")
    if compressed == "xz":
        return tarfile.open(fileobj=lzma.open(path), mode="r|")
    if compressed == "bzip2":
        return tarfile.open(fileobj=bz2.open(path), mode="r|")
    return tarfile.open(path, mode="r|")


def stacked(layers: Iterable[Path], root: str) -> Tree:
    tree = Tree(root.strip("/"))
    for path in layers:
        compressed = compression(path)
        try:
            with open_layer(path, compressed) as layer:
                tree.apply(layer)
        except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as error:
            kind = f" ({compressed})" if compressed else ""
            raise PulledImageError(
                f"layer {path.name[:12]}{kind} is not a readable tar: {error}"
            ) from None
    return tree


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


def environment_report(image: PulledImage, prefix: str) -> dict[str, Any]:
    """What tooling/inventory.py reports of a live environment, read from the layers."""
    tree = stacked(image.layers, prefix)
    root = prefix.strip("/")
    config = tree.entries.get(f"{root}/pyvenv.cfg")
    found = PYVENV_VERSION.search(config.text or "") if config else None
    if found is None:
        raise PulledImageError(f"the image has no environment at {prefix} (no pyvenv.cfg)")
    python = found.group(1)
    site = f"{root}/lib/python{'.'.join(python.split('.')[:2])}/site-packages"

    def locate(relative: str) -> str:
        return posixpath.normpath(posixpath.join(site, relative))

    def file_hash(path: str, algorithm: str) -> str | None:
        file = tree.entries.get(path)
        if file is None or file.sha256 is None:
            return None
        # Installers write sha256; any other algorithm cannot be matched and counts as changed.
        return record_digest(file.sha256) if algorithm == "sha256" else ""

    distributions, problems, listed = [], [], set()
    for path, entry in sorted(tree.entries.items()):
        folder, name = posixpath.split(path)
        if name != "METADATA" or posixpath.dirname(folder) != site:
            continue
        if not folder.endswith(".dist-info"):
            continue
        headers = HeaderParser().parsestr(entry.text or "")
        distribution = str(headers.get("Name", ""))
        distributions.append({"name": distribution, "version": str(headers.get("Version", ""))})
        record = tree.entries.get(f"{folder}/RECORD")
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
            [path for path in tree.entries if path.startswith(site + "/")], site, listed
        ),
    }
