"""Shared pieces of the audit tests: the template's tooling package, fakes, fixtures.

`{{cookiecutter.project_slug}}/tooling/` is copied without rendering, so its
modules import as they are, straight from the template folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

TEMPLATE = Path(__file__).resolve().parent.parent
PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OSV_FIXTURES = FIXTURES / "osv"
SAFETY_DB = FIXTURES / "safety-db"
LOCKS = FIXTURES / "locks"
SHARED_OSV = TEMPLATE.parent / "shared" / "data" / "osv-pypi"  # an extra, when present
NO_KNOWN = "no known vulnerabilities"
OSV = {"PIP_AUDIT_VULNERABILITY_SERVICE": "osv", "PIP_AUDIT_OSV_URL": "http://127.0.0.1:1/v1/query"}


def load(module: str) -> ModuleType:
    """Import tooling.<module> from the template folder (registering `tooling` once).

    Without writing __pycache__ into the template, where a bake would copy it.
    """
    sys.dont_write_bytecode = True
    package_dir = PROJECT_TEMPLATE / "tooling"
    loaded = sys.modules.get("tooling")
    if loaded is None:
        spec = importlib.util.spec_from_file_location(
            "tooling", package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
        )
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules["tooling"] = loaded
        spec.loader.exec_module(loaded)
    assert Path(loaded.__file__ or "").resolve().parent == package_dir.resolve()
    return importlib.import_module(f"tooling.{module}")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def vuln(id: str, *aliases: str, fix: Sequence[str] = ()) -> dict[str, Any]:
    return {"id": id, "aliases": list(aliases), "fix_versions": list(fix), "description": "d"}


class FakePipAudit:
    """Stands in for pip-audit: reads the input it is given and writes a JSON report.

    `vulns` maps (name, version) to the advisories to report; `skipped` maps a
    name to a skip reason; `omitted` names are left out of the report. With a
    `returncode` it fails instead, printing `stderr`, and writes nothing. With
    `trouble` it stops as `tooling.audit.guarded` does when the service fails:
    exit 3, that problem in its ledger, no report. Its ledger counts one
    checked answer per version it reports checked, or `answers`.
    """

    def __init__(
        self,
        vulns: Mapping[tuple[str, str], list[dict[str, Any]]] | None = None,
        *,
        skipped: Mapping[str, str] | None = None,
        omitted: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
        trouble: Mapping[str, str] | None = None,
        answers: int | None = None,
    ) -> None:
        self.vulns = dict(vulns or {})
        self.skipped = dict(skipped or {})
        self.omitted = set(omitted)
        self.returncode = returncode
        self.stderr = stderr
        self.trouble = trouble
        self.answers = answers
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.inputs: list[list[str]] = []

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(argv), dict(env)))
        lines = [
            f"{package['name']}=={package['version']}"
            for path in sorted(Path(argv[argv.index("--locked") + 1]).glob("pylock.*.toml"))
            for package in tomllib.loads(path.read_text())["packages"]
        ]
        self.inputs.append(lines)
        ledger = Path(argv[argv.index("tooling.audit.guarded") + 1])
        if self.trouble is not None:
            ledger.write_text(json.dumps({"answers": 0, **self.trouble}))
            return subprocess.CompletedProcess(argv, 3, "", self.stderr)
        if self.returncode is not None:
            ledger.write_text(json.dumps({"answers": 0}))
            return subprocess.CompletedProcess(argv, self.returncode, "", self.stderr)
        dependencies: list[dict[str, Any]] = []
        for line in lines:
            name, version = line.split("==")
            if name in self.omitted:
                continue
            if name in self.skipped:
                dependencies.append({"name": name, "skip_reason": self.skipped[name]})
                continue
            found = self.vulns.get((name, version), [])
            dependencies.append({"name": name, "version": version, "vulns": found})
        output = Path(argv[argv.index("-o") + 1])
        output.write_text(json.dumps({"dependencies": dependencies, "fixes": []}))
        checked = sum("skip_reason" not in d for d in dependencies)
        ledger.write_text(
            json.dumps({"answers": checked if self.answers is None else self.answers})
        )
        returncode = 1 if any(d.get("vulns") for d in dependencies) else 0
        return subprocess.CompletedProcess(argv, returncode, "", self.stderr)


# Two tiers written by hand: web pins colorama only on Windows, and legacy pins
# requests at another version than base.
# Two accepted findings, one named by an alias and a package.
ALLOWLIST = """\
[[ignore]]
id = "PYSEC-2019-217"
reason = "The sandbox is not used."
expires = 2030-01-31

[[ignore]]
id = "CVE-2020-28493"
package = "Jinja2"
reason = "urlize is never called."
expires = "2030-01-31"
"""


LOCK_BASE = "requests==2.32.3 \\\n    --hash=sha256:ddd\n"
LOCK_WEB = """\
# comment
--index-url https://pypi.org/simple
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:aaa \\
    --hash=sha256:bbb
    # via click
Jinja2[i18n]==2.10 \\
    --hash=sha256:ccc
    # via -r web.in
requests==2.32.3 \\
    --hash=sha256:ddd
"""
LOCK_LEGACY = "requests==2.19.0 \\\n    --hash=sha256:eee\n"


def two_tier_locks(folder: Path) -> dict[str, Path]:
    return with_pylocks(
        {
            "base": write(folder / "requirements" / "base.txt", LOCK_BASE),
            "web": write(folder / "requirements" / "web.txt", LOCK_WEB),
        }
    )


def write_lock(path: Path, text: str) -> Path:
    """Write a tier lock and its pylock beside it, as `nox -s lock` does."""
    return with_pylocks({path.stem: write(path, text)})[path.stem]


def pinned(folder: Path, *specs: str) -> tuple[list[Any], dict[str, Path]]:
    """The pins of a one-tier lock of `name==version` specs, and its pylock, as the audit reads them."""
    locks = load("audit.locks")
    lines = [f"{spec} \\\n    --hash=sha256:{n:064x}\n" for n, spec in enumerate(specs)]
    found = with_pylocks({"base": write(folder / "requirements" / "base.txt", "".join(lines))})
    return locks.pinned_versions(found), locks.pylocks_of(found)


def with_pylocks(locks: dict[str, Path]) -> dict[str, Path]:
    """Write each tier lock's PEP 751 lock beside it, as `nox -s lock` does; return `locks`.

    Each hash stands for an sdist of its own on a made-up file host.
    """
    lockfile, pylock, distfiles = load("lockfile"), load("pylock"), load("distfiles")
    for tier, path in locks.items():
        text = path.read_text(encoding="utf-8")
        pins = lockfile.parse(text, path.name).pins
        files = {
            digest: distfiles.File(
                f"{pin.name}-{pin.version}-{n}.tar.gz",
                f"https://files.example/{pin.name}-{pin.version}-{n}.tar.gz",
                (digest,),
            )
            for pin in pins
            for n, digest in enumerate(pin.hashes)
        }
        header = [f"# {path.parent.name}/pylock.{tier}.toml: test lock"]
        rendered = pylock.render(
            f"{path.parent.name}/{path.name}", text, pins, files, ">=3.11", header
        )
        pylock.path_of(path.parent, tier).write_text(rendered, encoding="utf-8")
    return locks


def tool_env() -> dict[str, str]:
    """The environment the real tools run in: no PIP_AUDIT_* leaking in, loopback not proxied."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_AUDIT_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env
