"""pip-audit, run so that no answer of the vulnerability service counts unchecked.

    python -m tooling.audit.guarded TROUBLE SERVICE -- PIP-AUDIT-OPTIONS...

runs pip-audit in this process, with every HTTP answer it receives (from the
network or from its own HTTP cache) checked where it arrives: an answer that
does not match `tooling.audit.answers`, an HTTP error status, or a request
that got no answer at all stops pip-audit at once. The first such problem is
written to the file TROUBLE as `{"problem": ..., "url": ...}` (the URL as
`shown_url` shows it) and the exit code is 3; otherwise it is pip-audit's.

Checking pip-audit's report afterwards cannot do this: by then a `null`
answer has already become "no known vulnerabilities".
"""

from __future__ import annotations

import json
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import requests

from tooling.audit import EXIT_SERVICE, answers
from tooling.audit.service import request_failure, shown_url


class _Stop(Exception):
    """Raised into pip-audit to end it; not a requests error, so pip-audit does not catch it."""


def _seconds(timeout: Any) -> float | None:
    """requests' timeout option: seconds, or a (connect, read) pair."""
    if isinstance(timeout, tuple):
        timeout = timeout[-1]
    return float(timeout) if isinstance(timeout, int | float) else None


def check_answers(service: str, trouble: Path) -> None:
    """From now on, every answer a requests session receives is checked first."""
    schema = answers.ANSWERS.get(service)  # ESMS answers are not checked, only delivered
    send = requests.Session.send

    def stop(problem: str, url: str) -> NoReturn:
        if not trouble.exists():
            trouble.write_text(json.dumps({"problem": problem, "url": url}), encoding="utf-8")
        raise _Stop(problem)

    def checked_send(
        session: requests.Session, request: requests.PreparedRequest, **options: Any
    ) -> requests.Response:
        url = shown_url(request.url or "")
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
        return response

    requests.Session.send = checked_send


def main(argv: Sequence[str]) -> int:
    if len(argv) < 3 or argv[2] != "--":
        raise SystemExit("usage: python -m tooling.audit.guarded TROUBLE SERVICE -- OPTIONS...")
    trouble, service, _, *options = argv
    check_answers(service, Path(trouble))
    sys.argv = ["pip-audit", *options]
    code: int | str | None = 0
    try:
        runpy.run_module("pip_audit", run_name="__main__", alter_sys=True)
    except _Stop:
        pass
    except SystemExit as exit:
        code = exit.code
    if Path(trouble).exists():
        return EXIT_SERVICE
    if isinstance(code, str):  # sys.exit("message")
        print(code, file=sys.stderr)
    return code if isinstance(code, int) else 1 if code else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
