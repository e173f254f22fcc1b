"""Bytecode proven by meaning: a .pyc's header and code objects against this Python's compile.

The Dockerfile compiles with SOURCE_DATE_EPOCH set, so every .pyc is
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
process of its own (tooling/shipping/pyc_shape.py): marshal is not safe for untrusted data.
That process is the image's own CPython release when one is found here (this Python, or
one `uv python find` knows): patch releases also change the code of a few functions
(3.11.2 and 3.11.7 compile one function of numpy's _arraypad_impl.py to different
instructions), so a .pyc is proven against the release that wrote it. Without that
release, a .pyc that differs is named with the release to install; never "verified".
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import marshal
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tooling import ToolingError, lock
from tooling.shipping.expected.wants import BYTECODE, FILE, Found, Want, sha256_hex
from tooling.shipping.pyc_shape import NOT_ITS_SOURCES

PYC_FLAGS_CHECKED_HASH = 0b11
Judge = Callable[[Sequence[tuple[str, Want, bytes]]], dict[str, str | None]]
PYC_SHAPE = Path(__file__).parent.parent / "pyc_shape.py"


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


def judge_for(release: str) -> Judge:
    """judge_apart in the image's CPython `release` (3.11.2) when found, else in this Python,
    naming the release to install in the verdicts its compile could not prove."""
    python = python_of_release(release)
    if python is not None:
        return functools.partial(judge_apart, python=python)
    this = platform.python_version()

    def judge(items: Sequence[tuple[str, Want, bytes]]) -> dict[str, str | None]:
        return {
            path: verdict if verdict != NOT_ITS_SOURCES else (
                f"bytecode that is not what Python {this} compiles from its source, and the "
                f"image's Python is {release}: install it (`uv python install {release}`) so "
                "verify compiles the source as the image did"
            )
            for path, verdict in judge_apart(items).items()
        }  # fmt: skip

    return judge


@functools.cache
def python_of_release(release: str) -> str | None:
    """An interpreter of exactly this CPython release: this one, or one uv finds (no download)."""
    if platform.python_implementation() == "CPython" and platform.python_version() == release:
        return sys.executable
    try:
        found = subprocess.run(
            [lock.find_uv(), "python", "find", "--no-project", f"cpython@{release}"],
            capture_output=True, text=True, check=False, timeout=30,
            env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired, ToolingError):
        return None
    path = found.stdout.strip()
    return path if found.returncode == 0 and path else None


def judge_apart(
    items: Sequence[tuple[str, Want, bytes]], python: str = sys.executable
) -> dict[str, str | None]:
    """tooling/shipping/pyc_shape.py's verdicts, from a Python process of its own (marshal is unsafe)."""
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
        [python, "-I", "-c", PYC_SHAPE.read_text(encoding="utf-8")],
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
