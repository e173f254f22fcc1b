"""A lock's header: what it was made from (input digests, options, its body's digest), read back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tooling import lockfile, without_secrets
from tooling.cooldown import Cooldown
from tooling.lock.inputs import Inputs, settings_index_lines, sha256
from tooling.project import (
    GENERATED_BY,
    Project,
)

FORMAT = "2"


INPUT_LINE = re.compile(r"^#   (\S+) sha256:([0-9a-f]{64})$")


LINE_WITH_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")  # not U+0085, U+2028...


BODY_LINE = re.compile(r"^# body sha256:([0-9a-f]{64})")


DERIVED_LINE = re.compile(r"^# union pins sha256:([0-9a-f]{64})")


def compile_options(project: Project) -> list[str]:
    options = ["--universal", "--python-version", project.python_version]
    for line in settings_index_lines(project):
        options += line.split(" ", 1)
    return options


def options_line(project: Project) -> str:
    cooldown = Cooldown.of(project).recorded()
    return without_secrets(
        f"# options: format={FORMAT} " + " ".join(compile_options(project)) + cooldown
    )


def header(project: Project, inputs: Inputs, title: str, files: list[str]) -> list[str]:
    lines = [f"# {title}", GENERATED_BY, "# inputs (sha256 of their requirement lines):"]
    lines += [f"#   {relative} sha256:{inputs.digests[relative]}" for relative in files]
    lines.append(options_line(project))
    return lines


@dataclass(frozen=True)
class Recorded:
    """What a lock's header says it was made from."""

    inputs: dict[str, str]
    options: str | None
    body_digest: str | None
    derived_from: str | None  # a tier's lock: digest of its packages' pins in the union
    body: str  # everything after the header


@lru_cache(maxsize=64)  # the check and the lock ask several times about each lock
def recorded(text: str) -> Recorded:
    inputs: dict[str, str] = {}
    options = body_digest = derived_from = None
    end = len(text)
    for found in LINE_WITH_END.finditer(text):
        if not found.group().startswith("#"):
            end = found.start()
            break
        line = found.group().rstrip("\r\n")
        if match := INPUT_LINE.match(line):
            inputs[match.group(1)] = match.group(2)
        elif line.startswith("# options:"):
            options = line
        elif match := BODY_LINE.match(line):
            body_digest = match.group(1)
        elif match := DERIVED_LINE.match(line):
            derived_from = match.group(1)
    return Recorded(inputs, options, body_digest, derived_from, text[end:])


def stale_reasons(
    project: Project, inputs: Inputs, lock: str, text: str, files: list[str]
) -> list[str]:
    """Why a lock no longer matches its inputs; empty when it is current."""
    header_of = recorded(text)
    if header_of.options != (now := options_line(project)):
        was = (header_of.options or "none recorded").removeprefix("# options: ")
        return [
            f"{lock} was locked with other options ({was}; now {now.removeprefix('# options: ')})"
        ]
    reasons = []
    for name in files:
        if name not in header_of.inputs:
            reasons.append(f"{name} is new since {lock} was locked")
        elif header_of.inputs[name] != inputs.digests[name]:
            reasons.append(f"{name} changed since {lock} was locked")
    reasons += [f"{name} was removed" for name in header_of.inputs if name not in files]
    return reasons


def body_damage(text: str) -> str | None:
    """Why a lock's body does not match the digest in its header; None when it does."""
    header_of = recorded(text)
    if header_of.body_digest is None:
        return "records no digest of its body"
    if sha256(header_of.body) != header_of.body_digest:
        return "does not match the digest of its body (cut or edited by hand)"
    return None


def read_lock(path: Path) -> str | None:
    """A lock's text with LF line endings; None when it is missing, "" when unreadable."""
    try:
        return path.read_bytes().decode("utf-8").replace("\r\n", "\n")
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, OSError):
        return ""  # unreadable: stale, and re-derived by the next lock


def line_ending_problem(path: Path, lock_name: str) -> list[str]:
    """A lock with CRLF line endings (a Windows checkout with core.autocrlf), named as such."""
    try:
        crlf = b"\r\n" in path.read_bytes()
    except OSError:
        return []
    if not crlf:
        return []
    return [
        f"{lock_name} has CRLF line endings (a Windows checkout?): `nox -s lock` rewrites it "
        "with LF, which .gitattributes keeps"
    ]


def lock_damage(text: str, source: str) -> str | None:
    """Why a lock cannot be trusted (unreadable, or its body cut or edited); None when it can."""
    if not text:
        return "empty, or not UTF-8"
    try:
        lockfile.parse(text, source)
    except lockfile.LockFileError as error:
        return f"line {error.line}: {error.reason}" if error.line else error.reason
    if recorded(text).body_digest is not None:  # older locks record none
        return body_damage(text)
    return None
