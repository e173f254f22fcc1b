"""What installing one wheel writes under the venv: its files, scripts, RECORD and bytecode."""

from __future__ import annotations

import configparser
import io
import posixpath
import zipfile
from collections.abc import Iterable
from email.parser import HeaderParser

from packaging.utils import parse_wheel_filename

from tooling.shipping.expected.wants import (
    BYTECODE,
    FILE,
    FOLDER,
    RECORD,
    UV,
    Expected,
    ExpectedError,
    Installer,
    Layout,
    Want,
    file_want,
    text_want,
)


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
    """The .pyc each source in site-packages may have (see tooling/shipping/expected/bytecode.py)."""
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
