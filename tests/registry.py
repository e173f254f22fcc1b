"""A real registry for the shipping tests: Debian's docker-registry on a free loopback port."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.containers import stop_process_group

CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(url: str) -> int | None:
    """The HTTP status of `url`, None when nothing answers (no proxy, whatever the environment)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


class Registry:
    """`docker-registry serve` with a storage root of its own; `host` is 127.0.0.1:PORT."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lockstep-registry-"))
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        config = self.dir / "config.yml"
        config.write_text(CONFIG.format(root=self.dir / "data", port=self.port))
        self.log = self.dir / "registry.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while answers(f"http://{self.host}/v2/") != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"docker-registry did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def inspect(self, reference: str) -> dict[str, Any]:
        """What skopeo says of `reference` (HOST/NAME:TAG) in this registry."""
        shown = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
            capture_output=True,
            text=True,
            check=True,
        )
        found: dict[str, Any] = json.loads(shown.stdout)
        return found

    def digest(self, reference: str) -> str:
        """The manifest digest the registry gives `reference`."""
        return str(self.inspect(reference)["Digest"])

    def labels(self, reference: str) -> dict[str, str]:
        return dict(self.inspect(reference)["Labels"] or {})

    def stop(self) -> None:
        stop_process_group(self.process, timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


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
