"""What a path under the venv must be (Want) and is (Found); where an installer puts a wheel."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tooling import ToolingError

VENV = "/opt/venv"
FILE, FOLDER, LINK = "file", "dir", "symlink"  # as tooling/shipping/layers.py names a node's kind
RECORD, BYTECODE = "RECORD", "bytecode"  # files checked by rule, not by their bytes


class ExpectedError(ToolingError):
    pass


@dataclass(frozen=True)
class Want:
    """What one path under the venv must be."""

    kind: str  # FILE, FOLDER or LINK
    mode: int = 0o644  # permission bits, setuid/setgid/sticky included
    sha256: str | None = None  # a file's bytes, hex
    rule: str | None = None  # RECORD or BYTECODE: checked by rule instead of by bytes
    target: str | None = None  # a link's target
    text: str | None = None  # a small generated file, to name the line that differs
    source: bytes | None = None  # BYTECODE: the source it compiles
    compiled_as: str = ""  # BYTECODE: the file name the compiler was given


@dataclass(frozen=True)
class Found:
    """What one path under the venv is in the image."""

    kind: str  # FILE, FOLDER, LINK, or what else a layer holds ("fifo", "char", "block")
    mode: int
    sha256: str | None = None
    target: str | None = None
    data: bytes | None = None  # the bytes of .pyc files and pyvenv.cfg: a layer reader keeps them
    owner: int = 0


Expected = dict[str, Want]  # path under the venv ("bin/python3") -> what it must be


@dataclass(frozen=True)
class Layout:
    """Where an installer puts each part of a wheel in the image's venv."""

    python_minor: str  # "3.11"
    prefix: str = VENV

    @property
    def site(self) -> str:
        return f"lib/python{self.python_minor}/site-packages"

    @property
    def cache_tag(self) -> str:
        return f"cpython-{self.python_minor.replace('.', '')}"

    @property
    def python(self) -> str:
        return f"{self.prefix}/bin/python"


@dataclass(frozen=True)
class Installer:
    """What an installer writes beside a wheel's own files."""

    name: str  # INSTALLER's content, without newline
    newline: bool  # pip ends INSTALLER with a newline, uv does not
    compiled_prefix: str = ""  # pip --root compiles at /opt/app/opt/venv/...
    direct_url: str | None = None  # the file URL pip records for a local wheel


UV = Installer("uv", newline=False)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_want(data: bytes, mode: int = 0o644) -> Want:
    return Want(FILE, mode, sha256_hex(data))


def text_want(text: str, mode: int = 0o644) -> Want:
    return Want(FILE, mode, sha256_hex(text.encode()), text=text)
