"""tooling.audit.sbom: one reproducible CycloneDX SBOM per tier, checked against its lock."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.audit_support import LOCK_BASE, LOCK_WEB, LOCKS, load, tool_env, write

sbom = load("audit.sbom")
lockfile = load("lockfile")
audit = load("audit")


def test_problems_name_missing_packages_and_hashes(tmp_path: Path) -> None:
    lock = write(tmp_path / "web.txt", LOCK_WEB)
    listed = {
        "components": [
            {
                "name": "Jinja2",
                "version": "2.10",
                "externalReferences": [{"hashes": [{"alg": "SHA-256", "content": "ccc"}]}],
            },
            {
                "name": "colorama",
                "version": "0.4.6",
                "externalReferences": [{"hashes": [{"alg": "SHA-256", "content": "aaa"}]}],
            },
        ]
    }
    path = write(tmp_path / "web.cdx.json", json.dumps(listed))
    assert sbom.sbom_problems(lock, path) == [
        "colorama==0.4.6 lacks 1 hash(es)",
        "requests==2.32.3 is missing",
    ]


def test_the_command_line_asks_for_reproducible_json() -> None:
    argv = sbom.sbom_argv(Path("requirements/base.txt"), Path("sbom/base.cdx.json"))
    assert argv == [
        "cyclonedx-py",
        "requirements",
        "requirements/base.txt",
        "--output-reproducible",
        "--spec-version",
        "1.6",
        "--output-format",
        "JSON",
        "-o",
        "sbom/base.cdx.json",
    ]


def test_sboms_are_all_or_nothing(tmp_path: Path) -> None:
    locks = {
        "base": write(tmp_path / "base.txt", LOCK_BASE),
        "web": write(tmp_path / "web.txt", LOCK_WEB),
    }
    good = {
        "components": [
            {
                "name": "requests",
                "version": "2.32.3",
                "externalReferences": [{"hashes": [{"content": "ddd"}]}],
            }
        ]
    }

    def runner(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        if "base.txt" in argv[2]:
            write(Path(argv[argv.index("-o") + 1]), json.dumps(good))
            return subprocess.CompletedProcess(argv, 0, "", "")
        return subprocess.CompletedProcess(argv, 1, "", "cannot parse web.txt")

    with pytest.raises(audit.AuditError, match=r"cyclonedx-py failed for .*web\.txt: cannot parse"):
        sbom.write_sboms(locks, tmp_path / "sbom", env={}, run=runner)
    assert list((tmp_path / "sbom").iterdir()) == []
    said: list[str] = []
    written = sbom.write_sboms(
        {"base": locks["base"]}, tmp_path / "sbom", env={}, run=runner, progress=said.append
    )
    assert written == {"base": tmp_path / "sbom" / "base.cdx.json"}
    assert said == ["writing 1 SBOMs with cyclonedx-py: base", "base: SBOM made (1 of 1)"]
    assert json.loads(written["base"].read_text()) == good


@pytest.mark.slow
def test_real_sbom_is_byte_identical_and_lists_every_package_with_hashes(tmp_path: Path) -> None:
    pytest.importorskip("cyclonedx_py")
    shutil.copytree(LOCKS, tmp_path / "requirements", ignore=shutil.ignore_patterns("*.md"))
    locks = {"web": tmp_path / "requirements" / "web.txt"}  # web holds all of base too
    command = (sys.executable, "-m", "cyclonedx_py")
    first = sbom.write_sboms(locks, tmp_path / "sbom1", env=tool_env(), command=command)
    second = sbom.write_sboms(locks, tmp_path / "sbom2", env=tool_env(), command=command)
    assert first["web"].name == "web.cdx.json"
    assert first["web"].read_bytes() == second["web"].read_bytes()
    assert sbom.sbom_problems(locks["web"], first["web"]) == []
    web = json.loads(first["web"].read_text())
    assert {c["name"] for c in web["components"]} == {
        p.name for p in lockfile.read(locks["web"]).pins
    }
    assert "serialNumber" not in web and "timestamp" not in web["metadata"]
    assert [p.name for p in (tmp_path / "sbom1").iterdir()] == ["web.cdx.json"]
