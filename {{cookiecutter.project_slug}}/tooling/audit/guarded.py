"""pip-audit, run so that no answer of the vulnerability service counts unchecked.

    python -m tooling.audit.guarded LEDGER SERVICE -- PIP-AUDIT-OPTIONS...

runs pip-audit in this process, with every HTTP answer it receives (from the
network or from its own HTTP cache) checked where it arrives: an answer that
does not match `tooling.audit.answers`, an HTTP error status, or a request
that got no answer at all stops pip-audit at once, and the exit code is 3;
otherwise it is pip-audit's.

The file LEDGER then says what was seen: `{"answers": N}`, the number of
answers that passed, plus `"problem"` and `"url"` (as `public_url` shows it)
when one did not. The audit counts no more checked versions than answers
passed, so a pip-audit that asked the service some other way, unseen, cannot
pass either.

Checking pip-audit's report afterwards cannot do this: by then a `null`
answer has already become "no known vulnerabilities".
"""

from __future__ import annotations

import json
import runpy
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import requests

from tooling import public_url
from tooling.audit import EXIT_SERVICE, answers
from tooling.audit.service import foreign_redirect, request_failure


class _Stop(Exception):
    """Raised into pip-audit to end it; not a requests error, so pip-audit does not catch it."""


@dataclass
class Ledger:
    answers: int = 0  # answers that passed the check
    problem: str | None = None  # the first that did not, in words
    url: str | None = None  # ... and where it came from

    def save(self, path: Path) -> None:
        seen = {key: value for key, value in asdict(self).items() if value is not None}
        path.write_text(json.dumps(seen), encoding="utf-8")


def _seconds(timeout: Any) -> float | None:
    """requests' timeout option: seconds, or a (connect, read) pair."""
    if isinstance(timeout, tuple):
        timeout = timeout[-1]
    return float(timeout) if isinstance(timeout, int | float) else None


def check_answers(service: str, ledger: Ledger) -> None:
    """From now on, every answer a requests session receives is checked first."""
    schema = answers.ANSWERS.get(service)  # ESMS answers are not checked, only delivered
    send = requests.Session.send

    def stop(problem: str, url: str) -> NoReturn:
        if ledger.problem is None:
            ledger.problem, ledger.url = problem, url
        raise _Stop(problem)

    def refuse_foreign_redirect(response: requests.Response, **_: Any) -> None:
        """A response hook: requests runs it on a redirect before following it."""
        if problem := foreign_redirect(response):
            stop(problem, public_url(response.request.url or ""))

    def checked_send(
        session: requests.Session, request: requests.PreparedRequest, **options: Any
    ) -> requests.Response:
        url = public_url(request.url or "")
        hooks = request.hooks.setdefault("response", [])
        if refuse_foreign_redirect not in hooks:
            hooks.append(refuse_foreign_redirect)
        try:
            response = send(session, request, **options)
        except requests.RequestException as error:
            stop(request_failure(error, _seconds(options.get("timeout"))), url)
        if response.is_redirect:  # requests follows it with another send
            return response
        if service == "pypi" and response.status_code == 404:
            return response  # a package PyPI does not know: pip-audit names it as not checked
        if problem := answers.answer_fault(response.status_code, response.content, schema):
            stop(problem, url)
        ledger.answers += 1
        return response

    requests.Session.send = checked_send


def run_pip_audit(service: str, options: Sequence[str], ledger: Ledger) -> int:
    """pip-audit's exit code, or 3 when an answer did not pass."""
    check_answers(service, ledger)
    sys.argv = ["pip-audit", *options]
    code: int | str | None = 0
    try:
        runpy.run_module("pip_audit", run_name="__main__", alter_sys=True)
    except _Stop:
        pass
    except SystemExit as exit:
        code = exit.code
    if ledger.problem is not None:
        return EXIT_SERVICE
    if isinstance(code, str):  # sys.exit("message")
        print(code, file=sys.stderr)
    return code if isinstance(code, int) else 1 if code else 0


def main(argv: Sequence[str]) -> int:
    if len(argv) < 3 or argv[2] != "--":
        raise SystemExit("usage: python -m tooling.audit.guarded LEDGER SERVICE -- OPTIONS...")
    ledger = Ledger()
    try:
        return run_pip_audit(argv[1], argv[3:], ledger)
    finally:
        ledger.save(Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
