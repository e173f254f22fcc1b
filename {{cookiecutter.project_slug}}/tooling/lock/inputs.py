"""The inputs of a lock, read and digested once: the `.in` files, the `-c` files, the indexes."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tooling import ToolingError, public_url, without_secrets
from tooling.project import Project
from tooling.tiers import (
    INDEX,
    SolveGroup,
    Tier,
    ancestors,
    logical_lines,
    read_text,
    read_tiers,
    solve_groups,
)

PACKAGE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")  # PEP 508


DIRECT_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*===?\s*[^\s,;*]+\s*(;.*)?$")


UV_CONFIG_FILES = ("pyproject.toml", "uv.toml")


INDEX_VARIABLES = (
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
)


SHARED_CONSTRAINTS = "shared-pins.txt"  # in the snapshot: pins other groups own


UNION_CONSTRAINTS = "union-pins.txt"  # in a tier's snapshot: the pins of its group's union


KEPT_CONSTRAINTS = "kept-pins.txt"  # pins the cooldown would have moved back


class LockError(ToolingError):
    pass


class Interrupted(LockError):
    """uv stopped by a signal or Ctrl-C: nothing is blamed, nothing is written."""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def requirement_digest(text: str) -> str:
    """Digest of a file's requirement lines: comment-only edits are not drift."""
    return sha256("\n".join(line for _, line in logical_lines(text)))


@dataclass(frozen=True)
class Inputs:
    """Every input file as read once in this run: tiers, texts and digests."""

    root: Path
    tiers: dict[str, Tier]
    texts: dict[str, str]  # project-relative posix path -> text
    digests: dict[str, str]

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def files(self, names: Iterable[str]) -> list[str]:
        """The input files of these tiers' closures: `.in` files and their `-c` files."""
        found: dict[str, None] = {}
        for name in names:
            for member in ancestors(self.tiers, name):
                found[self.relative(self.tiers[member].path)] = None
                found.update(dict.fromkeys(map(self.relative, self.tiers[member].constraints)))
        return sorted(found)

    def constraint_files(self) -> set[str]:
        return {self.relative(c) for tier in self.tiers.values() for c in tier.constraints}


def read_inputs(project: Project) -> Inputs:
    tiers = read_tiers(project.requirements_dir)
    texts: dict[str, str] = {}
    for tier in tiers.values():
        texts[tier.path.relative_to(project.root).as_posix()] = tier.text
        for constraint in tier.constraints:
            relative = constraint.relative_to(project.root).as_posix()
            if relative not in texts:
                texts[relative] = read_text(constraint, project.root)
    digests = {relative: requirement_digest(text) for relative, text in texts.items()}
    return Inputs(project.root, tiers, texts, digests)


def unique(lines: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(lines))


def settings_index_lines(project: Project) -> list[str]:
    """Index options from [tool.lockstep], as uv needs them (credentials included)."""
    lines = []
    if index_url := project.settings.get("index-url"):
        lines.append(f"--index-url {index_url}")
    lines += [f"--extra-index-url {url}" for url in project.settings.get("extra-index-urls", [])]
    return lines


def index_lines(project: Project, inputs: Inputs, names: Iterable[str]) -> list[str]:
    """The index lines a lock records for `pip install -r`: never with credentials."""
    lines = settings_index_lines(project)
    for name in names:
        for member in ancestors(inputs.tiers, name):
            lines += inputs.tiers[member].index_lines
    return unique(without_secrets(line) for line in lines)


def environment_indexes(environ: Mapping[str, str] | None = None) -> list[str]:
    """The index URLs the environment gives uv and pip on this machine (a company mirror):
    a pylock may name files there as on the indexes its `.txt` names."""
    found = []
    for variable in INDEX_VARIABLES:
        for item in (os.environ if environ is None else environ).get(variable, "").split():
            name, equals, url = item.partition("=")  # UV_INDEX: `name=URL` or `URL`
            found.append(url if equals and "://" not in name else item)
    return [url for url in found if "://" in url]


def index_sources(project: Project, inputs: Inputs, names: Iterable[str]) -> list[tuple[str, str]]:
    """(public URL, where it is set and how) of every index the given tiers resolve from."""
    sources = []
    if url := project.settings.get("index-url"):
        sources.append((url, "pyproject.toml [tool.lockstep] index-url"))
    for url in project.settings.get("extra-index-urls", []):
        sources.append((url, "pyproject.toml [tool.lockstep] extra-index-urls"))
    for name in names:
        tier = inputs.tiers[name]
        for number, line in logical_lines(tier.text):
            if found := INDEX.match(line):
                where = f"{inputs.relative(tier.path)}:{number} ({without_secrets(line)})"
                sources.append((found.group(2), where))
    return [(public_url(url).rstrip("/"), where) for url, where in sources]


def snapshot(project: Project, inputs: Inputs, files: Iterable[str], folder: Path) -> None:
    """The inputs as read in this run, same layout, for uv to resolve from.

    Each file is written as pip reads it (continuations joined, comments and
    blank lines dropped): uv's parser refuses some pip-valid spellings, such as
    a requirement continued over two lines. The digests stay those of the files.
    """
    for relative in files:
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = [line for _, line in logical_lines(inputs.texts[relative])]
        target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    for name in UV_CONFIG_FILES:  # uv's own settings ([tool.uv.pip], uv.toml) still apply
        if (project.root / name).is_file():
            shutil.copyfile(project.root / name, folder / name)


def project_groups(project: Project, inputs: Inputs) -> list[SolveGroup]:
    return solve_groups(inputs.tiers, project.settings.get("solve-groups", {}))
