"""The vulnerability service pip-audit asks, and what is wrong with it when it fails.

Failures are described in words (which service, which URL, unreachable or the
HTTP status), never as a Python exception, because that line is what a user
reads first.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tooling.audit import EXIT_CONFIG, EXIT_SERVICE, AuditError

SERVICES = ("pypi", "osv", "esms")
DEFAULT_OSV_URL = "https://api.osv.dev/v1/query"
PYPI_PROBE_URL = "https://pypi.org/pypi/pip/json"
TIMEOUT = 15.0


@dataclass(frozen=True)
class Service:
    name: str
    osv_url: str | None = None

    def describe(self) -> str:
        return f"{self.name} at {self.osv_url}" if self.osv_url else self.name

    @property
    def can_be_probed(self) -> bool:
        """Whether `diagnose` can ask it a question (ESMS needs credentials)."""
        return self.name in ("osv", "pypi")

    def subject(self) -> str:
        """How messages name it: "the osv vulnerability service (https://...)"."""
        where = f" ({self.osv_url})" if self.osv_url else ""
        return f"the {self.name} vulnerability service{where}"

    @property
    def records_url(self) -> str | None:
        """Where OSV serves whole records: https://host/v1/query -> https://host/v1/vulns."""
        if not self.osv_url:
            return None
        base, _, last = self.osv_url.rstrip("/").rpartition("/")
        return f"{base}/vulns" if last == "query" and base else None


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
        raise AuditError(f"OSV URL {url!r} is not an http(s) URL")
    return Service("osv", url)


def _request(url: str, body: dict[str, Any] | None, timeout: float) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def trouble(error: BaseException, url: str, timeout: float) -> str:
    """What went wrong with a request to `url`, in words."""
    if isinstance(error, urllib.error.HTTPError):
        return f"answered HTTP {error.code} ({url})"
    reason: object = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"did not answer within {timeout:g} s ({url})"
    if isinstance(reason, socket.gaierror):
        return f"is unreachable: its host name does not resolve ({url})"
    if isinstance(reason, ConnectionRefusedError):
        return f"is unreachable: connection refused ({url})"
    if isinstance(reason, OSError) and reason.strerror:
        return f"is unreachable: {reason.strerror.lower()} ({url})"
    if isinstance(error, ValueError):
        return f"answered something that is not JSON ({url})"
    return f"is unreachable ({url})"


def diagnose(service: Service, timeout: float = TIMEOUT) -> str | None:
    """Ask the service one harmless question; what is wrong, or None when it answers.

    Also None when it cannot be asked (`can_be_probed`).
    """
    if service.name == "osv" and service.osv_url:
        url: str = service.osv_url
        body: dict[str, Any] | None = {
            "package": {"name": "pip", "ecosystem": "PyPI"},
            "version": "0",
        }
    elif service.name == "pypi":
        url, body = PYPI_PROBE_URL, None
    else:
        return None
    try:
        _request(url, body, timeout)
    except (OSError, ValueError) as error:
        return f"the {service.name} vulnerability service {trouble(error, url, timeout)}"
    return None


def fetch_record(
    service: Service, advisory: str, timeout: float = TIMEOUT
) -> dict[str, Any] | None:
    """One OSV record by id; None when the service does not know it."""
    base = service.records_url
    if base is None:
        return None
    url = f"{base}/{advisory}"
    try:
        record = _request(url, None, timeout)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise AuditError(
            f"the osv vulnerability service {trouble(error, url, timeout)} "
            "while severities were looked up",
            EXIT_SERVICE,
        ) from None
    except (OSError, ValueError) as error:
        raise AuditError(
            f"the osv vulnerability service {trouble(error, url, timeout)} "
            "while severities were looked up",
            EXIT_SERVICE,
        ) from None
    return record if isinstance(record, dict) else None
