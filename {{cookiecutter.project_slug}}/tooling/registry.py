"""Registry addresses and image references, as `invoke publish` and `invoke verify` take them.

A registry is HOST[:PORT][/NAMESPACE]; an image reference is
HOST[:PORT]/PATH:TAG or HOST[:PORT]/PATH@sha256:DIGEST. A loopback registry
(localhost, 127.0.0.0/8, ::1) is spoken to without TLS, as docker does; any
other host needs TLS unless --insecure says otherwise.
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


def check_host(host: str, shown: str) -> None:
    match = HOST.fullmatch(host)
    if not match or (match.group("port") and not 0 < int(match.group("port")) < 65536):
        raise RegistryError(f"{shown}: {host!r} is not a registry host (HOST or HOST:PORT)")


def check_path(path: str, shown: str) -> None:
    if not path or not all(PATH_COMPONENT.fullmatch(part) for part in path.split("/")):
        raise RegistryError(
            f"{shown}: {path!r} is not a repository path (lower-case letters, digits, . _ - and /)"
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
    shown = f"--registry {text}"
    if "://" in text:
        raise RegistryError(f"{shown}: give HOST[:PORT][/NAMESPACE], without a scheme")
    host, _, namespace = text.strip("/").partition("/")
    check_host(host, shown)
    if namespace:
        check_path(namespace, shown)
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
    shown = f"--image {text}"
    name, _, digest = text.partition("@")
    if digest and not MANIFEST_DIGEST.fullmatch(digest):
        raise RegistryError(f"{shown}: the digest must be sha256: and 64 hex digits")
    host, _, rest = name.partition("/")
    if not rest or not ("." in host or ":" in host or host == "localhost"):
        raise RegistryError(
            f"{shown}: name the registry, as in HOST[:PORT]/NAME:TAG or HOST[:PORT]/NAME@sha256:..."
        )
    check_host(host, shown)
    path, colon, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if colon and not TAG.fullmatch(tag):
        raise RegistryError(f"{shown}: {tag!r} is not a tag")
    check_path(path, shown)
    if not digest and not tag:
        raise RegistryError(f"{shown}: give a tag (NAME:TAG) or a digest (NAME@sha256:...)")
    return Reference(host, path, tag, digest)
