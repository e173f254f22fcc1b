"""Unit tests of shipping: registry addresses and references, one-line registry failures,
the image SBOM against the lock's, and the labels' dates (no engine or registry needed).
"""

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tooling import lockfile
from tooling.engines import ImageError, registry_failure
from tooling.images import provenance
from tooling.project import Project
from tooling.registry import RegistryError, is_loopback, parse_reference, parse_registry
from tooling.shipping.image_sbom import compare_with_lock, image_sbom
from tooling.shipping.ship import ShipError, check_publishable, push_and_record

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "repository", "tls"),
    [
        ("127.0.0.1:5000", "127.0.0.1:5000/app", False),
        ("localhost:5000/team", "localhost:5000/team/app", False),
        ("ghcr.io/acme", "ghcr.io/acme/app", True),
        ("registry.example.com:8443/a/b", "registry.example.com:8443/a/b/app", True),
    ],
)
def test_registry_addresses(text: str, repository: str, tls: bool) -> None:
    registry = parse_registry(text)
    assert registry.repository("app") == repository
    assert registry.tls_verify(insecure=False) is tls
    assert registry.tls_verify(insecure=True) is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://ghcr.io", "without a scheme"),
        ("ghcr.io/Acme", "is not a repository path"),
        ("bad host:5000", "is not a registry host"),
        ("host:99999", "is not a registry host"),
    ],
)
def test_bad_registry_is_one_line(text: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_registry(text)


SECRET = "s3cr3tPAT"


@pytest.mark.parametrize(
    ("parse", "text", "problem", "login"),
    [
        (parse_registry, f"alice:{SECRET}@ghcr.io/acme", "credentials", "`docker login ghcr.io`"),
        (parse_registry, f"https://alice:{SECRET}@ghcr.io", "credentials", "login ghcr.io"),
        (parse_registry, f"{SECRET}@127.0.0.1:5000", "credentials", "login 127.0.0.1:5000"),
        (parse_registry, f"ghcr.io/acme?token={SECRET}", "query string", "login ghcr.io"),
        (parse_registry, f"ghcr.io/{SECRET}", "namespace is not a repository path", ""),
        (parse_registry, f"alice:{SECRET}", "not a registry host", ""),
        (parse_reference, f"user:{SECRET}@ghcr.io/x:tag", "credentials", "`skopeo login ghcr.io`"),
        (parse_reference, f"https://user:{SECRET}@ghcr.io/x:t", "credentials", "login ghcr.io"),
        (parse_reference, f"user:a/{SECRET}@ghcr.io/x:t", "credentials", "login ghcr.io"),
        (parse_reference, f"ghcr.io/x:tag?token={SECRET}", "query string", "login ghcr.io"),
        (parse_reference, f"ghcr.io/x@{SECRET}", "digest must be sha256", ""),
        (parse_reference, f"ghcr.io/x:{SECRET}!", "the tag must be", ""),
        (parse_reference, f"ghcr.io/{SECRET}/x:tag", "name is not a repository path", ""),
        (parse_reference, f"{SECRET}:tag", "name the registry", ""),
    ],
)
def test_a_secret_in_a_registry_or_reference_is_refused_unshown(
    parse: object, text: str, problem: str, login: str
) -> None:
    with pytest.raises(RegistryError) as refused:
        parse(text)  # type: ignore[operator]
    message = str(refused.value)
    assert SECRET not in message and "\n" not in message
    assert problem in message and login in message


def test_references_by_tag_and_by_digest() -> None:
    by_tag = parse_reference("127.0.0.1:5000/team/app:sniper")
    assert (by_tag.host, by_tag.path, by_tag.tag, by_tag.digest) == (
        "127.0.0.1:5000",
        "team/app",
        "sniper",
        "",
    )
    by_digest = parse_reference(f"ghcr.io/acme/app@{DIGEST}")
    assert str(by_digest) == f"ghcr.io/acme/app@{DIGEST}"
    assert by_digest.tls_verify(insecure=False) is True
    for bad in ("app:sniper", "ghcr.io/acme/app", "ghcr.io/acme/app@sha256:12"):
        with pytest.raises(RegistryError):
            parse_reference(bad)


def test_loopback_hosts() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.2:5000") and is_loopback("[::1]:5000")
    assert not is_loopback("10.0.0.1:5000") and not is_loopback("registry.local")


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("dial tcp 127.0.0.1:5999: connect: connection refused", "does not answer"),
        ("unauthorized: authentication required", "refused the credentials"),
        ("manifest unknown: manifest unknown", "is not in the registry"),
        ("http: server gave HTTP response to HTTPS client", "pass --insecure"),
    ],
)
def test_registry_failures_are_one_line(output: str, reason: str) -> None:
    shown = registry_failure(
        f"Error: trying to reuse blob\n{output}\n", "pull", "h:1/a:t", "podman"
    )
    assert shown.startswith("cannot pull h:1/a:t: ") and reason in shown
    assert "\n" not in shown


