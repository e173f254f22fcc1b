"""Comparing: one line per path of the venv that is not what the lock says it must be."""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Mapping

from tooling.shipping.expected.bytecode import Judge, bytecode_verdicts, judge_apart
from tooling.shipping.expected.install import with_folders
from tooling.shipping.expected.wants import BYTECODE, FILE, FOLDER, LINK, VENV, Found, Want


def differences(
    expected: Mapping[str, Want], actual: Mapping[str, Found], judge: Judge | None = None
) -> list[str]:
    """One line per path of the venv that is not what `expected` says; [] when none.

    `actual` maps paths under the venv to what the image's stacked layers hold there.
    Bytecode is compared with this Python's compile of the locked source: run it
    with the image's CPython minor (expected_site_packages checks that). `judge`
    compares the bytecode that is not byte for byte this Python's (default: in a
    Python process of its own, see tooling/shipping/pyc_shape.py).
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
