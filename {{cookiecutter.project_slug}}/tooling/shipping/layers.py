"""Image layers stacked as a container engine extracts them, into a tree held in memory.

Each layer is read once, as a stream, from start to end: file contents are
hashed in chunks and never held, except the text of the few small files a
caller names, so memory follows the number of files, not their size, and
every step costs time in proportion to the entry it reads. Names are
resolved as engines resolve them when they extract a layer: cleaned against
`/` first (`./x`, `/x`, `../x` and `/../x` are all `/x`), then the folders on
the way followed through the symbolic links already in the tree, `..`
stopping at `/`. A whiteout (`.wh.NAME`) or an opaque folder (`.wh..wh..opq`)
hides what lower layers had; a hard link has its target's contents. Layers
are gzip-, xz- or bzip2-compressed or plain tar; zstd is named. What
engines do differently (a whiteout of something its own layer made, say),
and what they refuse, is refused here too, in one line.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import posixpath
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tooling import ToolingError

CHUNK = 1 << 20
TEXT_LIMIT = 16 << 20  # no RECORD, METADATA or pyvenv.cfg an installer writes comes near this
# Bytecode whose bytes are kept (see Filesystem): the largest .pyc of common packages is a few
# hundred KiB. Kept bytes cost at most (number of .pyc files) x BYTECODE_LIMIT of memory; a
# larger .pyc is hashed only, and then cannot be proven (verify names it).
BYTECODE_LIMIT = 4 << 20
MAX_LINKS = 40  # symbolic links followed in one name before Linux gives up (ELOOP)
PATH_MAX = 4096  # bytes in a name or a link's target, with its end, that Linux takes
# Names an engine writes into a layer go through no symbolic link; hand-made ones might,
# but not this often: a layer whose links would cost more is refused, not read slowly.
LINK_STEPS = 1_000_000
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
# Compressions engines recognise by a layer's first bytes (plain tar otherwise); podman,
# buildah and docker read xz and bzip2 layers too. zstd has no reader in Python's standard
# library before 3.14, so it is named instead.
COMPRESSIONS = {
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bzip2",
    b"\x28\xb5\x2f\xfd": "zstd",
}
KINDS = {
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


class LayerError(ToolingError):
    pass


@dataclass(slots=True, eq=False)
class Node:
    """A file, folder, link or device as the stacked layers leave it."""

    kind: str  # file, dir, symlink, char, block or fifo
    mode: int  # permission bits with setuid, setgid and sticky
    uid: int
    gid: int
    layer: int  # the layer that made it (or declared this folder again)
    size: int = 0
    sha256: str | None = None  # hex, of a file's bytes
    text: str | None = None  # of a file whose name the caller keeps
    data: bytes | None = None  # of a .pyc under the folder whose bytecode the caller keeps
    link: str | None = None  # a symbolic link's target as written
    hardlink: str | None = None  # "/path" of the file a hard link was made from
    children: dict[str, Node] = field(default_factory=dict)  # of a folder
    touched: int = -1  # the last layer that put something under this folder
    mixed: bool = False  # a folder this layer declared again over a lower layer's


def cleaned(name: str) -> list[str]:
    """The parts of a member's name as engines clean it: against `/`, `..` stopping there."""
    return [part for part in posixpath.normpath("/" + name).split("/") if part]


def layer_name(path: Path) -> str:
    return f"sha256:{path.name[:12]}"


