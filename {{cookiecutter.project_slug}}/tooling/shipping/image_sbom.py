"""A CycloneDX SBOM of what an image holds, compared with the SBOM of its tier's lock.

The components are the distributions installed in the image's environment, as
the smoke test's inventory (tooling/inventory.py) reports them from inside the
image: what is there, not what was meant to be. `nox -s sbom` writes the lock's
SBOM (sbom/<tier>.cdx.json); both must list the same packages at the same
versions, less lock pins whose markers exclude the image's platform and the
project itself. Reproducible: no serial number, no timestamp.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tooling import ToolingError, lockfile

SPEC_VERSION = "1.6"  # as tooling/audit/sbom.py writes


def purl(name: str, version: str) -> str:
    return f"pkg:pypi/{canonicalize_name(name)}@{version}"


def image_sbom(
    distributions: Iterable[Mapping[str, str]], image: str, digest: str, tier: str
) -> dict[str, Any]:
    """CycloneDX JSON for an image: one library component per installed distribution."""
    components = [
        {
            "type": "library",
            "bom-ref": purl(dist["name"], dist["version"]),
            "name": canonicalize_name(dist["name"]),
            "version": dist["version"],
            "purl": purl(dist["name"], dist["version"]),
        }
        for dist in sorted(
            distributions, key=lambda d: (canonicalize_name(d["name"]), d["version"])
        )
    ]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "component": {
                "type": "container",
                "bom-ref": f"{image}@{digest}" if digest else image,
                "name": image,
                "version": digest,
                "properties": [{"name": "lockstep:tier", "value": tier}],
            }
        },
        "components": components,
    }


def normal_version(version: str) -> str:
    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def components(sbom: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {
        (canonicalize_name(str(item.get("name", ""))), normal_version(str(item.get("version", ""))))
        for item in sbom.get("components", [])
    }


def read_sbom(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ToolingError(f"cannot read {path.name}: {error}") from None
    if not isinstance(data, dict):
        raise ToolingError(f"{path.name} is not a CycloneDX document")
    return data


def compare_with_lock(
    image: Mapping[str, Any],
    lock_sbom: Mapping[str, Any],
    lock: lockfile.LockFile,
    markers: Mapping[str, str],
    project: str,
    lock_sbom_name: str,
) -> list[str]:
    """One line per package the image and the lock's SBOM disagree on."""
    not_here = {
        (pin.name, normal_version(pin.version)) for pin in lock.pins if not pin.applies(markers)
    }
    expected = components(lock_sbom) - not_here
    found = {item for item in components(image) if item[0] != canonicalize_name(project)}
    problems = [
        f"{name} {version} is in the image but not in {lock_sbom_name}"
        for name, version in sorted(found - expected)
    ]
    problems += [
        f"{name} {version} is in {lock_sbom_name} but not in the image"
        for name, version in sorted(expected - found)
    ]
    return problems


def lock_components_sbom(lock: lockfile.LockFile) -> dict[str, Any]:
    """The lock's pins in the shape of an SBOM, when `nox -s sbom` has not written one."""
    return {"components": [{"name": pin.name, "version": pin.version} for pin in lock.pins]}


def dumps(sbom: Mapping[str, Any]) -> str:
    return json.dumps(sbom, indent=2, sort_keys=True) + "\n"
