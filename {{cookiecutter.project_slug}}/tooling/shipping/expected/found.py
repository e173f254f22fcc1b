"""What an image's venv holds, as differences() reads it: from a layer reader or a folder."""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from tooling.shipping.expected.wants import FILE, FOLDER, LINK, Found, sha256_hex

KEPT_SUFFIXES = (".pyc", "pyvenv.cfg")  # files whose bytes differences() reads


class LayerNode(Protocol):
    """What a layer reader knows of one path (tooling/shipping/layers.py's Node has these)."""

    kind: str
    mode: int
    uid: int
    sha256: str | None
    link: str | None
    text: str | None


def found_in_layers(
    nodes: Mapping[str, LayerNode], root: str, kept: Mapping[str, bytes]
) -> dict[str, Found]:
    """The venv at `root` ("opt/venv") as differences() reads it, from a layer reader's nodes.

    `kept` holds the bytes the reader kept (by the same paths as `nodes`): those of
    each .pyc whose sha256 is not among pyc_digests(expected); pyvenv.cfg's come
    from its text.
    """
    prefix = root.strip("/") + "/"
    found: dict[str, Found] = {}
    for path, node in nodes.items():
        if not path.startswith(prefix):
            continue
        data = kept.get(path)
        if data is None and node.text is not None and path.endswith("pyvenv.cfg"):
            data = node.text.encode()
        found[path.removeprefix(prefix)] = Found(
            node.kind, node.mode, node.sha256, node.link, data, node.uid
        )
    return found


LIBC_VERSION = re.compile(r"^Version: (?:\d+:)?2\.(\d+)", re.MULTILINE)


def glibc_of(dpkg_status: str) -> tuple[int, int] | None:
    """The glibc of a Debian-based image, from its /var/lib/dpkg/status; None without libc6."""
    for stanza in dpkg_status.split("\n\n"):
        if re.search(r"^Package: libc6$", stanza, re.MULTILINE):
            found = LIBC_VERSION.search(stanza)
            return (2, int(found.group(1))) if found else None
    return None


def found_tree(root: Path, root_uid: int = 0) -> dict[str, Found]:
    """What a folder on disk (an extracted venv) holds, as differences() reads it.

    Files owned by `root_uid` count as root's (a tree extracted without privileges).
    """
    found: dict[str, Found] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        status = path.lstat()
        owner = 0 if status.st_uid == root_uid else status.st_uid
        if stat.S_ISLNK(status.st_mode):
            found[relative] = Found(LINK, 0o777, target=str(path.readlink()), owner=owner)
        elif stat.S_ISDIR(status.st_mode):
            found[relative] = Found(FOLDER, stat.S_IMODE(status.st_mode), owner=owner)
        elif stat.S_ISREG(status.st_mode):
            data = path.read_bytes()
            kept = data if relative.endswith(KEPT_SUFFIXES) else None
            mode = stat.S_IMODE(status.st_mode)
            found[relative] = Found(FILE, mode, sha256_hex(data), data=kept, owner=owner)
        else:
            found[relative] = Found("special", stat.S_IMODE(status.st_mode), owner=owner)
    return found
