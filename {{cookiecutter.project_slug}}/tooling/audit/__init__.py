"""Supply-chain checks for the hashed locks: pip-audit, safety and CycloneDX SBOMs.

One job per module:

- ``locks``      which pinned versions the locks hold, whatever their markers
- ``service``    which vulnerability service is asked, and what is wrong with it
- ``answers``    what a well-formed answer of each service looks like
- ``guarded``    pip-audit, with every answer it receives checked before it counts
- ``scan``       pip-audit over those pinned versions, one outcome per version
- ``allowlist``  the accepted findings in ``audit-allowlist.toml``
- ``severity``   severities of advisories (CVSS 3 and 4 through ``cvss``)
- ``policy``     the verdict: findings, unchecked versions, allow-list, exit code
- ``report``     the table, the JSON report and the step-summary section
- ``safety``     a second opinion from safety
- ``sbom``       one CycloneDX SBOM per tier

Exit codes, shared by every check here::

    0  clean
    1  findings, a pinned version that could not be checked, or an expired allowance
    2  configuration error (bad allow-list, missing lock, unknown service, ...)
    3  nothing was checked: the vulnerability service is unreachable, failing,
       answered something that is not a vulnerability report or knows none of
       the packages, or the locks pin nothing

Run it as ``python -m tooling.audit {pip-audit,safety,sbom} --help``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

from tooling import ToolingError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_CONFIG = 2
EXIT_SERVICE = 3
NOT_A_REPORT = "answered something that is not a vulnerability report"

Runner = Callable[[Sequence[str], Mapping[str, str]], subprocess.CompletedProcess[str]]


class AuditError(ToolingError):
    """A one-line reason the check could not give a verdict, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a tool, capturing its output; a missing executable is a configuration error.

    The tool is looked for beside the Python running this first, so a session's
    tools are found when its Python is called without activating the session.
    """
    beside = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", os.defpath)])
    executable = shutil.which(argv[0], path=beside)
    if executable is None:
        raise AuditError(f"{argv[0]} is not installed here; run the check through its nox session")
    return subprocess.run(
        [executable, *argv[1:]], env=dict(env), capture_output=True, text=True, check=False
    )


def clip(text: str, limit: int = 300) -> str:
    """Text on one line, shortened to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
