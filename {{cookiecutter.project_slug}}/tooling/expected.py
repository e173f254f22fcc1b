"""What /opt/venv must hold, derived from trusted inputs only, and how an image differs from it.

Trusted inputs: the tier's pylock (each package's wheel, fetched by its URL
and accepted only when its sha256 is the lock's), the base image pinned in
base-images.lock (its interpreter's path and version, for the venv's links
and `pyvenv.cfg`), and the project's own wheel built from the commit. Nothing
the image says about itself (RECORD, METADATA, a .pyc header) is believed:
every file is compared with the bytes the installer would have written, and
the files the installer generates are checked by rule.

Bytecode. The Dockerfile compiles with SOURCE_DATE_EPOCH set, so every .pyc is
a checked-hash pyc of its source. Its bytes cannot be reproduced on another
machine: CPython patch releases fix line numbers (3.11.2 and 3.11.7 give one
function of pydantic's json_schema.py a different line table), and marshal
marks an object shared or not by its reference count in the compiling
process, which depends on what that process compiled before. So a .pyc is
proven by meaning: its header must be the checked-hash header of the locked
source, and its code objects must equal, field by field and constant by
constant, what this Python compiles from that source under the same file
name; only the line table (which lines tracebacks show) may differ. A .pyc
of no locked source, or one that differs in anything else, is named. A
missing .pyc is not a difference: Python then compiles the verified source.
Bytecode whose bytes are not this Python's is unmarshalled only in a Python
process of its own (tooling/pyc_shape.py): marshal is not safe for untrusted data.
"""

from __future__ import annotations

import base64
import configparser
import functools
import hashlib
import http.client
import importlib.util
import io
import json
import marshal
import posixpath
import re
import stat
import subprocess
import sys
import tomllib
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Protocol

from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from tooling import ToolingError, public_url
from tooling.distfiles import File, read_pylock

VENV = "/opt/venv"
FILE, FOLDER, LINK = "file", "dir", "symlink"  # as tooling/layers.py names a node's kind
RECORD, BYTECODE = "RECORD", "bytecode"  # files checked by rule, not by their bytes
PYC_FLAGS_CHECKED_HASH = 0b11
ARCHITECTURES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
KEPT_SUFFIXES = (".pyc", "pyvenv.cfg")  # files whose bytes differences() reads

Fetch = Callable[[str], bytes]


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


# --- which wheel the installer takes ------------------------------------------------------


def image_tags(python_minor: str, architecture: str, glibc: tuple[int, int]) -> list[Tag]:
    """The tags a CPython `python_minor` on glibc `glibc` Linux accepts, most preferred first."""
    machine = ARCHITECTURES.get(architecture, architecture)
    platforms = [f"manylinux_{glibc[0]}_{minor}_{machine}" for minor in range(glibc[1], 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    for minor, name in legacy.items():
        if minor <= glibc[1]:
            index = platforms.index(f"manylinux_2_{minor}_{machine}") + 1
            platforms.insert(index, f"{name}_{machine}")
    platforms.append(f"linux_{machine}")
    version = tuple(int(part) for part in python_minor.split("."))
    return [
        *cpython_tags(version, platforms=platforms),
        *compatible_tags(version, "cp" + "".join(map(str, version)), platforms),
    ]


def choose_wheel(files: Iterable[File], tags: Sequence[Tag]) -> File | None:
    """The wheel an installer takes: the one whose best tag comes first in `tags`."""
    rank = {tag: index for index, tag in enumerate(tags)}
    best: tuple[int, File] | None = None
    for file in files:
        if not file.name.endswith(".whl"):
            continue
        ranks = [rank[tag] for tag in parse_wheel_filename(file.name)[3] if tag in rank]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), file)
    return best[1] if best else None


def applies(marker: str | None, environment: Mapping[str, str]) -> bool:
    return marker is None or Marker(marker).evaluate(dict(environment))


# --- fetching by hash ---------------------------------------------------------------------


