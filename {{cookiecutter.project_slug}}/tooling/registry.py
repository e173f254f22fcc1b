"""Registry addresses and image references, as `invoke publish` and `invoke verify` take them.

A registry is HOST[:PORT][/NAMESPACE]; an image reference is
HOST[:PORT]/PATH:TAG or HOST[:PORT]/PATH@sha256:DIGEST. A loopback registry
(localhost, 127.0.0.0/8, ::1) is spoken to without TLS, as docker does; any
other host needs TLS unless --insecure says otherwise.

Neither holds credentials: a login, a token in a query string or a scheme is
refused without being shown, and no message repeats a part that failed its
check (a token pasted as a namespace or tag stays off the screen and the CI log).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from tooling import ToolingError

HOST = re.compile(
    r"(?P<name>localhost|\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::(?P<port>[0-9]{1,5}))?"
)
PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
MANIFEST_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class RegistryError(ToolingError):
    pass


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1, with or without a port."""
    match = HOST.fullmatch(host)
    name = match.group("name") if match else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)", re.DOTALL)
PUBLISH_LOGIN = (
    "`docker login {host}` (or podman or buildah login): the engine keeps it in its auth file"
)
VERIFY_LOGIN = (
    "`skopeo login {host}` (skopeo also reads docker's and podman's auth files, "
    "and REGISTRY_AUTH_FILE)"
)


def login_host(rest: str) -> str:
    """The host a login in `rest` is for (after its last @ before a /), when it is a host."""
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    after_login = re.findall(r"@([^@/]+)/", rest)
    host = after_login[-1] if after_login else rest.rpartition("@")[2].partition("/")[0]
    return host if HOST.fullmatch(host) else "HOST"


def holds_login(rest: str, digest_allowed: bool) -> bool:
    """Whether `rest` (no scheme) holds USER[:TOKEN]@: any @ in a registry; in an image
    reference an @ not starting its digest (a digest holds no /, a login's host is before one).
    """
    if not digest_allowed:
        return "@" in rest
    return "/" in rest.partition("@")[2]


def refuse_secrets(text: str, option: str, form: str, login: str, digest_allowed: bool) -> None:
    """Refuse a login, a query or a scheme in `text`, naming the problem but not the text."""
    found = SCHEME.fullmatch(text)
    rest = found["rest"] if found else text
    login = login.format(host=login_host(rest))
    if holds_login(rest, digest_allowed):
        raise RegistryError(
            f"{option} must not hold credentials (USER:TOKEN@): give {form} "
            f"and log in once with {login}"
        )
    if re.search(r"[?#]", text):
        raise RegistryError(
            f"{option} must not hold a query string or fragment (?... or #...): give {form} "
            f"and log in once with {login}"
        )
    if found:
        raise RegistryError(f"{option}: give {form}, without a scheme (drop {found['scheme']}://)")


def check_host(host: str, option: str) -> None:
    match = HOST.fullmatch(host)
    if not match or (match.group("port") and not 0 < int(match.group("port")) < 65536):
        raise RegistryError(
            f"{option}: the part before the first / is not a registry host "
            "(HOST or HOST:PORT, e.g. ghcr.io or 127.0.0.1:5000)"
        )


def registry_host(reference: str) -> str:
    """The registry a reference names (its first part, when that is a host), else ""."""
    first, slash, _ = reference.partition("/")
    return first if slash and ("." in first or ":" in first or first == "localhost") else ""


def check_path(path: str, shown: str, what: str) -> None:
    if not path or not all(PATH_COMPONENT.fullmatch(part) for part in path.split("/")):
        raise RegistryError(
            f"{shown}: the {what} is not a repository path (lower-case letters, digits, "
            ". _ - and /)"
        )


@dataclass(frozen=True)
class Registry:
    host: str  # HOST or HOST:PORT
    namespace: str = ""

    def repository(self, name: str) -> str:
        return "/".join(part for part in (self.host, self.namespace, name) if part)

    def tls_verify(self, insecure: bool) -> bool:
        return not (insecure or is_loopback(self.host))


def parse_registry(text: str) -> Registry:
    """HOST[:PORT][/NAMESPACE], as --registry takes it."""
    option = "--registry"
    refuse_secrets(text, option, "HOST[:PORT][/NAMESPACE]", PUBLISH_LOGIN, digest_allowed=False)
    host, _, namespace = text.strip("/").partition("/")
    check_host(host, option)
    if namespace:
        check_path(namespace, f"{option} {host}/...", "namespace")
    return Registry(host, namespace)


@dataclass(frozen=True)
class Reference:
    host: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def repository(self) -> str:
        return f"{self.host}/{self.path}"

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"

    def tls_verify(self, insecure: bool) -> bool:
        return not (insecure or is_loopback(self.host))


def parse_reference(text: str) -> Reference:
    """HOST[:PORT]/PATH:TAG or HOST[:PORT]/PATH@sha256:DIGEST, with the registry host named."""
    option = "--image"
    form = "HOST[:PORT]/NAME:TAG or HOST[:PORT]/NAME@sha256:..."
    refuse_secrets(text, option, form, VERIFY_LOGIN, digest_allowed=True)
    name, _, digest = text.partition("@")
    host, _, rest = name.partition("/")
    if not rest or not registry_host(name):
        raise RegistryError(f"{option}: name the registry, as in {form}")
    check_host(host, option)
    shown = f"{option} {host}/..."
    path, colon, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
    check_path(path, shown, "name")
    if colon and not TAG.fullmatch(tag):
        raise RegistryError(
            f"{shown}: the tag must be letters, digits, _ . and - (at most 128, "
            "not starting with . or -)"
        )
    if digest and not MANIFEST_DIGEST.fullmatch(digest):
        raise RegistryError(f"{shown}: the digest must be sha256: and 64 hex digits")
    if not digest and not tag:
        raise RegistryError(f"{shown}: give a tag (NAME:TAG) or a digest (NAME@sha256:...)")
    return Reference(host, path, tag, digest)
