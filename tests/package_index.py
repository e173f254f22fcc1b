"""A loopback PEP 503 package index for tests: tiny wheels, several index paths, basic auth.

    with PackageIndex(tmp_path, credentials=("alice", "s3cret")) as index:
        index.add("private", build_wheel(tmp_path, "tinypkg", "1.0"))
        url = index.url("private")          # http://127.0.0.1:PORT/private/simple

Each index path serves `simple/<name>/` pages whose links carry the wheel's
sha256, as PyPI does (and `data-yanked`, PEP 592, for a file `yank` names). A
client that asks for JSON (PEP 691, as uv does) gets the same page as JSON with
each file's upload time (PEP 700): `add(..., uploaded=)` sets it, default
OLD_UPLOAD, so a cooldown can be tested. With credentials, every request
without them gets 401.
Wheels are written directly as zip files (no build backend needed): a module
whose `BUILD` constant says which build it is, so a test can tell `+cpu` from
`+cu121` after installing.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import json
import os
import secrets
import subprocess
import threading
import zipfile
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

from packaging.utils import canonicalize_name

OLD_UPLOAD = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
JSON_PAGE = "application/vnd.pypi.simple.v1+json"


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def build_wheel(
    folder: Path,
    name: str,
    version: str,
    requires: tuple[str, ...] = (),
    build: str = "",
    tag: str = "py3-none-any",
) -> Path:
    """A wheel of `name` tagged `tag` whose module says `BUILD = build` (default: the version)."""
    module = name.replace("-", "_")
    distribution = f"{module}-{version}"
    files = {
        f"{module}/__init__.py": f'BUILD = "{build or version}"\n__version__ = "{version}"\n',
        f"{distribution}.dist-info/METADATA": "\n".join(
            ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
            + [f"Requires-Dist: {requirement}" for requirement in requires]
        )
        + "\n",
        f"{distribution}.dist-info/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: package_index\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ),
    }
    record = [
        f"{path},{record_hash(text.encode())},{len(text.encode())}" for path, text in files.items()
    ]
    record.append(f"{distribution}.dist-info/RECORD,,")
    files[f"{distribution}.dist-info/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{distribution}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, text)
    return wheel


class PackageIndex:
    """Serve wheels under /<index>/simple/ on 127.0.0.1 from a background thread."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.wheels: dict[str, dict[str, list[Path]]] = {}  # index -> project -> wheels
        self.uploaded: dict[Path, datetime.datetime] = {}
        self.requests: list[tuple[str, bool]] = []  # (path, authorized)
        self.yanked: dict[str, str] = {}  # wheel file name -> the reason ("" for none)
        # uv caches a wheel's metadata by index URL and file name, in a cache every test
        # shares: a later index on a reused port must not answer from an earlier one's.
        self.prefix = "/" + secrets.token_hex(8)
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.respond(with_body=False)

            def do_GET(self) -> None:
                self.respond(with_body=True)

            def respond(self, with_body: bool) -> None:
                authorized = index.authorized(self.headers.get("Authorization"))
                path = self.path.removeprefix(index.prefix)
                index.requests.append((path, authorized))
                if not authorized:
                    self.send_response(HTTPStatus.UNAUTHORIZED)
                    self.send_header("WWW-Authenticate", 'Basic realm="test index"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                wants_json = JSON_PAGE in (self.headers.get("Accept") or "")
                found = None
                if self.path.startswith(index.prefix + "/"):
                    found = index.find(path.split("?", 1)[0], wants_json)
                if found is None:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                body, content_type = found
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, index: str, with_credentials: bool = False) -> str:
        auth = ""
        if with_credentials and self.credentials:
            auth = f"{self.credentials[0]}:{self.credentials[1]}@"
        return f"http://{auth}127.0.0.1:{self.port}{self.prefix}/{index}/simple"

    def netrc(self, path: Path) -> Path:
        """A netrc file giving this index's credentials, for uv and pip (NETRC=path)."""
        assert self.credentials
        user, password = self.credentials
        path.write_text(f"machine 127.0.0.1\nlogin {user}\npassword {password}\n")
        path.chmod(0o600)
        return path

    def add(self, index: str, wheel: Path, uploaded: datetime.datetime | None = None) -> None:
        project = canonicalize_name(wheel.name.split("-", 1)[0])
        self.wheels.setdefault(index, {}).setdefault(project, []).append(wheel)
        self.uploaded[wheel] = uploaded or OLD_UPLOAD

    def json_page(self, index: str, project: str, wheels: list[Path]) -> bytes:
        files = [
            {
                "filename": wheel.name,
                "url": f"{self.prefix}/{index}/files/{wheel.name}",
                "hashes": {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()},
                "upload-time": self.uploaded[wheel].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "yanked": self.yanked.get(wheel.name, "") or wheel.name in self.yanked,
            }
            for wheel in wheels
        ]
        versions = sorted({wheel.name.split("-")[1] for wheel in wheels})
        page = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "versions": versions,
            "files": files,
        }
        return json.dumps(page).encode()

    def yank(self, wheel: Path, reason: str = "") -> None:
        """Mark the file yanked on every page that links it, as PyPI does."""
        self.yanked[wheel.name] = reason

    def yank_attribute(self, wheel: Path) -> str:
        if wheel.name not in self.yanked:
            return ""
        return f' data-yanked="{html.escape(self.yanked[wheel.name])}"'

    def authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return header == f"Basic {expected}"

    def find(self, path: str, wants_json: bool = False) -> tuple[bytes, str] | None:
        parts = [unquote(part) for part in path.split("/") if part]
        if len(parts) == 3 and parts[1] == "files":
            index, _, filename = parts
            for wheels in self.wheels.get(index, {}).values():
                for wheel in wheels:
                    if wheel.name == filename:
                        return wheel.read_bytes(), "application/octet-stream"
            return None
        if len(parts) == 3 and parts[1] == "simple":
            index, _, project = parts
            wheels = self.wheels.get(index, {}).get(canonicalize_name(project))
            if not wheels:
                return None
            if wants_json:
                return self.json_page(index, canonicalize_name(project), wheels), JSON_PAGE
            links = [
                f'<a href="{self.prefix}/{index}/files/{html.escape(wheel.name)}'
                f'#sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}"'
                f"{self.yank_attribute(wheel)}>{html.escape(wheel.name)}</a><br>"
                for wheel in wheels
            ]
            page = "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
            return page.encode(), "text/html"
        if len(parts) == 2 and parts[1] == "simple":
            links = [f'<a href="{name}/">{name}</a><br>' for name in self.wheels.get(parts[0], {})]
            return (
                "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
            ).encode(), "text/html"
        return None

    def __enter__(self) -> PackageIndex:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


def user_pip(
    python: Path, *arguments: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """pip as a user runs it: no machine-wide config, constraints or find-links."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    clean.update(PIP_CONFIG_FILE=os.devnull, NO_PROXY="127.0.0.1", **env)
    return subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", *arguments],
        capture_output=True,
        text=True,
        check=False,
        env=clean,
    )
