"""What the shipping tests ask of a registry: skopeo's view of a reference, a free port
for a registry that is down, and a registry that refuses every credential.

The registry itself is tests.containers.Registry (Debian's docker-registry on loopback).
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
from typing import Any


def free_port() -> int:
    """A loopback port nothing listens on (as a registry that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def inspect(reference: str) -> dict[str, Any]:
    """What skopeo says of `reference` (HOST/NAME:TAG) in a loopback registry."""
    shown = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


def digest(reference: str) -> str:
    """The manifest digest the registry gives `reference`."""
    return str(inspect(reference)["Digest"])


def labels(reference: str) -> dict[str, str]:
    return dict(inspect(reference)["Labels"] or {})


class RefusingRegistry:
    """A loopback server that answers every request 401, as a registry refusing credentials."""

    def __init__(self) -> None:
        class Refuse(http.server.BaseHTTPRequestHandler):
            def refuse(self) -> None:
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="registry"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = refuse

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
