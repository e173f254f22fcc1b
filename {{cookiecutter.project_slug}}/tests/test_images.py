"""Unit tests of tooling.images: engine choice, build command, secrets (no engine needed)."""

from pathlib import Path

import pytest

from tooling.images import BuildRequest, ImageError, build_argv, choose_engine, secret_files


def which_of(*installed: str):  # type: ignore[no-untyped-def]
    return lambda name: f"/usr/bin/{name}" if name in installed else None


def test_detects_docker_podman_buildah_in_that_order() -> None:
    everything = which_of("docker", "podman", "buildah")
    assert choose_engine(None, {}, everything, lambda: True) == "docker"
    assert choose_engine(None, {}, everything, lambda: False) == "podman"
    assert choose_engine(None, {}, which_of("buildah"), lambda: False) == "buildah"


def test_option_and_environment_choose_the_engine() -> None:
    everything = which_of("docker", "podman", "buildah")
    assert (
        choose_engine(None, {"CONTAINER_ENGINE": "buildah"}, everything, lambda: True) == "buildah"
    )
    assert choose_engine("podman", {"CONTAINER_ENGINE": "buildah"}, everything) == "podman"


@pytest.mark.parametrize(
    ("requested", "installed", "message"),
    [
        ("rocket", (), "unknown container engine 'rocket'"),
        ("podman", ("docker",), "'podman' was requested but is not installed"),
        (None, (), "no container engine found"),
    ],
)
def test_engine_errors_are_one_clear_line(
    requested: str | None, installed: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ImageError, match=message):
        choose_engine(requested, {}, which_of(*installed), lambda: False)


def test_build_command_keeps_healthcheck_and_passes_secrets(tmp_path: Path) -> None:
    request = BuildRequest(
        tier="hunter",
        tag="app:hunter",
        python_version="3.11",
        base_image="local/python:3.11",
        ca_bundle=tmp_path / "ca.pem",
        target="dev",
    )
    argv = build_argv("buildah", request, tmp_path, {"STORAGE_DRIVER": "vfs"})
    assert argv[:3] == ["buildah", "--storage-driver", "vfs"]
    assert argv[4:6] == ["--format", "docker"]
    assert "PYTHON_VERSION=3.11" in argv and "TIER=hunter" in argv
    assert "BASE_IMAGE=local/python:3.11" in argv
    assert f"id=ca,src={tmp_path / 'ca.pem'}" in argv
    assert not any(str(tmp_path / "ca.pem") in arg for arg in argv if "build-arg" in arg)
    assert argv[-3:] == ["--target", "dev", str(tmp_path)]
    docker = build_argv("docker", request, tmp_path, {})
    assert "--format" not in docker


def test_ca_bundle_defaults_to_ssl_cert_file(tmp_path: Path) -> None:
    bundle = tmp_path / "corp.pem"
    bundle.write_text("cert")
    assert secret_files(None, None, {"SSL_CERT_FILE": str(bundle)}) == (bundle, None)
    assert secret_files(None, None, {}) == (None, None)
    with pytest.raises(ImageError, match="--pip-conf /nope: no such file"):
        secret_files(None, "/nope", {})
