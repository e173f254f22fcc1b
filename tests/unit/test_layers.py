"""tooling.shipping.layers: image layers stacked as engines extract them, streamed, in linear time."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import signal
import subprocess
import sys
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from conftest import PROJECT_TEMPLATE
from tooling.shipping import layers
from tooling.shipping.layers import Filesystem, LayerError, Node

SITE = "opt/venv/lib/python3.11/site-packages"
Member = tuple[tarfile.TarInfo, bytes | None]


def file(name: str, data: bytes = b"x = 1\n", mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def folder(name: str, mode: int = 0o755) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info, None


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE, mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, mode
    return info, None


def volume_header(name: str) -> Member:
    """A GNU volume header: a tar type no engine extracts."""
    info = tarfile.TarInfo(name)
    info.type = b"V"
    return info, None


def tar(*members: Member) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def layer(*members: Member) -> bytes:
    return gzip.compress(tar(*members), mtime=0)


def zeros_layer(name: str, size: int) -> bytes:
    """A gzip layer holding one file of `size` zero bytes, in about size/1000 bytes.

    It is one gzip member per 64 MiB of zeros, concatenated: engines (and
    Python) read a gzip stream of several members as one.
    """
    info = tarfile.TarInfo(name)
    info.size = size
    chunk = 64 << 20
    whole, rest = divmod(size, chunk)
    header = gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT), mtime=0)
    block = gzip.compress(bytes(chunk), mtime=0) if whole else b""
    ending = gzip.compress(bytes(rest + (-size % 512) + 1024), mtime=0)  # padding, end of tar
    return header + block * whole + ending


def write_layers(folder: Path, *blobs: bytes) -> list[Path]:
    paths = []
    for blob in blobs:
        path = folder / hashlib.sha256(blob).hexdigest()
        path.write_bytes(blob)
        paths.append(path)
    return paths


def stacked(tmp_path: Path, *blobs: bytes) -> Filesystem:
    return layers.stack(write_layers(tmp_path, *blobs), {"RECORD"})


def under(tree: Filesystem, root: str = "/opt/venv") -> dict[str, Node]:
    return {path: node for path, node in tree.walk(root) if node.kind != "dir"}


@pytest.mark.parametrize(
    "name",
    [
        f"{SITE}/evil.pth",
        f"./{SITE}/evil.pth",
        f"/{SITE}/evil.pth",
        f"../{SITE}/evil.pth",
        f"/../{SITE}/evil.pth",
        f"../../../{SITE}/../site-packages/./evil.pth",
        f"usr/../../{SITE}//evil.pth",
    ],
)
def test_a_name_lands_where_an_engine_extracts_it(tmp_path: Path, name: str) -> None:
    tree = stacked(tmp_path, layer(file(name, b"import os\n")))
    found = under(tree)
    assert list(found) == [f"{SITE}/evil.pth"]
    assert found[f"{SITE}/evil.pth"].sha256 == hashlib.sha256(b"import os\n").hexdigest()


@pytest.mark.parametrize(
    "target",
    ["/opt/venv/lib/python3.11/site-packages", "../opt/venv/lib/python3.11/./site-packages"],
)
def test_a_file_under_a_symbolic_link_lands_where_the_link_points(
    tmp_path: Path, target: str
) -> None:
    tree = stacked(
        tmp_path,
        layer(folder(SITE)),
        layer(link("usr/share", target), file("usr/share/evil.pth")),
        layer(link("/srv", "../../usr"), file("srv/share/later.pth")),
    )
    assert sorted(under(tree)) == [f"{SITE}/evil.pth", f"{SITE}/later.pth"]


def test_whiteouts_hide_what_lower_layers_had(tmp_path: Path) -> None:
    tree = stacked(
        tmp_path,
        layer(file(f"{SITE}/a.py"), file(f"{SITE}/b.py"), file(f"{SITE}/pkg/c.py")),
        layer(file(f"{SITE}/.wh.a.py", b""), file(f"{SITE}/pkg/.wh..wh..opq", b"")),
        layer(file(f"{SITE}/pkg/d.py"), file(f"{SITE}/pkg/e.py")),
        layer(
            folder(f"{SITE}/pkg"), file(f"{SITE}/pkg/.wh..wh..opq", b""), file(f"{SITE}/pkg/f.py")
        ),
    )
    assert sorted(under(tree)) == [f"{SITE}/b.py", f"{SITE}/pkg/f.py"]
    gone = stacked(tmp_path, layer(file(f"{SITE}/a.py")), layer(file("opt/.wh.venv", b"")))
    assert under(gone) == {}


def test_a_file_replaces_a_folder_and_everything_in_it(tmp_path: Path) -> None:
    tree = stacked(
        tmp_path,
        layer(*[file(f"{SITE}/pkg/m{number}.py") for number in range(3)]),
        layer(file(f"{SITE}/pkg", b"not a folder")),
    )
    assert list(under(tree)) == [f"{SITE}/pkg"]


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ([file(f"{SITE}/a.py"), file(f"{SITE}/.wh.a.py", b"")], "hides what its own layer made"),
        (
            [file(f"{SITE}/pkg/new.py"), file(f"{SITE}/.wh.pkg", b"")],
            "hides what its own layer made",
        ),
        (
            [file(f"{SITE}/pkg/new.py"), file(f"{SITE}/.wh..wh..opq", b"")],
            "which its own layer wrote into",
        ),
        ([file(f"{SITE}/.wh...", b"")], "names no file"),
        ([link("opt/x", "y"), link("opt/y", "x"), file("opt/x/a")], "loop of symbolic links"),
        ([file("opt/venv/lib", b""), file(f"{SITE}/a.py")], "lib, which is not a folder"),
        ([link(f"{SITE}/a.py", "gone.py", tarfile.LNKTYPE)], "hard link to gone.py"),
        ([volume_header("opt/x")], "opt/x is of tar type"),
        ([file("opt/" + "x" * 5000)], "longer than the 4096 bytes Linux allows"),
        ([link("opt/x", "y/" * 2100)], "longer than the 4096 bytes Linux allows"),
        (
            [link("opt/a", "b/" * 600 + "../" * 600), *[file(f"opt/a/{n}") for n in range(900)]],
            "go through symbolic links more than verify follows",
        ),
    ],
)
def test_what_engines_refuse_or_disagree_on_is_one_line(
    tmp_path: Path, members: list[Member], problem: str
) -> None:
    lower = layer(file(f"{SITE}/pkg/old.py"))
    with pytest.raises(LayerError) as error:
        stacked(tmp_path, lower, layer(*members))
    message = str(error.value)
    assert message.startswith("layer sha256:") and problem in message and "\n" not in message


def test_links_and_modes_are_recorded(tmp_path: Path) -> None:
    tree = stacked(
        tmp_path,
        layer(
            file("usr/bin/tool", b"#!/bin/sh\n", mode=0o4755),
            link("opt/venv/bin/python", "/usr/bin/python3.11"),
            link("opt/venv/bin/tool", "usr/bin/tool", tarfile.LNKTYPE, mode=0o755),
            file("opt/venv/bin/open", mode=0o777),
            folder(SITE, mode=0o777),
        ),
    )
    found = dict(tree.walk("/opt/venv"))
    python = found["opt/venv/bin/python"]
    assert (python.kind, python.link) == ("symlink", "/usr/bin/python3.11")
    tool = found["opt/venv/bin/tool"]
    assert (tool.kind, tool.hardlink, tool.mode) == ("file", "/usr/bin/tool", 0o4755)
    assert tool.sha256 == hashlib.sha256(b"#!/bin/sh\n").hexdigest()
    assert found["opt/venv/bin/open"].mode == 0o777
    assert (found[SITE].kind, found[SITE].mode) == ("dir", 0o777)


def test_the_bytes_of_bytecode_under_the_venv_are_kept_up_to_a_limit(tmp_path: Path) -> None:
    pyc = f"{SITE}/pkg/__pycache__/m.cpython-311.pyc"
    big = bytes(layers.BYTECODE_LIMIT + 1)
    tree = layers.stack(
        write_layers(
            tmp_path,
            layer(
                file(pyc, b"\x00pyc"),
                file(f"{SITE}/pkg/__pycache__/huge.cpython-311.pyc", big),
                file(f"{SITE}/pkg/m.py", b"x = 1\n"),
                file("usr/lib/python3.11/__pycache__/os.cpython-311.pyc", b"os"),
                file("var/lib/dpkg/status", b"Package: libc6\n"),
                file("srv/status", b"not kept"),
            ),
        ),
        {"var/lib/dpkg/status"},
        "/opt/venv",
    )
    found = {path.lstrip("/"): node for path, node in under(tree, "/").items()}
    assert found[pyc].data == b"\x00pyc"
    assert found[f"{SITE}/pkg/__pycache__/huge.cpython-311.pyc"].data is None  # hashed only
    assert found[f"{SITE}/pkg/m.py"].data is None
    assert found["usr/lib/python3.11/__pycache__/os.cpython-311.pyc"].data is None
    assert found["var/lib/dpkg/status"].text == "Package: libc6\n"
    assert found["srv/status"].text is None


def test_the_root_reached_through_a_link_is_named(tmp_path: Path) -> None:
    tree = stacked(tmp_path, layer(file("srv/venv/pyvenv.cfg"), link("opt", "/srv")))
    with pytest.raises(LayerError, match=r"^/opt is a symlink to /srv, not a folder$"):
        list(tree.walk("/opt/venv"))


def test_zstd_which_python_cannot_read_is_named(tmp_path: Path) -> None:
    blob = b"\x28\xb5\x2f\xfd" + tar(file(f"{SITE}/a.py"))  # a zstd frame starts so
    with pytest.raises(LayerError) as error:
        stacked(tmp_path, blob)
    assert str(error.value) == (
        f"layer sha256:{hashlib.sha256(blob).hexdigest()[:12]} is zstd-compressed; verify reads "
        "gzip, xz, bzip2 and uncompressed layers: push the image with gzip layers (the default)"
    )


READABLE = {
    "gzip-compressed tar": gzip.compress,
    "xz-compressed tar": lzma.compress,
    "bzip2-compressed tar": bz2.compress,
    "tar (nor gzip, xz, bzip2 or zstd)": lambda data: data,
}


@pytest.mark.parametrize("named", READABLE)
def test_every_compression_engines_read_is_read(tmp_path: Path, named: str) -> None:
    blob = READABLE[named](tar(file(f"{SITE}/a.py", b"A"), file(f"{SITE}/b.py", b"B")))
    assert sorted(under(stacked(tmp_path, blob))) == [f"{SITE}/a.py", f"{SITE}/b.py"]


@pytest.mark.parametrize(
    ("damaged", "named"),
    [
        *[(compress(b"junk" * 300), named) for named, compress in READABLE.items()],
        (b"\x04\x22\x4d\x18" + b"junk" * 300, "tar (nor gzip, xz, bzip2 or zstd)"),  # lz4
    ],
    ids=[*READABLE, "lz4"],  # gzip's bytes hold the time: one ID in every xdist worker
)
def test_a_layer_that_cannot_be_read_is_named_in_one_line(
    tmp_path: Path, damaged: bytes, named: str
) -> None:
    with pytest.raises(LayerError) as error:
        stacked(tmp_path, damaged)
    digest = hashlib.sha256(damaged).hexdigest()[:12]
    message = str(error.value)
    assert message.startswith(f"layer sha256:{digest} is not a readable {named}: ")
    assert "\n" not in message


def test_an_empty_layer_holds_no_files(tmp_path: Path) -> None:
    tree = stacked(tmp_path, layer(file(f"{SITE}/a.py")), b"", gzip.compress(b""), tar())
    assert list(under(tree)) == [f"{SITE}/a.py"]


def test_a_huge_file_costs_no_more_memory_than_its_layer(tmp_path: Path) -> None:
    size = 256 << 20
    blob = zeros_layer(f"{SITE}/zeros.bin", size)
    assert len(blob) < size // 500
    paths = write_layers(tmp_path, blob)
    tracemalloc.start()
    try:
        tree = layers.stack(paths)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    zeros = hashlib.sha256()
    for _ in range(size >> 20):
        zeros.update(bytes(1 << 20))
    node = under(tree)[f"{SITE}/zeros.bin"]
    assert (node.size, node.sha256) == (size, zeros.hexdigest())
    assert peak < 16 << 20


def test_many_files_many_times_over(tmp_path: Path) -> None:
    count = 10_000
    names = [f"{SITE}/pkg{number % 50}/m{number}.py" for number in range(count)]
    tree = stacked(
        tmp_path,
        layer(*[file(name) for name in names]),
        layer(*[file(name, b"changed") for name in names[::2]]),
        layer(*[file(f"{SITE}/pkg{number}/.wh.m{number}.py", b"") for number in range(50)]),
    )
    found = under(tree)
    assert len(found) == count - 50
    assert found[names[102]].sha256 == hashlib.sha256(b"changed").hexdigest()
    assert found[names[151]].sha256 == hashlib.sha256(b"x = 1\n").hexdigest()


FAKE_SKOPEO = """\
import shutil, sys
shutil.copytree(sys.argv[1], sys.argv[-1].removeprefix("dir:"), dirs_exist_ok=True)
"""


def fake_skopeo(folder: Path, layout: Path) -> None:
    """A `skopeo` that copies `layout` where `skopeo copy` would write the image."""
    folder.mkdir()
    script = folder / "skopeo"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -c '{FAKE_SKOPEO}' {layout} \"$@\"\n")
    script.chmod(0o755)


def big_image(layout: Path) -> None:
    """A dir: layout of one image whose one layer holds a 16 GiB file of zeros."""
    layout.mkdir()
    [big] = write_layers(layout, zeros_layer(f"{SITE}/zeros.bin", 16 << 30))
    config = layout / hashlib.sha256(b"{}").hexdigest()
    config.write_bytes(b"{}")
    manifest = {
        "config": {"digest": f"sha256:{config.name}"},
        "layers": [{"digest": f"sha256:{big.name}", "size": big.stat().st_size}],
    }
    (layout / "manifest.json").write_text(json.dumps(manifest))


VERIFY = """\
import sys
from tooling import ToolingError
from tooling.shipping import pulled_image
try:
    with pulled_image.fetched("127.0.0.1:5000/app:big", False) as image:
        print("reading", flush=True)
        pulled_image.environment_report(image, "/opt/venv")
except ToolingError as error:  # as tasks.py ends a task
    print(f"error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_verify_removes_its_temporary_folder_and_says_so_in_one_line(
    tmp_path: Path, stop: signal.Signals
) -> None:
    tools, scratch = tmp_path / "bin", tmp_path / "tmp"
    scratch.mkdir()
    big_image(tmp_path / "image")
    fake_skopeo(tools, tmp_path / "image")
    environment = dict(
        os.environ,
        PATH=f"{tools}{os.pathsep}{os.environ['PATH']}",
        TMPDIR=str(scratch),
        PYTHONPATH=str(PROJECT_TEMPLATE),
    )
    child = subprocess.Popen(
        [sys.executable, "-c", VERIFY],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "reading\n"
    assert len(list(scratch.iterdir())) == 1
    child.send_signal(stop)
    _, stderr = child.communicate(timeout=60)
    assert stderr == (
        f"error: stopped by {stop.name}: nothing was verified, its temporary files are removed\n"
    )
    assert child.returncode == 128 + stop
    assert list(scratch.iterdir()) == []
