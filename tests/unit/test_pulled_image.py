"""tooling.shipping.pulled_image: an image read from the blobs skopeo fetched, never run."""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import io
import json
import lzma
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from tooling import lockfile
from tooling.shipping import pulled_image
from tooling.shipping.pulled_image import PulledImage, PulledImageError
from tooling.smoke import lock_problems

SITE = "opt/venv/lib/python3.11/site-packages"
CODE = b"VALUE = 1\n"


def record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"


def distribution(name: str, version: str, files: dict[str, bytes]) -> dict[str, bytes]:
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()
    record = "".join(record_line(path, data) for path, data in files.items())
    record += record_line(f"{info}/METADATA", metadata) + f"{info}/RECORD,,\n"
    tree = {f"{SITE}/{path}": data for path, data in files.items()}
    tree[f"{SITE}/{info}/METADATA"] = metadata
    tree[f"{SITE}/{info}/RECORD"] = record.encode()
    return tree


def layer(files: dict[str, bytes | None], links: dict[str, str] | None = None) -> bytes:
    """A gzipped tar layer; a None value is a folder (its whiteouts are plain names)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for path, target in (links or {}).items():
            info = tarfile.TarInfo(path)
            info.type = tarfile.LNKTYPE
            info.linkname = target
            tar.addfile(info)
    return gzip.compress(buffer.getvalue(), mtime=0)


def image(tmp_path: Path, *layers: bytes, architecture: str = "amd64") -> PulledImage:
    paths = []
    for number, data in enumerate(layers):
        path = tmp_path / f"layer{number}"
        path.write_bytes(data)
        paths.append(path)
    config = {"architecture": architecture, "os": "linux", "config": {"User": "1000"}}
    return PulledImage("sha256:m", config, "sha256:c", paths, sum(map(len, layers)))


BASE = {
    "usr/bin/python3": b"\x7fELF",
    "opt/venv/pyvenv.cfg": b"home = /usr/bin\nimplementation = CPython\nversion_info = 3.11.2\n",
    **distribution("pkg", "1.0", {"pkg/__init__.py": CODE}),
    **distribution("old", "9.9", {"old.py": b"x = 1\n"}),
}


def report(tmp_path: Path, *layers: bytes, architecture: str = "amd64") -> dict[str, object]:
    pulled = image(tmp_path, layer(BASE), *layers, architecture=architecture)
    return pulled_image.environment_report(pulled, "/opt/venv")


def test_the_environment_is_read_from_the_layers_as_an_engine_stacks_them(
    tmp_path: Path,
) -> None:
    found = report(
        tmp_path,
        layer(
            {
                f"{SITE}/.wh.old-9.9.dist-info": b"",
                f"{SITE}/.wh.old.py": b"",
                f"{SITE}/stray.py": b"print('not installed by anyone')\n",
                f"{SITE}/pkg/__pycache__/__init__.cpython-311.pyc": b"\x00",
            }
        ),
        architecture="arm64",
    )
    assert found["python"] == "3.11.2"
    assert found["distributions"] == [{"name": "pkg", "version": "1.0"}]
    assert found["record_problems"] == []
    assert found["unlisted"] == ["stray.py"]
    markers = found["markers"]
    assert isinstance(markers, dict)
    assert (markers["platform_machine"], markers["python_version"]) == ("aarch64", "3.11")


def test_a_file_changed_in_a_later_layer_is_named_with_its_distribution(tmp_path: Path) -> None:
    found = report(tmp_path, layer({f"{SITE}/pkg/__init__.py": b"VALUE = 2\n"}))
    assert {"distribution": "pkg", "file": "pkg/__init__.py", "problem": "changed"} in found[
        "record_problems"
    ]  # type: ignore[operator]


def test_an_opaque_folder_hides_what_lower_layers_had_there(tmp_path: Path) -> None:
    found = report(tmp_path, layer({f"{SITE}/pkg/": None, f"{SITE}/pkg/.wh..wh..opq": b""}))
    assert {"distribution": "pkg", "file": "pkg/__init__.py", "problem": "missing"} in found[
        "record_problems"
    ]  # type: ignore[operator]


def test_a_hard_link_has_the_bytes_of_its_target(tmp_path: Path) -> None:
    moved = {f"{SITE}/pkg/__init__.py": f"{SITE}/old.py"}
    found = report(tmp_path, layer({}, links=moved))
    problems = found["record_problems"]
    assert {"distribution": "pkg", "file": "pkg/__init__.py", "problem": "changed"} in problems  # type: ignore[operator]
    copy = f"{SITE}/pkg/copy.py"
    same = report(tmp_path, layer({copy: CODE}, links={f"{SITE}/pkg/__init__.py": copy}))
    assert same["unlisted"] == ["pkg/copy.py"] and same["record_problems"] == []


def test_an_image_without_the_environment_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PulledImageError, match=r"^the image has no environment at /opt/venv"):
        pulled_image.environment_report(image(tmp_path, layer({"usr/bin/sh": b""})), "/opt/venv")


def test_a_layer_that_is_not_a_tar_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PulledImageError, match=r"is not a readable gzip-compressed tar: "):
        pulled_image.environment_report(image(tmp_path, gzip.compress(b"junk" * 200)), "/opt/venv")


@pytest.mark.parametrize("compress", [lzma.compress, bz2.compress], ids=["xz", "bzip2"])
def test_xz_and_bzip2_layers_are_read_as_engines_read_them(
    tmp_path: Path, compress: Callable[[bytes], bytes]
) -> None:
    changed = gzip.decompress(layer({f"{SITE}/pkg/__init__.py": b"VALUE = 2\n"}))
    found = report(tmp_path, compress(changed))
    assert {"distribution": "pkg", "file": "pkg/__init__.py", "problem": "changed"} in found[
        "record_problems"
    ]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("start", "name"), [(b"\xfd7zXZ\x00", "xz"), (b"BZh9", "bzip2"), (b"\x1f\x8b", "gzip")]
)
def test_a_broken_compressed_layer_is_one_line_naming_its_compression(
    tmp_path: Path, start: bytes, name: str
) -> None:
    with pytest.raises(PulledImageError) as refused:
        report(tmp_path, start + b"\x00" * 64)
    assert f"is not a readable {name}-compressed tar: " in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_record_field_over_the_csv_limit_is_one_line(tmp_path: Path) -> None:
    huge = distribution("pkg", "1.0", {"pkg/__init__.py": CODE})
    record_path = f"{SITE}/pkg-1.0.dist-info/RECORD"
    rows = huge[record_path].decode().splitlines(keepends=True)
    rows.insert(1, f"pkg/data.bin,sha256={'A' * 140_000},1\n")
    found = report(tmp_path, layer({record_path: "".join(rows).encode()}))
    pins = "".join(f"{pin} \\\n    --hash=sha256:{'0' * 64}\n" for pin in ("old==9.9", "pkg==1.0"))
    lock = lockfile.parse(pins, "requirements/x.txt")
    assert lock_problems(found, lock, "requirements/x.txt", "3.11", None) == [
        "pkg: RECORD line 2 is not readable as CSV: field larger than field limit (131072)"
    ]


CONFIG = "c0ffee" * 10 + "c0ff"


class FakeSkopeo:
    """Writes a dir: layout as `skopeo copy` does, or fails with `stderr`."""

    def __init__(self, manifest: dict[str, object], stderr: str = "") -> None:
        self.manifest, self.stderr = manifest, stderr
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        if self.stderr:
            return subprocess.CompletedProcess(argv, 1, "", self.stderr)
        folder = Path(argv[-1].removeprefix("dir:"))
        (folder / "manifest.json").write_text(json.dumps(self.manifest))
        (folder / CONFIG).write_text(json.dumps({"config": {"User": "1000", "Labels": {}}}))
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_fetch_reads_what_skopeo_copied_and_names_the_manifest_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pulled_image.shutil, "which", lambda name: f"/usr/bin/{name}")
    manifest = {
        "config": {"digest": f"sha256:{CONFIG}"},
        "layers": [
            {"digest": f"sha256:{'a' * 64}", "size": 3},
            {"digest": f"sha256:{'b' * 64}", "size": 4},
        ],
    }
    skopeo = FakeSkopeo(manifest)
    pulled = pulled_image.fetch("127.0.0.1:5000/app:sniper", False, tmp_path, run=skopeo)
    assert skopeo.calls[0][:2] == ["skopeo", "copy"]
    assert "--src-tls-verify=false" in skopeo.calls[0]
    assert skopeo.calls[0][-2:] == ["docker://127.0.0.1:5000/app:sniper", f"dir:{tmp_path}"]
    body = (tmp_path / "manifest.json").read_bytes()
    assert pulled.digest == f"sha256:{hashlib.sha256(body).hexdigest()}"
    assert (pulled.image_id, pulled.size) == (f"sha256:{CONFIG}", 7)
    assert pulled.layers == [tmp_path / ("a" * 64), tmp_path / ("b" * 64)]
    assert pulled.facts().user == "1000"

    refused = FakeSkopeo(manifest, stderr="FATA[0000] reading manifest: manifest unknown")
    with pytest.raises(PulledImageError) as error:
        pulled_image.fetch("127.0.0.1:5000/app:gone", False, tmp_path, run=refused)
    assert str(error.value) == (
        "cannot pull 127.0.0.1:5000/app:gone: 127.0.0.1:5000/app:gone is not in the registry"
    )


def test_without_skopeo_verify_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pulled_image.shutil, "which", lambda name: None)
    with pytest.raises(PulledImageError, match=r"^invoke verify fetches the image with skopeo, "):
        pulled_image.fetch("127.0.0.1:5000/app:sniper", False, tmp_path)


def test_a_manifest_verify_cannot_read_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pulled_image.shutil, "which", lambda name: f"/usr/bin/{name}")
    skopeo = FakeSkopeo({"config": {"digest": "sha256:../../etc/passwd"}, "layers": []})
    with pytest.raises(PulledImageError) as error:
        pulled_image.fetch("127.0.0.1:5000/app:odd", False, tmp_path, run=skopeo)
    assert str(error.value) == (
        "127.0.0.1:5000/app:odd: its manifest or config is not one verify can read "
        "(ValueError('sha256:../../etc/passwd is not a sha256 digest'))"
    )
