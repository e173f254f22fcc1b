"""How engines and registries refuse: each known refusal, with the one line that says what fixes it."""

from __future__ import annotations

import re


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


# Known refusals of an OCI runtime on hosts like CI containers, with the setting that fixes
# each. A refusal is reported as this one line, never as the command that was refused.
RUNTIME_REFUSALS: tuple[tuple[str, str, str], ...] = (
    (
        "buildah",
        r"cgroups in hybrid mode not supported",
        "buildah's OCI runtime (crun) refuses this host's hybrid cgroups: "
        "set BUILDAH_ISOLATION=chroot and run again",
    ),
    (
        "podman",
        r"cgroups in hybrid mode not supported",
        "podman's OCI runtime (crun) refuses this host's hybrid cgroups: "
        'set runtime = "runc" under [engine] in containers.conf',
    ),
    (
        "podman",
        r"(?i)(setrlimit|setting rlimit).*(operation not permitted)",
        "podman cannot raise the container's limits here (no CAP_SYS_RESOURCE): set "
        'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"] under [containers] '
        "in containers.conf",
    ),
    (
        "podman",
        r"(?i)subnet .* is already used",
        "podman's default network overlaps one of this host's: set default_subnet "
        '(for example "10.89.0.0/16") under [network] in containers.conf',
    ),
    (
        "docker",
        r"(?i)cannot connect to the docker daemon|docker daemon .* not running",
        "the docker daemon does not answer: start it (`sudo systemctl start docker`) "
        "or build with --engine podman or --engine buildah",
    ),
)


# How a registry (or the way to it) refuses a push or a pull, with what to do about it.
# A failure is reported as this one line, never with what the engine printed around it.
REGISTRY_FAILURES: tuple[tuple[str, str], ...] = (
    (
        r"(?i)connection refused|no such host|i/o timeout|network is unreachable|"
        r"no route to host|server misbehaving|connection reset",
        "the registry {host} does not answer",
    ),
    (
        r"(?i)server gave HTTP response to HTTPS client",
        "{host} speaks plain HTTP, not TLS: pass --insecure if that is intended "
        "(docker: list it under insecure-registries in /etc/docker/daemon.json)",
    ),
    (
        r"(?i)x509:|certificate signed by unknown|tls: ",
        "{host}'s TLS certificate is not trusted here: add its CA to the system's trust store",
    ),
    (
        r"(?i)unauthorized|authentication required|access to the resource is denied|"
        r"no basic auth credentials|denied:|forbidden|status 401|status 403",
        "{host} refused the credentials: log in with `{engine} login {host}` "
        "(or REGISTRY_AUTH_FILE for podman and buildah)",
    ),
    (
        r"(?i)manifest unknown|name unknown|not found|status 404",
        "{reference} is not in the registry",
    ),
)


def registry_failure(output: str, action: str, reference: str, engine: str) -> str:
    """One line for a failed push or pull: what refused it, else the engine's last line."""
    host = reference.split("/", 1)[0]
    for pattern, reason in REGISTRY_FAILURES:
        if re.search(pattern, output):
            return f"cannot {action} {reference}: " + reason.format(
                host=host, reference=reference, engine=engine
            )
    return f"cannot {action} {reference} with {engine}: {last_line(output)}"
