"""The vulnerability service pip-audit asks, and what is wrong with it when it fails.

Failures are described in words (which service, which URL, and the cause: no
DNS answer, connection refused, TLS failure, timeout, HTTP status), never as a
Python exception, because that line is what a user reads first. A URL is only
ever shown without its user info, query string and fragment, where
credentials and tokens live.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

from tooling import public_url
from tooling.audit import EXIT_CONFIG, EXIT_SERVICE, NOT_A_REPORT, AuditError

SERVICES = ("pypi", "osv", "esms")
DEFAULT_OSV_URL = "https://api.osv.dev/v1/query"
TIMEOUT = 15.0


@dataclass(frozen=True)
class Service:
    name: str
    osv_url: str | None = None  # as given: it may carry credentials, so never show it

    def describe(self) -> str:
        return f"{self.name} at {public_url(self.osv_url)}" if self.osv_url else self.name

    def subject(self) -> str:
        """How messages name it: "the osv vulnerability service (https://...)"."""
        where = f" ({public_url(self.osv_url)})" if self.osv_url else ""
        return f"the {self.name} vulnerability service{where}"

    @property
    def records_url(self) -> str | None:
        """Where OSV serves whole records: https://host/v1/query -> https://host/v1/vulns."""
        if not self.osv_url:
            return None
        parts = urlsplit(self.osv_url)
        base, _, last = parts.path.rstrip("/").rpartition("/")
        return parts._replace(path=f"{base}/vulns").geturl() if last == "query" else None

    def record_url(self, advisory: str) -> str | None:
        """The URL of one OSV record, keeping the query URL's credentials and token."""
        base = self.records_url
        if base is None:
            return None
        parts = urlsplit(base)
        return parts._replace(path=f"{parts.path}/{advisory}").geturl()


def osv_url_off_the_command_line(
    arguments: Sequence[str], variable: str = "LOCKSTEP_OSV_URL"
) -> tuple[list[str], dict[str, str]]:
    """`arguments` with `--osv-url URL` turned into `--osv-url-env VARIABLE`, and that variable.

    nox echoes every command it runs, and again when it fails; a login or token
    in the URL must not be in it.
    """
    kept: list[str] = []
    env: dict[str, str] = {}
    rest = iter(arguments)
    for argument in rest:
        option, equals, value = argument.partition("=")
        if option != "--osv-url":
            kept.append(argument)
            continue
        url = value if equals else next(rest, None)
        if not url:  # missing or empty: left for the command line to refuse
            kept += [argument] if equals or url is None else [argument, url]
            continue
        kept += ["--osv-url-env", variable]
        env[variable] = url
    return kept, env


def resolve_service(
    env: Mapping[str, str], service: str | None = None, osv_url: str | None = None
) -> Service:
    """The service pip-audit will ask: explicit values, then PIP_AUDIT_* env, then pypi."""
    name = (service or env.get("PIP_AUDIT_VULNERABILITY_SERVICE") or "pypi").strip().lower()
    if name not in SERVICES:
        raise AuditError(
            f"unknown vulnerability service {name!r} (from --service or "
            f"PIP_AUDIT_VULNERABILITY_SERVICE); choose one of {', '.join(SERVICES)}",
            EXIT_CONFIG,
        )
    if name != "osv":
        if osv_url:
            raise AuditError("--osv-url only applies to the osv service; add --service osv")
        return Service(name)
    url = osv_url or env.get("PIP_AUDIT_OSV_URL") or DEFAULT_OSV_URL
    if not re.match(r"https?://[^/\s]+", url):
        source = "--osv-url" if osv_url else "PIP_AUDIT_OSV_URL"
        scheme = re.match(r"[a-zA-Z][\w+.-]*://", url)  # the rest may hold secrets: not shown
        what = f"starts with {scheme[0]}" if scheme else "is not a URL"
        raise AuditError(
            f"the OSV URL from {source} {what}; give an http(s) URL such as {DEFAULT_OSV_URL}"
        )
    return Service("osv", url)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and every exception behind it (urllib3 keeps the cause in `reason`)."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        behind = [getattr(current, "reason", None), current.__cause__, current.__context__]
        behind += list(current.args)
        pending += [e for e in behind if isinstance(e, BaseException)]


def request_failure(error: BaseException, timeout: float | None) -> str:
    """What a request that raised `error` met, in words: DNS, refused, TLS, timeout, a cut answer."""
    causes = list(_causes(error))
    for cause in causes:
        if isinstance(cause, http.client.IncompleteRead):
            return f"{NOT_A_REPORT}: the answer was cut short"
        if isinstance(cause, socket.gaierror):
            return "is unreachable: its host name has no DNS answer"
        if isinstance(cause, ConnectionRefusedError):
            return "is unreachable: connection refused"
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "verify_message", None) or cause.reason or "handshake failed"
            return f"is unreachable: TLS failed ({str(reason).replace('_', ' ').lower()})"
        if isinstance(cause, TimeoutError):
            within = f" within {timeout:g} s" if timeout else ""
            return f"did not answer{within}"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return f"is unreachable: {cause.strerror.lower()}"
    return f"is unreachable ({type(error).__name__})"


def shown_host(parts: SplitResult) -> str:
    """HOST[:PORT] of a URL, without its user info."""
    return parts.netloc.rpartition("@")[2]


def foreign_redirect(response: Any) -> str | None:
    """The problem with a redirect (a requests Response) to another host, else None.

    Only the service asked is trusted to answer; requests would follow a redirect
    anywhere, and the audit would name the first host as the one that answered.
    """
    if not response.is_redirect:
        return None
    source = urlsplit(response.request.url or "")
    target = urlsplit(urljoin(response.request.url or "", response.headers["location"]))
    if (target.hostname or "") == (source.hostname or ""):
        return None
    return (
        f"redirected the query from {shown_host(source)} to another host, "
        f"{shown_host(target) or '(none)'}: only the host of the OSV URL may answer; give the "
        "URL of the service that answers, if it is trusted"
    )


def fetch_record(
    service: Service, advisory: str, timeout: float = TIMEOUT
) -> dict[str, Any] | None:
    """One OSV record by id; None when the service does not know it.

    Asked the way pip-audit asks (requests: the same proxies, CA bundle, and
    user info in the URL sent as basic authentication).
    """
    import requests  # with pip-audit, in the audit session only

    from tooling.audit import answers  # jsonschema: imported in the audit session only

    url = service.record_url(advisory)
    if url is None:
        return None

    def refuse_foreign_redirect(response: Any, **_: Any) -> None:
        if (problem := foreign_redirect(response)) is not None:
            raise _severity_trouble(problem, url)

    try:
        response = requests.get(url, timeout=timeout, hooks={"response": refuse_foreign_redirect})
    except requests.RequestException as error:
        raise _severity_trouble(request_failure(error, timeout), url) from None
    if response.status_code == 404:
        return None
    fault = answers.answer_fault(response.status_code, response.content, answers.OSV_RECORD)
    if fault is not None:
        raise _severity_trouble(fault, url)
    record: dict[str, Any] = response.json()
    return record


def _severity_trouble(fault: str, url: str) -> AuditError:
    return AuditError(
        f"the osv vulnerability service {fault} ({public_url(url)}) while severities were looked up",
        EXIT_SERVICE,
    )