def test_the_image_sbom_is_compared_with_the_lock_sbom(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lock_path = tmp_path / "sniper.txt"
    lock_path.write_text(
        "pydantic==2.9.0 \\\n    --hash=sha256:" + "1" * 64 + "\n"
        'colorama==0.4.6 ; sys_platform == "win32" \\\n    --hash=sha256:' + "2" * 64 + "\n"
    )
    lock = lockfile.read(lock_path)
    lock_sbom = {
        "components": [
            {"name": "pydantic", "version": "2.9.0"},
            {"name": "colorama", "version": "0.4.6"},
        ]
    }
    markers = {"sys_platform": "linux", "python_version": "3.11", "platform_system": "Linux"}
    installed = [{"name": "Pydantic", "version": "2.9.0"}, {"name": "app", "version": "1.0"}]
    sbom = image_sbom(installed, "ghcr.io/acme/app", DIGEST, "sniper")
    assert sbom["metadata"]["component"]["version"] == DIGEST
    assert [c["purl"] for c in sbom["components"]] == [
        "pkg:pypi/app@1.0",
        "pkg:pypi/pydantic@2.9.0",
    ]
    assert compare_with_lock(sbom, lock_sbom, lock, markers, "app", "sniper.cdx.json") == []

    extra = image_sbom([*installed, {"name": "evil", "version": "1"}], "r", DIGEST, "sniper")
    missing = image_sbom(installed[1:], "r", DIGEST, "sniper")
    assert compare_with_lock(extra, lock_sbom, lock, markers, "app", "sniper.cdx.json") == [
        "evil 1 is in the image but not in sniper.cdx.json"
    ]
    assert compare_with_lock(missing, lock_sbom, lock, markers, "app", "sniper.cdx.json") == [
        "pydantic 2.9.0 is in sniper.cdx.json but not in the image"
    ]


def test_created_label_round_trips_source_date_epoch() -> None:
    assert provenance.created("1700000000") == "2023-11-14T22:13:20Z"
    assert provenance.epoch_of("2023-11-14T22:13:20Z") == "1700000000"
    assert provenance.epoch_of("") == ""
    assert provenance.without_credentials("https://u:p@github.com/a/b") == "https://github.com/a/b"


def committed_project(root: Path) -> Project:
    (root / "requirements").mkdir()
    (root / "requirements" / "sniper.txt").write_text("structlog==24.4.0\n")
    for command in (
        ["git", "init", "--quiet"],
        ["git", "add", "--all"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "x"],
    ):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    return Project(root, "3.11", {"project": {"name": "app"}})


def test_only_an_image_of_this_commit_tier_and_lock_is_published(tmp_path: Path) -> None:
    project = committed_project(tmp_path)
    head = provenance.revision(tmp_path)
    labels = {
        provenance.TIER_LABEL: "sniper",
        provenance.LOCK_DIGEST_LABEL: provenance.file_digest(tmp_path / "requirements/sniper.txt"),
        provenance.REVISION_LABEL: head,
    }
    assert check_publishable(project, "sniper", "app:sniper", labels) == head
    wrong = [
        ({provenance.TIER_LABEL: "hunter"}, "app:sniper is labelled tier hunter, not sniper"),
        ({provenance.LOCK_DIGEST_LABEL: DIGEST}, "app:sniper was built from another requirements"),
        ({provenance.REVISION_LABEL: "0" * 40}, f"built from commit {'0' * 40}, not HEAD {head}"),
    ]
    for changed, message in wrong:
        with pytest.raises(ShipError, match=message):
            check_publishable(project, "sniper", "app:sniper", {**labels, **changed})
    (tmp_path / "requirements" / "sniper.txt").write_text("structlog==24.4.1\n")
    with pytest.raises(ShipError, match="the work tree has uncommitted changes"):
        check_publishable(project, "sniper", "app:sniper", labels)


class FakeEngine:
    """Pushes by remembering the tag; `on_push` runs after each push, as a registry's reply."""

    name = "fake"

    def __init__(self, on_push: Callable[[str], None] = lambda tag: None) -> None:
        self.pushed: list[str] = []
        self.on_push = on_push

    def push_to_registry(self, image: str, reference: str, tls_verify: bool) -> str:
        self.pushed.append(reference)
        self.on_push(reference)
        return DIGEST


def record_of(digest: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"reference": f"h:1/app@{digest}"}, {"bomFormat": "CycloneDX"}


def push(root: Path, engine: FakeEngine) -> str:
    return push_and_record(
        engine,  # type: ignore[arg-type]
        root, "sniper", "app:sniper", "h:1/app", ["sniper", "sniper-c0"], False, record_of,
        lambda line: None,
    )  # fmt: skip


def test_publish_records_what_it_pushed(tmp_path: Path) -> None:
    engine = FakeEngine()
    assert push(tmp_path, engine) == f"h:1/app@{DIGEST}"
    assert engine.pushed == ["h:1/app:sniper", "h:1/app:sniper-c0"]
    record = json.loads((tmp_path / "dist/images/sniper.json").read_text())
    assert record["reference"] == f"h:1/app@{DIGEST}"
    assert (tmp_path / "dist/images/sniper.cdx.json").is_file()


@pytest.mark.parametrize(
    ("blocker", "problem"),
    [
        ("dist", "dist is a file"),
        ("dist/images", "dist/images is a file"),
        ("dist/images/sniper.json/", "dist/images/sniper.json is a folder"),
        ("dist/images/sniper.cdx.json/", "dist/images/sniper.cdx.json is a folder"),
    ],
)
def test_nothing_is_pushed_when_the_record_cannot_be_written(
    tmp_path: Path, blocker: str, problem: str
) -> None:
    path = tmp_path / blocker
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir() if blocker.endswith("/") else path.write_text("")
    engine = FakeEngine()
    with pytest.raises(ShipError) as refused:
        push(tmp_path, engine)
    assert str(refused.value).startswith(f"not published: {problem}")
    assert engine.pushed == []


def test_a_failure_after_the_push_says_what_the_registry_holds(tmp_path: Path) -> None:
    def block_the_record(tag: str) -> None:
        (tmp_path / "dist/images/sniper.json").mkdir(exist_ok=True)

    with pytest.raises(ShipError) as failed:
        push(tmp_path, FakeEngine(block_the_record))
    assert str(failed.value).startswith(
        f"the image was pushed as h:1/app:sniper@{DIGEST} and h:1/app:sniper-c0@{DIGEST}, "
        "but dist/images/sniper.json was not written ("
    )
    assert "publish again" in str(failed.value)

    shutil.rmtree(tmp_path / "dist")

    def refuse_the_second_tag(tag: str) -> None:
        if tag.endswith("-c0"):
            raise ImageError(f"cannot push to {tag}: the registry h:1 does not answer")

    with pytest.raises(ShipError) as failed:
        push(tmp_path, FakeEngine(refuse_the_second_tag))
    assert str(failed.value) == (
        f"the image was pushed as h:1/app:sniper@{DIGEST}, but cannot push to h:1/app:sniper-c0: "
        "the registry h:1 does not answer"
    )