class Filesystem:
    """The tree of the layers applied so far; `apply` adds one more."""

    def __init__(self, keep_text: Iterable[str] = (), keep_bytecode_under: str = "") -> None:
        """`keep_text`: file names ("RECORD") or paths ("var/lib/dpkg/status") whose text is kept.

        `keep_bytecode_under` ("/opt/venv"): the bytes of each .pyc whose name lies under
        this folder are kept, up to BYTECODE_LIMIT each (a name reaching it through a
        symbolic link is not: its bytecode is then named as unproven, never passed).
        """
        self.root = Node("dir", 0o755, 0, 0, -1)
        self.keep_text = frozenset(keep_text)
        self.bytecode_under = cleaned(keep_bytecode_under) if keep_bytecode_under else None
        self.layer = -1
        self.shown = ""
        self.link_steps = 0  # parts of names taken from link targets, in this layer

    def apply(self, path: Path) -> None:
        """Read the layer at `path` (gzip-compressed or plain tar) on top of the tree."""
        self.layer += 1
        self.link_steps = 0
        self.shown = layer_name(path)
        with open_layer(path) as archive:
            while archive is not None and (member := archive.next()) is not None:
                # tarfile keeps every header it has read (untyped); a stream needs none back
                archive.members.clear()  # type: ignore[attr-defined]
                self.add(archive, member)

    def fail(self, problem: str) -> LayerError:
        return LayerError(f"layer {self.shown}: {problem}: the image is not one engines agree on")

    def add(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        for text in (member.name, member.linkname):
            if len(text.encode(errors="surrogateescape")) >= PATH_MAX:
                raise self.fail(f"{text[:40]}... is longer than the {PATH_MAX} bytes Linux allows")
        parts = cleaned(member.name)
        if not parts:
            self.root.mode = member.mode & 0o7777
            return
        *folder_parts, name = parts
        if name == OPAQUE:
            self.opaque(folder_parts)
        elif name.startswith(WHITEOUT):
            self.whiteout(folder_parts, name.removeprefix(WHITEOUT), member.name)
        else:
            folder = self.folder(folder_parts, create=True)
            assert folder is not None  # made when missing
            self.place(folder, name, self.node(archive, member, parts))

    def folder(self, parts: list[str], create: bool) -> Node | None:
        """The folder `parts` name, found as the kernel finds it: links followed, `..` at / stays.

        Missing folders are made when `create` (as engines make them); otherwise None.
        """
        nodes = [self.root]
        pending = parts[::-1]
        links = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if len(nodes) > 1:
                    nodes.pop()
                continue
            here = nodes[-1]
            child = here.children.get(part)
            if child is None:
                if not create:
                    return None
                child = here.children[part] = Node("dir", 0o755, 0, 0, self.layer)
            elif child.kind == "symlink":
                links += 1
                if links > MAX_LINKS:
                    raise self.fail(f"{'/'.join(parts)} goes through a loop of symbolic links")
                target = child.link or ""
                if target.startswith("/"):
                    del nodes[1:]
                pending.extend(target.split("/")[::-1])
                self.link_steps += target.count("/") + 1
                if self.link_steps > LINK_STEPS:
                    raise self.fail("its names go through symbolic links more than verify follows")
                continue
            elif child.kind != "dir":
                if not create:
                    return None
                raise self.fail(f"{'/'.join(parts)} goes through {part}, which is not a folder")
            if create:
                child.touched = self.layer
            nodes.append(child)
        return nodes[-1]

    def keeps_bytecode(self, parts: list[str]) -> bool:
        under = self.bytecode_under
        return under is not None and parts[-1].endswith(".pyc") and parts[: len(under)] == under

    def node(self, archive: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str]) -> Node:
        mode = member.mode & 0o7777
        if member.islnk():
            return self.hard_link(member, mode)
        if member.isreg():
            node = Node("file", mode, member.uid, member.gid, self.layer, member.size)
            stream = archive.extractfile(member)
            assert stream is not None  # a regular file always has one
            text = parts[-1] in self.keep_text or "/".join(parts) in self.keep_text
            bytecode = self.keeps_bytecode(parts)
            limit = TEXT_LIMIT if text else BYTECODE_LIMIT if bytecode else -1
            node.sha256, kept = read_contents(stream, limit)
            if kept is not None and text:
                node.text = kept.decode("utf-8", errors="replace")
            elif kept is not None:
                node.data = kept
            return node
        kind = KINDS.get(member.type)
        if kind is None:
            raise self.fail(f"{member.name} is of tar type {member.type!r}, which engines refuse")
        node = Node(kind, mode, member.uid, member.gid, self.layer)
        if kind == "symlink":
            node.mode, node.link = 0o777, member.linkname
        return node

    def hard_link(self, member: tarfile.TarInfo, mode: int) -> Node:
        *parts, name = cleaned(member.linkname) or [""]
        folder = self.folder(parts, create=False)
        target = folder.children.get(name) if folder else None
        if target is None or target.kind == "dir":
            raise self.fail(f"{member.name} is a hard link to {member.linkname}, which is no file")
        copy = Node(target.kind, target.mode, target.uid, target.gid, self.layer, target.size)
        copy.sha256, copy.text, copy.link = target.sha256, target.text, target.link
        copy.data = target.data
        copy.hardlink = "/" + "/".join(cleaned(member.linkname))
        # Engines differ on whether the link's own mode applies: the union hides no setuid bit.
        copy.mode |= mode
        return copy

    def place(self, folder: Node, name: str, node: Node) -> None:
        """`node` at `name`: a folder over a folder merges, anything else replaces."""
        old = folder.children.get(name)
        if node.kind == "dir" and old is not None and old.kind == "dir":
            old.mode, old.uid, old.gid = node.mode, node.uid, node.gid
            old.mixed = old.mixed or old.layer != self.layer
            old.layer = self.layer
            return
        folder.children[name] = node

    def whiteout(self, parts: list[str], name: str, shown: str) -> None:
        if name in ("", ".", ".."):
            raise self.fail(f"the whiteout {shown} names no file")
        folder = self.folder(parts, create=False)
        hidden = folder.children.get(name) if folder else None
        if folder is None or hidden is None:
            return
        if hidden.layer == self.layer or hidden.touched == self.layer:
            raise self.fail(f"the whiteout {shown} hides what its own layer made")
        del folder.children[name]

    def opaque(self, parts: list[str]) -> None:
        """Remove what lower layers had under the folder; what this layer made stays."""
        folder = self.folder(parts, create=False)
        if folder is None:
            return
        pending = [folder]
        while pending:
            here = pending.pop()
            for name, child in list(here.children.items()):
                if child.layer == self.layer:
                    if child.mixed:
                        pending.append(child)
                elif child.touched == self.layer:
                    shown = "/".join([*parts, name])
                    raise self.fail(
                        f"the opaque folder {'/'.join(parts)} hides {shown}, "
                        "which its own layer wrote into"
                    )
                else:
                    del here.children[name]
            here.mixed = False

    def walk(self, root: str) -> Iterator[tuple[str, Node]]:
        """(path, node) for `root` and everything under it, without following links.

        Raises when a part of `root` is not a folder (a symbolic link, say): what
        is under it would then not be what the path names.
        """
        node = self.root
        parts = cleaned(root)
        for number, part in enumerate(parts):
            child = node.children.get(part)
            if child is None:
                return
            if child.kind != "dir":
                shown = "/" + "/".join(parts[: number + 1])
                target = f" to {child.link}" if child.link is not None else ""
                raise LayerError(f"{shown} is a {child.kind}{target}, not a folder")
            node = child
        pending = [("/".join(parts), node)]
        while pending:
            path, node = pending.pop()
            yield path, node
            for name, child in node.children.items():
                pending.append((f"{path}/{name}", child))