def fetch_url(url: str) -> bytes:
    """A wheel's bytes from its URL (what the lock names; its hash is checked by the caller)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data: bytes = response.read()
            return data
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise ExpectedError(f"cannot fetch {public_url(url)}: {error}") from None


def sha256_of(file: File) -> str:
    for digest in file.hashes:
        kind, _, value = digest.partition(":")
        if kind == "sha256":
            return value
    raise ExpectedError(f"the lock names no sha256 for {file.name}: run `nox -s lock`")


def wheel_bytes(file: File, cache_dir: Path, fetch: Fetch) -> bytes:
    """The wheel `file` names, from the cache (keyed by sha256) or fetched; never unverified."""
    digest = sha256_of(file)
    cached = cache_dir / digest / file.name
    if cached.is_file():
        data = cached.read_bytes()
        if sha256_hex(data) == digest:
            return data
    data = fetch(file.url)
    if sha256_hex(data) != digest:
        raise ExpectedError(
            f"{public_url(file.url)} served a {file.name} whose sha256 is not the lock's "
            f"({sha256_hex(data)}, not {digest}): the index or a proxy changed it"
        )
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".partial")
        partial.write_bytes(data)
        partial.replace(cached)
    except OSError as error:
        raise ExpectedError(
            f"cannot cache {file.name} in {cache_dir}: {error.strerror or error} "
            "(XDG_CACHE_HOME chooses where the wheels go)"
        ) from None
    return data


# --- what installing a wheel writes -------------------------------------------------------


def uv_script(python: str, entry_point: str) -> str:
    """The console script uv writes for `module:attribute` (uv 0.13, unix)."""
    module, _, attribute = entry_point.partition(":")
    attribute = attribute.split("[")[0].strip()
    imported = attribute.split(".")[0]
    return (
        f"#!{python}\n"
        "# -*- coding: utf-8 -*-\n"
        "import sys\n"
        f"from {module.strip()} import {imported}\n"
        'if __name__ == "__main__":\n'
        '    if sys.argv[0].endswith("-script.pyw"):\n'
        "        sys.argv[0] = sys.argv[0][:-11]\n"
        '    elif sys.argv[0].endswith(".exe"):\n'
        "        sys.argv[0] = sys.argv[0][:-4]\n"
        f"    sys.exit({attribute}())\n"
    )


def pip_script(python: str, entry_point: str) -> str:
    """The console script pip writes for `module:attribute` (pip 23+, unix)."""
    module, _, attribute = entry_point.partition(":")
    attribute = attribute.split("[")[0].strip()
    return (
        f"#!{python}\n"
        "# -*- coding: utf-8 -*-\n"
        "import re\n"
        "import sys\n"
        f"from {module.strip()} import {attribute.split('.')[0]}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({attribute}())\n"
    )


def entry_point_scripts(text: str) -> dict[str, str]:
    """console_scripts and gui_scripts of an entry_points.txt: script name -> `module:attr`."""
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as error:
        raise ExpectedError(f"an entry_points.txt cannot be read: {error}") from None
    scripts: dict[str, str] = {}
    for section in ("console_scripts", "gui_scripts"):
        if parser.has_section(section):
            scripts.update(parser.items(section))
    return scripts


def rewrite_shebang(data: bytes, python: str) -> bytes:
    """A `.data/scripts` file as uv and pip write it: a first line starting `#!python`
    (`#!pythonw -E`, `#!python3`, any ending) becomes `#!<the venv's python>` and `\n`."""
    if not data.startswith(b"#!python"):
        return data
    _, newline, rest = data.partition(b"\n")
    return b"#!" + python.encode() + b"\n" + (rest if newline else b"")


def wheel_mode(info: zipfile.ZipInfo) -> int:
    return 0o755 if (info.external_attr >> 16) & 0o111 else 0o644


def dist_info_of(names: Iterable[str], wheel_name: str) -> str:
    folders = {name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info")}
    if len(folders) != 1:
        raise ExpectedError(f"{wheel_name} has {len(folders)} .dist-info folders, not one")
    return folders.pop()


def target_of(name: str, data_dir: str, layout: Layout, dist_name: str) -> tuple[str, bool]:
    """(where a wheel member lands under the venv, whether it is a script)."""
    if not name.startswith(data_dir + "/"):
        return f"{layout.site}/{name}", False
    scheme, _, rest = name[len(data_dir) + 1 :].partition("/")
    places = {
        "purelib": layout.site,
        "platlib": layout.site,
        "scripts": "bin",
        "headers": f"include/site/python{layout.python_minor}/{dist_name}",
        "data": "",
    }
    if scheme not in places or not rest:
        raise ExpectedError(f"{data_dir}/{scheme} is not a scheme a wheel may install to")
    return posixpath.join(places[scheme], rest) if places[scheme] else rest, scheme == "scripts"


def safe_member(name: str, wheel_name: str) -> str:
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal.startswith("..") or "\\" in name:
        raise ExpectedError(f"{wheel_name} holds {name!r}, a path outside its folder")
    return normal


def installed_files(
    wheel: bytes, wheel_name: str, layout: Layout, installer: Installer = UV
) -> Expected:
    """Every file installing `wheel` writes under the venv, with its bytes or its rule."""
    try:
        return wheel_files(wheel, wheel_name, layout, installer)
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, EOFError) as error:
        raise ExpectedError(
            f"{wheel_name} is not a wheel an installer can read ({error}): the lock names a "
            "broken file, so no image can have been built from it"
        ) from None


def wheel_files(wheel: bytes, wheel_name: str, layout: Layout, installer: Installer) -> Expected:
    expected: Expected = {}
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        dist_info = dist_info_of((info.filename for info in members), wheel_name)
        data_dir = dist_info.removesuffix(".dist-info") + ".data"
        metadata = HeaderParser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        dist_name = str(metadata.get("Name") or parse_wheel_filename(wheel_name)[0])
        for info in members:
            name = safe_member(info.filename, wheel_name)
            if name == f"{dist_info}/RECORD":
                continue
            path, script = target_of(name, data_dir, layout, dist_name)
            data = archive.read(info)
            if script:
                expected[path] = file_want(rewrite_shebang(data, layout.python), 0o755)
            else:
                expected[path] = file_want(data, wheel_mode(info))
        entry_points = f"{dist_info}/entry_points.txt"
        if entry_points in archive.namelist():
            expected |= scripts_of(archive.read(entry_points).decode(), layout, installer)
        expected |= bytecode_of(archive, members, data_dir, layout, installer)
    expected |= generated_files(f"{layout.site}/{dist_info}", installer)
    return expected


def scripts_of(entry_points: str, layout: Layout, installer: Installer) -> Expected:
    render = pip_script if installer.name == "pip" else uv_script
    return {
        f"bin/{name}": text_want(render(layout.python, target), 0o755)
        for name, target in entry_point_scripts(entry_points).items()
    }


def generated_files(dist_info: str, installer: Installer) -> Expected:
    """INSTALLER, REQUESTED (every pin of a requirements file is requested), RECORD by rule."""
    expected = {
        f"{dist_info}/INSTALLER": text_want(installer.name + ("\n" if installer.newline else "")),
        f"{dist_info}/REQUESTED": text_want(""),
        f"{dist_info}/RECORD": Want(FILE, rule=RECORD),
    }
    if installer.direct_url is not None:
        direct = '{"archive_info": {}, "url": "' + installer.direct_url + '"}'
        expected[f"{dist_info}/direct_url.json"] = text_want(direct)
    return expected


def bytecode_of(
    archive: zipfile.ZipFile,
    members: Iterable[zipfile.ZipInfo],
    data_dir: str,
    layout: Layout,
    installer: Installer,
) -> Expected:
    """The .pyc each source in site-packages may have (see the module's docstring)."""
    expected: Expected = {}
    for info in members:
        path, _ = target_of(info.filename, data_dir, layout, "")
        if not (path.startswith(layout.site + "/") and path.endswith(".py")):
            continue
        folder, name = posixpath.split(path)
        pyc = f"{folder}/__pycache__/{name[:-3]}.{layout.cache_tag}.pyc"
        compiled_as = f"{installer.compiled_prefix}{layout.prefix}/{path}"
        expected[pyc] = Want(
            FILE, rule=BYTECODE, source=archive.read(info), compiled_as=compiled_as
        )
    return expected


def with_folders(expected: Expected) -> Expected:
    """`expected` and every folder its paths need (0755)."""
    folders: Expected = {}
    for path in expected:
        parent = posixpath.dirname(path)
        while parent and parent not in expected and parent not in folders:
            folders[parent] = Want(FOLDER, 0o755)
            parent = posixpath.dirname(parent)
    return {**folders, **expected}


# --- the environment a lock makes ---------------------------------------------------------


def expected_site_packages(
    pylock_path: Path,
    python_minor: str,
    environment: Mapping[str, str],
    glibc: tuple[int, int],
    cache_dir: Path,
    fetch: Fetch = fetch_url,
) -> Expected:
    """What installing the pylock's packages for the image's platform writes under the venv.

    `environment` is the image's PEP 508 marker environment (its platform_machine
    decides the architecture); `glibc` the base image's C library version.
    """
    try:
        text = pylock_path.read_text(encoding="utf-8")
        packages = read_pylock(text)
        markers = pylock_markers(text)
    except (OSError, ValueError, KeyError) as error:
        raise ExpectedError(f"{pylock_path.name} cannot be read: {error}") from None
    same_python(python_minor)
    tags = image_tags(python_minor, environment.get("platform_machine", "x86_64"), glibc)
    layout = Layout(python_minor)
    expected: Expected = {}
    for (name, version), files in sorted(packages.items()):
        if not applies(markers.get((name, version)), environment):
            continue
        wheel = choose_wheel(files, tags)
        if wheel is None:
            raise ExpectedError(
                f"{pylock_path.name} has no wheel of {name} {version} for CPython "
                f"{python_minor} on {environment.get('platform_machine')}: the image cannot "
                "have installed it (--only-binary)"
            )
        data = wheel_bytes(wheel, cache_dir, fetch)
        expected |= installed_files(data, wheel.name, layout)
    return expected


def same_python(python_minor: str) -> None:
    """Bytecode is proven by compiling: only a Python of the image's minor compiles the same."""
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if here != python_minor:
        raise ExpectedError(
            f"verify compiles the image's sources to prove its bytecode: run it with Python "
            f"{python_minor} (.python-version), not {here}"
        )


def pylock_markers(text: str) -> dict[tuple[str, str], str | None]:
    return {
        (canonicalize_name(package["name"]), package["version"]): package.get("marker")
        for package in tomllib.loads(text).get("packages", [])
        if "version" in package
    }


def venv_skeleton(python_minor: str, python_version: str, home: str = "/usr/bin") -> Expected:
    """What `python3 -m venv --without-pip /opt/venv` makes with the base's interpreter in `home`.

    The activate scripts are only ever sourced by hand; they are checked by their
    place and mode (no bytes: they come from the base image's own venv templates).
    """
    config = (
        f"home = {home}\n"
        "include-system-site-packages = false\n"
        f"version = {python_version}\n"
        f"executable = {home}/python{python_minor}\n"
        f"command = {home}/python3 -m venv --without-pip {VENV}\n"
    )
    expected: Expected = {
        "pyvenv.cfg": text_want(config),
        "bin/python": Want(LINK, 0o777, target="python3"),
        "bin/python3": Want(LINK, 0o777, target=f"{home}/python3"),
        f"bin/python{python_minor}": Want(LINK, 0o777, target="python3"),
        "lib64": Want(LINK, 0o777, target="lib"),
        f"include/python{python_minor}": Want(FOLDER, 0o755),
        f"lib/python{python_minor}/site-packages": Want(FOLDER, 0o755),
    }
    for script in ("activate", "activate.csh", "activate.fish", "Activate.ps1"):
        expected[f"bin/{script}"] = Want(FILE, 0o644, rule="activate")
    return expected


class LayerNode(Protocol):
    """What a layer reader knows of one path (tooling/layers.py's Node has these)."""

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


# --- comparing --------------------------------------------------------------------------


def differences(
    expected: Mapping[str, Want], actual: Mapping[str, Found], judge: Judge | None = None
) -> list[str]:
    """One line per path of the venv that is not what `expected` says; [] when none.

    `actual` maps paths under the venv to what the image's stacked layers hold there.
    Bytecode is compared with this Python's compile of the locked source: run it
    with the image's CPython minor (expected_site_packages checks that). `judge`
    compares the bytecode that is not byte for byte this Python's (default: in a
    Python process of its own, see tooling/pyc_shape.py).
    """
    wanted = with_folders(dict(expected))
    verdicts = bytecode_verdicts(wanted, actual, judge or judge_apart)
    problems: list[str] = []
    for path in sorted(wanted.keys() | actual.keys()):
        want, found = wanted.get(path), actual.get(path)
        shown = f"{VENV}/{path}"
        if found is None:
            # Bytecode is optional, and so is a folder: a file it should hold is named.
            if want is not None and want.rule != BYTECODE and want.kind != FOLDER:
                problems.append(f"{shown}: missing ({what(want.kind)} of the lock)")
            continue
        named = mode_problems(shown, found)
        problems += named
        if want is None:
            problems.append(extra(shown, found))
        elif found.kind != want.kind:
            problems.append(f"{shown}: is a {what(found.kind)}, expected a {what(want.kind)}")
        else:
            problems += content_problems(shown, want, found, not named, verdicts.get(path))
    return problems


def what(kind: str) -> str:
    return {FILE: "file", LINK: "symbolic link", FOLDER: "folder"}.get(kind, f"{kind} file")


def extra(shown: str, found: Found) -> str:
    name = posixpath.basename(shown)
    if name.endswith(".pth"):
        return f"{shown}: a .pth file no locked wheel holds (Python runs it at every start)"
    if name.endswith(".pyc"):
        return f"{shown}: bytecode of no locked source (Python would run it)"
    return f"{shown}: a {what(found.kind)} no locked wheel holds"


def mode_problems(shown: str, found: Found) -> list[str]:
    problems = []
    for bit, name in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid")):
        if found.mode & bit and found.kind != LINK:
            problems.append(f"{shown}: has the {name} bit (mode {found.mode & 0o7777:04o})")
    if found.mode & stat.S_IWOTH and found.kind != LINK:
        problems.append(f"{shown}: is world-writable (mode {found.mode & 0o7777:04o})")
    if found.owner != 0:
        problems.append(f"{shown}: is owned by uid {found.owner}, not root (it can rewrite it)")
    return problems


def content_problems(
    shown: str, want: Want, found: Found, check_mode: bool, bytecode: str | None
) -> list[str]:
    problems = []
    if want.kind == LINK:
        if found.target != want.target:
            problems.append(f"{shown}: links to {found.target}, expected {want.target}")
        return problems
    if check_mode and found.mode & 0o7777 != want.mode:
        problems.append(f"{shown}: mode {found.mode & 0o7777:04o}, expected {want.mode:04o}")
    if want.rule == BYTECODE:
        if bytecode:
            problems.append(f"{shown}: {bytecode}")
    elif want.sha256 is not None and found.sha256 != want.sha256:
        problems.append(f"{shown}: {changed(want, found)}")
    return problems


def changed(want: Want, found: Found) -> str:
    if want.text is not None and found.data is not None:
        have = found.data.decode("utf-8", errors="replace").splitlines()
        for index, line in enumerate(want.text.splitlines()):
            if index >= len(have) or have[index] != line:
                got = have[index] if index < len(have) else "(no such line)"
                return f"line {index + 1} is {got!r}, expected {line!r}"
        return "has lines after the expected content"
    return f"changed (sha256 {found.sha256}, the lock's wheel has {want.sha256})"


# --- bytecode ---------------------------------------------------------------------------


Judge = Callable[[Sequence[tuple[str, Want, bytes]]], dict[str, str | None]]
PYC_SHAPE = Path(__file__).with_name("pyc_shape.py")


def bytecode_verdicts(
    wanted: Mapping[str, Want], actual: Mapping[str, Found], judge: Judge
) -> dict[str, str | None]:
    """Each .pyc's problem (None: it is its source's); the hard cases go to `judge` at once."""
    verdicts: dict[str, str | None] = {}
    hard: list[tuple[str, Want, bytes]] = []
    for path, want in wanted.items():
        found = actual.get(path)
        if want.rule != BYTECODE or found is None or found.kind != FILE:
            continue
        problem, settled = quick_verdict(want, found)
        if settled or found.data is None:
            verdicts[path] = problem
        else:
            hard.append((path, want, found.data))
    return verdicts | (judge(hard) if hard else {})


def quick_verdict(want: Want, found: Found) -> tuple[str | None, bool]:
    """(problem, settled): settled unless the body must be unmarshalled to be judged."""
    compiled = compiled_pyc(want)
    if compiled is not None and found.sha256 == sha256_hex(compiled):
        return None, True
    if found.data is None:
        return "bytecode not read from the layer, so it cannot be proven", True
    header_problem = pyc_header_problem(found.data, want.source or b"")
    if header_problem:
        return header_problem, True
    if compiled is None:
        return "bytecode of a source that does not compile (Python would run it)", True
    return None, False


@functools.cache
def compiled_pyc(want: Want) -> bytes | None:
    """The checked-hash .pyc this Python writes for the source; None when it does not compile."""
    source = want.source or b""
    try:
        code = compile(source, want.compiled_as, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError):
        return None
    header = importlib.util.MAGIC_NUMBER + PYC_FLAGS_CHECKED_HASH.to_bytes(4, "little")
    return header + importlib.util.source_hash(source) + marshal.dumps(code)


def pyc_digests(expected: Mapping[str, Want]) -> set[str]:
    """The sha256 of the .pyc files this Python would write: a layer reader need not keep
    the bytes of a .pyc whose sha256 is one of these (most of them), only of the others."""
    digests = (compiled_pyc(want) for want in expected.values() if want.rule == BYTECODE)
    return {sha256_hex(data) for data in digests if data is not None}


def judge_apart(items: Sequence[tuple[str, Want, bytes]]) -> dict[str, str | None]:
    """tooling/pyc_shape.py's verdicts, from a Python process of its own (marshal is unsafe)."""
    request = [
        {
            "path": path,
            "source": base64.b64encode(want.source or b"").decode(),
            "compiled_as": want.compiled_as,
            "body": base64.b64encode(data[16:]).decode(),
        }
        for path, want, data in items
    ]
    done = subprocess.run(
        [sys.executable, "-I", "-c", PYC_SHAPE.read_text(encoding="utf-8")],
        input=json.dumps(request), capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        verdicts: dict[str, str | None] = json.loads(done.stdout) if done.returncode == 0 else {}
    except json.JSONDecodeError:
        verdicts = {}
    crashed = "bytecode that makes Python's unmarshaller fail (Python would refuse or run it)"
    return {path: verdicts.get(path, crashed) for path, _, _ in items}


def pyc_header_problem(data: bytes, source: bytes) -> str | None:
    if len(data) < 16 or data[:4] != importlib.util.MAGIC_NUMBER:
        return f"not bytecode of this Python {sys.version_info[0]}.{sys.version_info[1]}"
    if int.from_bytes(data[4:8], "little") != PYC_FLAGS_CHECKED_HASH:
        return "bytecode without a checked source hash (Python would run it unchecked)"
    if data[8:16] != importlib.util.source_hash(source):
        return "bytecode of another source than the locked one"
    return None
