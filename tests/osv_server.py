"""A loopback OSV API server for tests.

It answers the parts of the OSV API (https://google.github.io/osv.dev/api/)
that pip-audit and the generated project's audit tooling use, from directories
of OSV JSON records laid out as ``<package>/<ID>.json``:

- ``POST /v1/query``       ``{"package": {"name", "ecosystem"}, "version"}``
                           -> ``{"vulns": [<full records>]}``, or ``{}``
- ``POST /v1/querybatch``  ``{"queries": [<query>, ...]}``
                           -> ``{"results": [{"vulns": [{"id", "modified"}]}]}``
- ``GET  /v1/vulns/<ID>``  -> the record (404 when unknown)

Only the PyPI ecosystem is served. A version is affected when it is listed in
``affected[].versions`` or falls in an ``ECOSYSTEM``/``SEMVER`` range, evaluated
as the OSV schema describes (events sorted by version; ``introduced`` opens,
``fixed`` closes before, ``last_affected`` closes after). Versions compare with
``packaging.version``. Withdrawn records are still returned, like the real API;
clients decide what to do with them.

    with OSVServer([fixtures, shared]) as srv:
        srv.url          # http://127.0.0.1:PORT/v1/query
        srv.fail = True  # every request now gets HTTP 500
        srv.requests     # what was asked, for assertions
        srv.authorizations  # the Authorization header of each request (None: none)
        srv.junk = b"null"  # every request now gets these bytes, HTTP 200
        srv.cut_short = True  # ... announced longer than they are
        srv.delay = 2.0  # seconds to wait before answering
        srv.redirect = "http://localhost:PORT"  # every request: 307 to the same path there

Run it by hand with ``python tests/osv_server.py DIR [DIR...] [--port N]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

_NAME_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """PEP 503 normalised name, as OSV and pip-audit compare PyPI names."""
    return _NAME_SEPARATORS.sub("-", name).lower()


def _parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _event_sort_key(event: dict[str, str]) -> tuple[int, Version]:
    (kind, value), *_ = event.items()
    if kind == "introduced" and value == "0":
        return (0, Version("0"))
    parsed = _parse_version(value)
    return (1, parsed if parsed is not None else Version("0"))


def _in_range(version: Version, events: list[dict[str, str]]) -> bool:
    affected = False
    for event in sorted(events, key=_event_sort_key):
        if "introduced" in event:
            start = event["introduced"]
            if start == "0" or ((v := _parse_version(start)) is not None and version >= v):
                affected = True
        elif "fixed" in event:
            v = _parse_version(event["fixed"])
            if v is not None and version >= v:
                affected = False
        elif "last_affected" in event:
            v = _parse_version(event["last_affected"])
            if v is not None and version > v:
                affected = False
        # "limit" only applies to GIT ranges.
    return affected


def affects(record: dict[str, Any], name: str, version: str | None) -> bool:
    """True when `record` affects PyPI package `name` at `version` (None: any)."""
    wanted = canonical_name(name)
    parsed = _parse_version(version) if version is not None else None
    for affected in record.get("affected", []):
        package = affected.get("package", {})
        if package.get("ecosystem") != "PyPI" or canonical_name(package.get("name", "")) != wanted:
            continue
        if version is None:
            return True
        listed = affected.get("versions", [])
        if version in listed or (
            parsed is not None and any(_parse_version(v) == parsed for v in listed)
        ):
            return True
        if parsed is None:
            continue
        for rng in affected.get("ranges", []):
            if rng.get("type") in ("ECOSYSTEM", "SEMVER") and _in_range(
                parsed, rng.get("events", [])
            ):
                return True
    return False


def rfc3339_timestamps(record: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as the OSV API writes them (UTC, 'T', 'Z').

    Some stored records carry '2024-07-07 18:15:00+00:00' (a YAML-to-JSON
    artefact); pip-audit only parses the RFC 3339 'Z' forms and crashes on
    anything else, so serve what the real API would.
    """
    fixed = dict(record)
    for key in ("published", "modified", "withdrawn"):
        value = record.get(key)
        if not isinstance(value, str):
            continue
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            continue
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ"
        fixed[key] = moment.strftime(pattern)
    return fixed


