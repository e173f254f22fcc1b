"""tooling.shipping.base_layers: what verify proves outside /opt/venv, from the pinned base's layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest
from tooling.base_image import PinnedBase
from tooling.shipping import base_layers
from tooling.shipping.base_layers import Base, BaseLayerError
from tooling.shipping.pulled_image import PulledImage

PROJECT_TEMPLATE = Path(__file__).resolve().parents[2] / "{{cookiecutter.project_slug}}"
PIN = f"127.0.0.1:5000/base:3.11@sha256:{'a' * 64}"
DIST_PACKAGES = "usr/lib/python3/dist-packages"
PASSWD = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
SHADOW = "root:*:19000:0:99999:7:::\n"
GSHADOW = "root:*::\n"
Member = bytes | str | None | tuple[str, int]  # a file, a link's target, a folder, (kind, mode)

BASE: dict[str, Member] = {
    "etc": None,
    "etc/passwd": PASSWD.encode(),
    "etc/group": GROUP.encode(),
    "etc/shadow": SHADOW.encode(),
    "etc/gshadow": GSHADOW.encode(),
    "opt": None,
    "root": ("dir", 0o700),
    "usr/bin/python3.11": b"\x7fELF interpreter",
    "usr/bin/python3": "python3.11",
    f"{DIST_PACKAGES}/six.py": b"import sys\n",
    "var/log": None,
}
# What buildah's build of the Dockerfile's runtime stage put above the base (seen in a build).
ENVIRONMENT: list[dict[str, Member]] = [
    {"etc": None, "etc/hosts": ("file", 0o755), "run": None},
    {"opt": None, "opt/venv/lock/tier.txt": b"structlog==25.4.0\n"},
    {
        "opt/venv/bin/python": "/usr/bin/python3.11",
        "opt/venv/pyvenv.cfg": b"home = /usr/bin\n",
        "root": ("dir", 0o700),
        "run/secrets": None,
    },
]
USERADD: dict[str, Member] = {
    "etc": None,
    "etc/.pwd.lock": ("file", 0o600),
    "etc/passwd": (PASSWD + "app:x:1000:1000::/nonexistent:/usr/sbin/nologin\n").encode(),
    "etc/passwd-": PASSWD.encode(),
    "etc/group": (GROUP + "app:x:1000:\n").encode(),
    "etc/group-": GROUP.encode(),
    "etc/shadow": (SHADOW + "app:!:19675:0:99999:7:::\n").encode(),
    "etc/shadow-": SHADOW.encode(),
    "etc/gshadow": (GSHADOW + "app:!::\n").encode(),
    "etc/gshadow-": GSHADOW.encode(),
    "etc/subuid": b"app:100000:65536\n",
    "etc/subuid-": b"",
    "etc/subgid": b"app:100000:65536\n",
    "etc/subgid-": b"",
    "run": None,
}
APP: dict[str, Member] = {"opt/venv/bin/app": b"#!/opt/venv/bin/python\n"}


def layer(path: Path, members: dict[str, Member]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            data = b""
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif isinstance(content, tuple):
                kind, info.mode = content
                info.type = tarfile.DIRTYPE if kind == "dir" else tarfile.REGTYPE
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
            else:
                data, info.mode = content, 0o755 if content.startswith(b"\x7fELF") else 0o644
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    path.write_bytes(gzip.compress(raw, mtime=0))
    return path


def diff_id(path: Path) -> str:
    return f"sha256:{hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()}"


def pulled(
    tmp_path: Path, *uppers: dict[str, Member], label: str = PIN, base: dict[str, Member] = BASE
) -> tuple[PulledImage, Base]:
    """An image of the base's layer and `uppers`, and the base as its pin fetches it."""
    paths = [
        layer(tmp_path / f"layer{number}", each) for number, each in enumerate([base, *uppers])
    ]
    diff_ids = [diff_id(path) for path in paths]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {base_layers.BASE_LABEL: label}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return PulledImage("sha256:" + "b" * 64, config, "sha256:" + "c" * 64, paths, 0), Base(
        PIN, diff_ids[:1]
    )


def problems(tmp_path: Path, *uppers: dict[str, Member]) -> list[str]:
    image, base = pulled(tmp_path, *uppers)
    return [*base_layers.layer_problems(image, base), *base_layers.upper_layer_problems(image, 1)]


def built(*extra: dict[str, Member]) -> list[dict[str, Member]]:
    return [*ENVIRONMENT, USERADD, APP, *extra]


def test_the_layers_the_dockerfile_makes_change_nothing_else(tmp_path: Path) -> None:
    assert problems(tmp_path, *built()) == []


def test_a_pth_file_or_a_sitecustomize_in_the_base_s_site_packages_is_named(
    tmp_path: Path,
) -> None:
    tampered = {
        f"{DIST_PACKAGES}/evil.pth": b"import os\n",
        "usr/local/lib/python3.11/site-packages/sitecustomize.py": b"import os\n",
    }
    assert problems(tmp_path, *ENVIRONMENT, USERADD, {**APP, **tampered}) == [
        f"/{DIST_PACKAGES}/evil.pth: a file no layer of the Dockerfile makes "
        "(Python runs it at every start)",
        "/usr/local: a dir no layer of the Dockerfile makes",
    ]


