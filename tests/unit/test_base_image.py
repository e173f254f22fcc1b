"""tooling.base_image: each tier's base image, pinned by digest in base-images.lock.

The fetch of a pinned base's config is tested with the config check that reads
it (test_image_config.py).
"""

from pathlib import Path

import pytest
from project_files import make_project
from tooling.base_image import (
    BaseImageError,
    base_image_for_build,
    read_base_pins,
    refresh_base_pins,
    resolve_digest,
)
from tooling.engines import Engine, ImageError, ImageFacts
from tooling.project import base_image_problems

DIGEST = "sha256:" + "ab" * 32


def test_base_image_pins_overrides_and_tier_bases(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, lockstep='base-images = { gpu = "nvidia/cuda:12.1.0-runtime-ubuntu22.04" }\n'
    )
    base, note = base_image_for_build(project, "sniper", None)
    assert base == "python:3.11-slim" and note and "invoke base-image --refresh" in note
    (tmp_path / "base-images.lock").write_text(
        f"# pins\npython:3.11-slim@{DIGEST}\nnvidia/cuda:12.1.0-runtime-ubuntu22.04@{DIGEST}\n"
    )
    assert base_image_for_build(project, "sniper", None) == (f"python:3.11-slim@{DIGEST}", None)
    assert base_image_for_build(project, "gpu", None)[0].startswith("nvidia/cuda:12.1.0-runtime")
    assert base_image_for_build(project, "sniper", "mine:1") == ("mine:1", None)
    assert base_image_problems(project) == []


def test_a_base_pin_for_another_python_is_drift(tmp_path: Path) -> None:
    project = make_project(tmp_path, python="3.12")
    (tmp_path / "base-images.lock").write_text(f"docker.io/library/python:3.11-slim@{DIGEST}\n")
    assert base_image_problems(project) == [
        "base-images.lock pins docker.io/library/python:3.11-slim but .python-version says 3.12: "
        "run `invoke base-image --refresh`"
    ]
    (tmp_path / "base-images.lock").write_text("python:3.12-slim\n")
    with pytest.raises(BaseImageError, match=r"base-images.lock:1: 'python:3.12-slim' is not IM"):
        read_base_pins(tmp_path)


class StubEngine(Engine):
    """An engine whose only image is `python:3.11-slim` with the given registry digest."""

    name = "stub"

    def __init__(self, digest: str) -> None:
        super().__init__({})
        self.digest = digest

    def inspect(self, image: str) -> ImageFacts | None:
        if image != "python:3.11-slim":
            return None
        return ImageFacts("1" * 64, [], [], "", [], {}, 0, self.digest)


def test_refresh_pins_each_base_with_the_engines_digest(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    pins = refresh_base_pins(project, ["base", "dev"], StubEngine(DIGEST), pull=False)
    assert pins == {"python:3.11-slim": f"python:3.11-slim@{DIGEST}"}
    assert read_base_pins(tmp_path) == pins


def test_an_image_without_a_registry_digest_says_how_to_use_it(tmp_path: Path) -> None:
    """docker knows no digest for a loaded image: one line naming --base-image."""
    with pytest.raises(ImageError) as raised:
        resolve_digest(StubEngine(""), "python:3.11-slim", pull=False)
    assert str(raised.value) == (
        "stub knows no registry digest for python:3.11-slim (a loaded or locally built image "
        "has none): build with --base-image python:3.11-slim to use it unpinned, "
        "or pin it with --engine podman or buildah"
    )
    with pytest.raises(ImageError, match=r"^stub has no image other:1: pull or load it first"):
        resolve_digest(StubEngine(DIGEST), "other:1", pull=False)
