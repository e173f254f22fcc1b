"""What the stand-ins for uv share: the answer to a tier's compile against its union."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from tooling import lock, lockfile
from tooling.tiers import ancestors, read_tiers


def tier_compile(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str] | None:
    """uv's answer when the lock compiles one tier against its union or lists files, else None.

    The answer is the union pins the tier's `.in` closure reaches through `# via`
    (a stand-in knows no extras; tests of extras use the real uv).
    """
    if list(argv[:2]) == ["python", "find"]:  # no Python to name: each compile looks itself
        return subprocess.CompletedProcess(argv, 2, "", "error: No interpreter found\n")
    if "pylock.toml" in argv:
        return file_listing(argv, cwd)
    if lock.UNION_CONSTRAINTS not in argv:
        return None
    union = lockfile.parse((cwd / lock.UNION_CONSTRAINTS).read_text()).pins
    tiers = read_tiers(cwd / "requirements")
    name = Path(argv[2]).stem
    origins = {f"-r requirements/{member}.in" for member in ancestors(tiers, name)}
    selected = lock.tier_packages(union, origins)
    lines = []
    for pin in union:
        if pin.name in selected:
            only_this_tier = replace(pin, lines=(lock.pinned(pin),))
            lines += lock.render_pin(only_this_tier, lambda o: o in origins or o in selected)
    Path(argv[argv.index("--output-file") + 1]).write_text("\n".join(lines) + "\n")
    return subprocess.CompletedProcess(argv, 0, "", "")


def file_listing(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """uv's PEP 751 lock of a resolution given as constraints: one wheel per hash."""
    output = Path(argv[argv.index("--output-file") + 1])
    resolution = (cwd / argv[argv.index("--constraint") + 1]).read_text()
    (cwd / output).write_text(pylock_of(resolution, argv))
    return subprocess.CompletedProcess(argv, 0, "", "")


def pylock_of(resolution: str, argv: Sequence[str]) -> str:
    """A requirements lock's pins as uv's PEP 751 lock of them: one wheel per hash.

    WHEEL_TAGS names a hash's wheel tags (default py3-none-any); a hash in UNLISTED gets no
    file. The files are on the --index-url's host when one is given, else on PyPI's file host.
    """
    host = "https://files.pythonhosted.org/packages"
    if "--index-url" in argv:
        host = argv[argv.index("--index-url") + 1].rsplit("/simple", 1)[0] + "/files"
    lines = []
    for pin in lockfile.parse(resolution).pins:
        lines += ["[[packages]]", f'name = "{pin.name}"', f'version = "{pin.version}"']
        for digest in pin.hashes:
            if digest in UNLISTED:
                continue
            kind, value = digest.split(":")
            tags = WHEEL_TAGS.get(digest, "py3-none-any")
            wheel = f"{pin.name}-{pin.version}-{tags}.whl"
            lines += ["[[packages.wheels]]", f'name = "{wheel}"']
            lines += [f'url = "{host}/{wheel}"']
            lines += ["[packages.wheels.hashes]", f'{kind} = "{value}"']
    return "\n".join(lines) + "\n"


WHEEL_TAGS: dict[str, str] = {}  # "sha256:<hex>" -> the tags of the wheel it names
UNLISTED: set[str] = set()  # hashes uv lists no file for (as uv leaves out what no Python installs)
