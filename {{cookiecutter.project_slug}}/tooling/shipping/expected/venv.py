"""The venv a lock makes: the skeleton `python -m venv` writes and the pylock's wheels installed."""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from packaging.utils import canonicalize_name

from tooling.distfiles import read_pylock
from tooling.shipping.expected.install import installed_files
from tooling.shipping.expected.wants import (
    FILE,
    FOLDER,
    LINK,
    VENV,
    Expected,
    ExpectedError,
    Layout,
    Want,
    text_want,
)
from tooling.shipping.expected.wheels import (
    Fetch,
    applies,
    choose_wheel,
    fetch_url,
    image_tags,
    wheel_bytes,
)


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
