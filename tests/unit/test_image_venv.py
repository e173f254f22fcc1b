"""tooling.shipping.image_venv: the trusted inputs verify gathers for one image's /opt/venv."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
from tooling import ToolingError
from tooling.project import Project
from tooling.shipping import image_venv, layers
from tooling.shipping.expected import ExpectedError
from tooling.shipping.layers import Filesystem

LIBC6 = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u10\n"


def image(tmp_path: Path, files: dict[str, bytes]) -> Filesystem:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path = tmp_path / "layer"
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return layers.stack([path], {image_venv.DPKG_STATUS}, "/opt/venv")


def test_glibc_and_the_interpreter_come_from_the_base_layers(tmp_path: Path) -> None:
    tree = image(
        tmp_path,
        {"var/lib/dpkg/status": LIBC6.encode(), "usr/local/bin/python3.11": b"\x7fELF"},
    )
    assert image_venv.glibc(tree) == (2, 36)
    assert image_venv.interpreter_home(tree, "3.11") == "/usr/local/bin"
    debian = image(tmp_path, {"usr/bin/python3.11": b"\x7fELF"})
    assert image_venv.interpreter_home(debian, "3.11") == "/usr/bin"


def test_an_image_verify_cannot_place_is_one_line(tmp_path: Path) -> None:
    tree = image(tmp_path, {"etc/alpine-release": b"3.20\n"})
    with pytest.raises(ExpectedError, match=r"^the image has no libc6 in /var/lib/dpkg/status: "):
        image_venv.glibc(tree)
    with pytest.raises(ExpectedError, match=r"^the image has no python3.11 in /usr/local/bin or"):
        image_venv.interpreter_home(tree, "3.11")


def test_a_musl_base_is_one_line_saying_verify_cannot_derive_its_environment(
    tmp_path: Path,
) -> None:
    alpine = image(
        tmp_path,
        {
            "etc/alpine-release": b"3.20.3\n",
            "lib/ld-musl-x86_64.so.1": b"\x7fELF",
            "usr/local/bin/python3.11": b"\x7fELF",
            # even beside a dpkg status naming libc6: musl is what the interpreter loads
            "var/lib/dpkg/status": LIBC6.encode(),
        },
    )
    project = Project(tmp_path, "3.11.9")
    with pytest.raises(ToolingError) as raised:  # tasks.py: `error: ...`, exit 1
        image_venv.venv_problems(project, "base", alpine, {}, "3.11.9", "0")
    message = str(raised.value)
    assert message.startswith(
        "the image is built on a musl base (/lib/ld-musl-x86_64.so.1, as Alpine's): verify "
        "computes the environment of glibc bases only"
    )
    assert "nothing is verified" in message and "\n" not in message


def test_wheels_are_cached_where_xdg_says(tmp_path: Path) -> None:
    assert image_venv.wheel_cache({"XDG_CACHE_HOME": str(tmp_path)}) == (
        tmp_path / "lockstep" / "wheels"
    )
    assert image_venv.wheel_cache({}) == Path.home() / ".cache" / "lockstep" / "wheels"


def test_the_files_the_dockerfile_copies_beside_the_venv_are_the_checkouts(
    tmp_path: Path,
) -> None:
    """The lock of every tier the image installed: a layered child holds its parent's too."""
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "base.txt").write_text("structlog==25.4.0\n")
    (tmp_path / "requirements" / "hunter.txt").write_text("numpy==2.3.0\nstructlog==25.4.0\n")
    want = image_venv.copied_files(tmp_path, ["base"], "uv==0.8.0\n")
    assert want["lock/base.txt"].sha256 == image_venv.expected.sha256_hex(b"structlog==25.4.0\n")
    assert want["lock/uv-requirements.txt"].sha256 == image_venv.expected.sha256_hex(b"uv==0.8.0\n")
    assert "lock/hunter.txt" not in want
    layered = image_venv.copied_files(tmp_path, ["base", "hunter"], "uv==0.8.0\n")
    assert set(layered) == {"lock", "lock/base.txt", "lock/hunter.txt", "lock/uv-requirements.txt"}
    with pytest.raises(ExpectedError, match=r"^cannot read requirements/strategist.txt: "):
        image_venv.copied_files(tmp_path, ["base", "strategist"], "")
