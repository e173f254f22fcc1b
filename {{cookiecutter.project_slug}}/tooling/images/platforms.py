"""The platforms a tier's image is built for: --platform, else [tool.lockstep] platforms,
else this machine's.

Each platform's image of a tier is <project>:<tier>-<os>-<arch> when several are built
(one build per platform, the layered chain kept per platform), and a manifest list
<project>:<tier>-index holds them all, which `invoke publish` pushes as one image index.
A single platform keeps the plain <project>:<tier>. A platform this machine's CPU
cannot run needs qemu registered with binfmt_misc, checked before anything is built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from tooling import ToolingError
from tooling.project import Project

PLATFORM = re.compile(r"(?P<os>[a-z0-9]+)/(?P<arch>[a-z0-9_]+)(?:/(?P<variant>[a-z0-9]+))?")
# uname's machine -> the architecture images name; and back, as qemu names its emulators.
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
                 "s390x": "s390x", "riscv64": "riscv64"}  # fmt: skip
MACHINES = {arch: machine for machine, arch in ARCHITECTURES.items()}
BINFMT = Path("/proc/sys/fs/binfmt_misc")
INDEX_SUFFIX = "-index"


class PlatformError(ToolingError):
    pass


def host_platform(machine: str | None = None) -> str:
    """This machine's platform as images name it, e.g. linux/amd64."""
    found = machine or os.uname().machine
    return f"linux/{ARCHITECTURES.get(found, found)}"


def parse_platforms(text: str, where: str = "--platform") -> list[str]:
    """linux/amd64,linux/arm64 -> each platform once, in the order given."""
    named = [part.strip() for part in text.split(",") if part.strip()]
    if not named:
        raise PlatformError(f"{where} is empty: name platforms like linux/amd64,linux/arm64")
    for platform in named:
        if not PLATFORM.fullmatch(platform):
            raise PlatformError(
                f"{where}: {platform!r} is not a platform; write it like linux/amd64 or linux/arm64"
            )
    return list(dict.fromkeys(named))


def chosen_platforms(project: Project, option: str | None, host: str | None = None) -> list[str]:
    """--platform wins, then [tool.lockstep] platforms, then this machine's platform."""
    if option:
        return parse_platforms(option)
    configured: Sequence[str] = project.settings.get("platforms") or []
    return list(dict.fromkeys(configured)) or [host or host_platform()]


def architecture(platform: str) -> str:
    return platform.split("/")[1]


def suffix(platform: str) -> str:
    """linux/arm64 -> linux-arm64, for image tags."""
    return platform.replace("/", "-")


def platform_image(image: str, platform: str) -> str:
    """<project>:<tier> -> <project>:<tier>-linux-arm64."""
    return f"{image}-{suffix(platform)}"


def index_image(image: str) -> str:
    """The local manifest list of every platform's image of <project>:<tier>."""
    return f"{image}{INDEX_SUFFIX}"


def tagged(image: str, platforms: Sequence[str]) -> dict[str, str]:
    """platform -> the local image of it: one platform keeps the plain name."""
    if len(platforms) == 1:
        return {platforms[0]: image}
    return {platform: platform_image(image, platform) for platform in platforms}


def tagged_platforms(image: str, published: Mapping[str, str]) -> dict[str, str]:
    """tagged() for the platforms of an index (platform -> image ID), "" for a single image."""
    if list(published) == [""]:
        return {"": image}
    return tagged(image, list(published))


def emulation_problem(platform: str, host: str | None = None, binfmt: Path = BINFMT) -> str | None:
    """Why this machine cannot run `platform`'s programs (None: natively, or under qemu)."""
    host = host or host_platform()
    wanted = architecture(platform)
    if wanted == architecture(host):
        return None
    machine = MACHINES.get(wanted, wanted)
    registered = binfmt / f"qemu-{machine}"
    try:
        enabled = registered.read_text(encoding="utf-8").splitlines()[:1] == ["enabled"]
    except OSError:
        enabled = False
    if enabled:
        return None
    return (
        f"building {platform} on this {host} machine runs its programs under qemu, and "
        f"qemu-{machine} is not registered with binfmt_misc: run `apt-get install "
        f"qemu-user-static binfmt-support` as root (or `update-binfmts --enable qemu-{machine}`)"
    )


def check_emulation(platforms: Sequence[str], host: str | None = None) -> None:
    for platform in platforms:
        problem = emulation_problem(platform, host)
        if problem:
            raise PlatformError(problem)


def platform_of(config: Mapping[str, object]) -> str:
    """os/arch[/variant] of an image config (or a manifest list entry's platform)."""
    parts = [str(config.get(key) or "") for key in ("os", "architecture", "variant")]
    return "/".join(part for part in parts if part)