@dataclass
class AdvisoryIndex:
    """OSV records indexed by the canonical names of the PyPI packages they affect."""

    by_package: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, directories: Iterable[Path | str]) -> AdvisoryIndex:
        index = cls()
        for directory in directories:
            for path in sorted(Path(directory).glob("*/*.json")):
                index.add(json.loads(path.read_text(encoding="utf-8")))
        return index

    def add(self, record: dict[str, Any]) -> None:
        if record["id"] in self.by_id:  # first directory wins
            return
        record = rfc3339_timestamps(record)
        self.by_id[record["id"]] = record
        names = {
            canonical_name(a["package"]["name"])
            for a in record.get("affected", [])
            if a.get("package", {}).get("ecosystem") == "PyPI"
        }
        for name in names:
            self.by_package.setdefault(name, []).append(record)

    def query(self, name: str, version: str | None) -> list[dict[str, Any]]:
        candidates = self.by_package.get(canonical_name(name), [])
        return [r for r in candidates if affects(r, name, version)]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    @property
    def _route(self) -> str:
        """The path asked for, without a query string (a client's token, say)."""
        return self.path.partition("?")[0]

    def _fail_if_asked(self) -> bool:
        owner = self.server.owner
        owner.authorizations.append(self.headers.get("Authorization"))
        time.sleep(owner.delay)
        if owner.fail:
            self._send(500, {"code": 13, "message": "internal error (test server told to fail)"})
            return True
        if owner.redirect is not None:
            self.send_response(307)
            self.send_header("Location", owner.redirect + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        if owner.junk is not None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            length = len(owner.junk) + (100 if owner.cut_short else 0)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(owner.junk)
            self.close_connection = True
            return True
        return False

    def do_GET(self) -> None:
        self.server.owner.requests.append(("GET", self.path, None))
        if self._fail_if_asked():
            return
        match = re.fullmatch(r"/v1/vulns/([^/?]+)", self._route)
        record = self.server.owner.index.by_id.get(match.group(1)) if match else None
        if record is None:
            self._send(404, {"code": 5, "message": "Bug not found."})
        else:
            self._send(200, record)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        self.server.owner.requests.append(("POST", self.path, body))
        if self._fail_if_asked():
            return
        if not isinstance(body, dict):
            self._send(400, {"code": 3, "message": "Invalid JSON."})
        elif self._route == "/v1/query":
            vulns = self._answer(body)
            self._send(200, {"vulns": vulns} if vulns else {})
        elif self._route == "/v1/querybatch":
            results = []
            for query in body.get("queries", []):
                vulns = self._answer(query)
                results.append(
                    {"vulns": [{"id": v["id"], "modified": v.get("modified")} for v in vulns]}
                    if vulns
                    else {}
                )
            self._send(200, {"results": results})
        else:
            self._send(404, {"code": 5, "message": "Not found."})

    def _answer(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        package = query.get("package") or {}
        name = package.get("name")
        purl = package.get("purl", "")
        if not name and purl.startswith("pkg:pypi/"):
            name, _, purl_version = purl[len("pkg:pypi/") :].partition("@")
            query = {**query, "version": query.get("version") or purl_version or None}
        if not name or package.get("ecosystem", "PyPI") != "PyPI":
            return []
        return self.server.owner.index.query(name, query.get("version"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: OSVServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up waiting
            super().handle_error(request, client_address)


class OSVServer:
    """A loopback OSV server on an ephemeral port, serving `directories`.

    Missing directories are ignored, so optional extras can be passed as is.
    """

    def __init__(self, directories: Iterable[Path | str], *, fail: bool = False) -> None:
        self.directories = [Path(d) for d in directories if Path(d).is_dir()]
        self.index = AdvisoryIndex.load(self.directories)
        self.fail = fail
        self.junk: bytes | None = None
        self.cut_short = False
        self.delay = 0.0
        self.redirect: str | None = None
        self.requests: list[tuple[str, str, Any]] = []
        self.authorizations: list[str | None] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("OSVServer is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The query endpoint, as pip-audit's --osv-url wants it."""
        return f"{self.base_url}/v1/query"

    def start(self) -> OSVServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="osv-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> OSVServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail", action="store_true", help="answer every request with HTTP 500")
    args = parser.parse_args(argv)
    server = OSVServer(args.directories, fail=args.fail)
    server._httpd = _Server(("127.0.0.1", args.port), _Handler)
    server._httpd.owner = server
    print(f"{len(server.index.by_id)} advisories; --osv-url {server.url}", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