def read_contents(stream: IO[bytes], limit: int) -> tuple[str, bytes | None]:
    """(sha256 hex, the bytes when there are at most `limit` of them), a chunk at a time.

    A negative `limit` keeps nothing.
    """
    digest = hashlib.sha256()
    kept: list[bytes] | None = [] if limit >= 0 else None
    held = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        if kept is not None:
            held += len(chunk)
            if held <= limit:
                kept.append(chunk)
            else:
                kept = None
    return digest.hexdigest(), b"".join(kept) if kept is not None else None


def compression(start: bytes) -> str:
    """gzip, xz, bzip2 or zstd, as a layer's first bytes say; "" for none of them."""
    return next((name for magic, name in COMPRESSIONS.items() if start.startswith(magic)), "")


def described(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            name = compression(stream.read(6))
    except OSError:
        name = ""
    return f"{name}-compressed tar" if name else "tar (nor gzip, xz, bzip2 or zstd)"


def decompressed(
    raw: io.BufferedReader, name: str
) -> gzip.GzipFile | lzma.LZMAFile | bz2.BZ2File | io.BufferedReader:
    if name == "gzip":
        return gzip.GzipFile(fileobj=raw)
    if name == "xz":
        return lzma.LZMAFile(raw)
    if name == "bzip2":
        return bz2.BZ2File(raw)
    return raw


@contextmanager
def open_layer(path: Path) -> Iterator[tarfile.TarFile | None]:
    """The layer as a tar stream, read forward only; None when it is empty, as engines read it."""
    with path.open("rb") as raw:
        name = compression(raw.peek(6)[:6])
        if name == "zstd":
            raise LayerError(
                f"layer {layer_name(path)} is zstd-compressed; verify reads gzip, xz, bzip2 "
                "and uncompressed layers: push the image with gzip layers (the default)"
            )
        with decompressed(raw, name) as source:
            if not source.peek(1):
                yield None
                return
            with tarfile.open(fileobj=source, mode="r|") as tar:
                yield tar


def stack(
    layers: Iterable[Path], keep_text: Iterable[str] = (), keep_bytecode_under: str = ""
) -> Filesystem:
    """The layers, lowest first, applied as an engine applies them (Filesystem tells what is kept)."""
    tree = Filesystem(keep_text, keep_bytecode_under)
    for path in layers:
        try:
            tree.apply(path)
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as error:
            reason = getattr(error, "strerror", None) or error
            raise LayerError(
                f"layer {layer_name(path)} is not a readable {described(path)}: {reason}"
            ) from None
        except MemoryError:
            raise LayerError(
                f"ran out of memory reading layer {layer_name(path)}: "
                "give verify more memory, or check what the layer holds"
            ) from None
    return tree