def test_a_replaced_interpreter_a_removed_file_and_an_extra_layer_are_named(
    tmp_path: Path,
) -> None:
    tampered = {"usr/bin/python3.11": b"\x7fELF other", f"{DIST_PACKAGES}/.wh.six.py": b""}
    assert problems(tmp_path, *built(tampered)) == [
        "6 layers above the base, the Dockerfile makes 5: the image has layers no build "
        "of this Dockerfile makes",
        "/usr/bin/python3.11: changed from the base image's",
        f"/{DIST_PACKAGES}/six.py: removed from the base image",
    ]


def test_a_link_planted_beside_the_base_s_files_is_named_with_what_it_leads_to(
    tmp_path: Path,
) -> None:
    trick = {"usr/share/x": f"/{DIST_PACKAGES}", "usr/share/x/evil.pth": b"import os\n"}
    assert problems(tmp_path, *ENVIRONMENT, USERADD, {**APP, **trick}) == [
        f"/{DIST_PACKAGES}/evil.pth: a file no layer of the Dockerfile makes "
        "(Python runs it at every start)",
        "/usr/share: a dir no layer of the Dockerfile makes",
    ]


def test_useradd_s_files_hold_the_base_s_lines_and_only_the_app_user(tmp_path: Path) -> None:
    root_too = dict(USERADD)
    root_too["etc/passwd"] = (PASSWD + "app:x:0:0::/nonexistent:/bin/sh\n").encode()
    root_too["etc/shadow-"] = b"root::19000:0:99999:7:::\n"
    root_too["etc/group"] = (GROUP.replace("nogroup", "wheel") + "app:x:1000:\n").encode()
    assert problems(tmp_path, *ENVIRONMENT, root_too, APP) == [
        "/etc/group: changes lines of the base image's",
        "/etc/passwd: adds ['app:x:0:0::/nonexistent:/bin/sh'], expected only the app user's line",
        "/etc/shadow-: not the base image's file as it was",
    ]


def test_a_changed_folder_mode_is_named_but_leftover_mount_points_are_not(
    tmp_path: Path,
) -> None:
    leftovers = {
        "opt/uv": None,
        "opt/pipconf_to_uv.py": ("file", 0o644),
        "root/.cache": None,
        "run/secrets/ca": ("file", 0o644),
    }
    assert problems(tmp_path, *built(leftovers)) == [
        "6 layers above the base, the Dockerfile makes 5: the image has layers no build "
        "of this Dockerfile makes"
    ]
    world_writable = {"usr/bin": ("dir", 0o777), "opt/uv/x.py": b"import os\n"}
    assert problems(tmp_path, *ENVIRONMENT, USERADD, {**APP, **world_writable}) == [
        "/opt/uv/x.py: a file no layer of the Dockerfile makes",
        "/usr/bin: mode 777, owner 0:0; the base image's is 755, 0:0",
    ]


def test_an_image_on_another_base_or_labelled_with_another_is_named(tmp_path: Path) -> None:
    image, base = pulled(tmp_path, *built(), label="python:3.11-slim")
    assert base_layers.layer_problems(image, base) == [
        f"it says it is built on python:3.11-slim, but base-images.lock pins {PIN}"
    ]
    other = Base(PIN, ["sha256:" + "d" * 64])
    assert base_layers.layer_problems(image, other) == [
        f"its base layers are not those of {PIN} (1), the base base-images.lock pins "
        "(it says it is built on python:3.11-slim): it is built on another base"
    ]


def test_the_base_s_layers_are_read_from_the_config_fetched_once() -> None:
    pinned = PinnedBase(PIN, {"rootfs": {"diff_ids": ["sha256:" + "e" * 64]}})
    assert base_layers.base_of(pinned) == Base(PIN, ["sha256:" + "e" * 64])
    with pytest.raises(BaseLayerError, match=r"^the base image .* has no config verify can read$"):
        base_layers.base_of(PinnedBase(PIN, {}))


def test_upper_layers_match_the_dockerfile_s_stages() -> None:
    """RUN and COPY lines of the stages an image is made of: each one layer. The bare stage
    once, a tier's own environment stage once per tier the image installs, the runtime stage."""
    text = (PROJECT_TEMPLATE / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", text)

    def made(start: str) -> int:
        kept = [stage for stage in stages if stage.startswith(start)]
        assert len(kept) == 1, start
        return len(re.findall(r"(?m)^(?:RUN|COPY) ", kept[0]))

    assert made("${BASE_IMAGE} AS bare") == base_layers.BARE_LAYERS
    assert made("${ENVIRONMENT_BASE:-bare} AS environment-installed") == base_layers.TIER_LAYERS
    assert made("${ENVIRONMENT_BASE:-bare} AS environment-inherited") == 0
    assert made("environment AS runtime") == base_layers.RUNTIME_LAYERS
    assert base_layers.upper_layers(1) == base_layers.UPPER_LAYERS == 5
    assert base_layers.upper_layers(3) == 9


def test_the_layers_are_checked_against_the_base_fetched_not_the_one_the_image_names(
    tmp_path: Path,
) -> None:
    image, base = pulled(tmp_path, *built(), label=f"python:3.11-slim@sha256:{'f' * 64}")
    pin = f"python:3.11-slim@sha256:{'f' * 64}"
    pinned = PinnedBase(pin, {"rootfs": {"diff_ids": base.diff_ids}})
    assert base_layers.base_problems(image, pinned) == (
        [
            f"its base layers (1) are {pin}'s, as base-images.lock pins; the layers above "
            "change nothing outside /opt/venv but the app user useradd adds"
        ],
        [],
    )
    assert base_layers.base_problems(image, PinnedBase(pin, {"rootfs": {}})) == (
        [],
        [f"the base image {pin} has no config verify can read"],
    )
