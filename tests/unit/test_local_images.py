"""Unit tests of `invoke run` and `invoke prune`'s logic, against a fake engine's image store."""

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from tooling.engines import ImageError, get
from tooling.images.local_images import env_file_for_run, prune, run_argv, run_with_buildah

TIER = "lockstep.tier"
TITLE = "org.opencontainers.image.title"


class FakeStore:
    """What `ENGINE images`, `image inspect` / `inspect --type image` and `rmi` see and do."""

    def __init__(self, images: dict[str, dict[str, object]], in_use: Sequence[str] = ()) -> None:
        self.images = images  # id -> {"labels": {...}, "size": int, "tagged": bool}
        self.in_use = set(in_use)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        args = [part for part in argv[1:] if part not in ("--storage-driver", "vfs")]
        if args[:2] == ["images", "--filter"] and "dangling=true" in args:
            dangling = [f"sha256:{i}" for i, image in self.images.items() if not image["tagged"]]
            return self.answer(0, "\n".join(dangling) + "\n")
        if args[:2] == ["image", "inspect"] or args[:3] == ["inspect", "--type", "image"]:
            return self.inspect(argv[0], args[-1])
        if args[0] == "rmi":
            if args[1] in self.in_use:
                return self.answer(1, "", f"Error: image {args[1]} is in use by a container")
            del self.images[args[1]]
            return self.answer(0, args[1])
        return self.answer(1, "", "unexpected command")

    def inspect(self, engine: str, image_id: str) -> subprocess.CompletedProcess[str]:
        image = self.images.get(image_id)
        if image is None:
            return self.answer(1, "", "no such image")
        config = {"Labels": image["labels"]}
        if engine == "buildah":
            manifest = json.dumps({"layers": [{"size": image["size"]}]})
            data = {"FromImageID": image_id, "Docker": {"config": config}, "Manifest": manifest}
        else:
            data = {"Id": f"sha256:{image_id}", "Config": config, "Size": image["size"]}
        return self.answer(0, json.dumps([data]))

    @staticmethod
    def answer(code: int, out: str, err: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], code, out, err)


def image(
    project: str | None, tier: str | None, size: int, tagged: bool = False
) -> dict[str, object]:
    labels = {TITLE: project} if project else {}
    labels |= {TIER: tier} if tier else {}
    return {"labels": labels, "size": size, "tagged": tagged}


@pytest.mark.parametrize("engine", ["docker", "podman", "buildah"])
def test_prune_removes_only_this_projects_untagged_images(engine: str) -> None:
    store = FakeStore(
        {
            "a" * 64: image("my-service", "sniper", 150_000_000),
            "b" * 64: image("my-service", "hunter", 250_000_000),
            "c" * 64: image("my-service", "sniper", 150_000_000, tagged=True),
            "d" * 64: image("other-app", "sniper", 90_000_000),
            "e" * 64: image(None, None, 40_000_000),  # a build stage's cache, no labels
        }
    )
    said: list[str] = []
    total = prune([get(engine, {}, store)], "my-service", said.append)
    assert sorted(store.images) == ["c" * 64, "d" * 64, "e" * 64]
    assert said == [
        f"{engine}: removed aaaaaaaaaaaa (tier sniper, 150.0 MB)",
        f"{engine}: removed bbbbbbbbbbbb (tier hunter, 250.0 MB)",
    ]
    assert total.startswith("removed 2 untagged my-service image(s) of 400.0 MB in all")


def test_prune_goes_through_every_engine_and_keeps_an_image_in_use() -> None:
    docker = FakeStore({"a" * 64: image("my-service", "base", 10_000_000)}, in_use=["a" * 64])
    podman = FakeStore({"b" * 64: image("my-service", "dev", 20_000_000)})
    said: list[str] = []
    total = prune([get("docker", {}, docker), get("podman", {}, podman)], "my-service", said.append)
    assert said == [
        f"docker: kept aaaaaaaaaaaa: Error: image {'a' * 64} is in use by a container",
        "podman: removed bbbbbbbbbbbb (tier dev, 20.0 MB)",
    ]
    assert "a" * 64 in docker.images and not podman.images
    assert total.startswith("removed 1 untagged my-service image(s) of 20.0 MB")


def test_prune_with_nothing_to_remove_says_so() -> None:
    store = FakeStore({"a" * 64: image("my-service", "base", 1, tagged=True)})
    assert prune([get("podman", {}, store)], "my-service", print) == (
        "no untagged my-service images to remove"
    )
    assert not [call for call in store.calls if "rmi" in call]


def test_a_store_that_cannot_be_listed_is_one_line() -> None:
    def broken(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 125, "", "permission denied\n")

    with pytest.raises(ImageError, match=r"^docker cannot list its images: permission denied$"):
        prune([get("docker", {}, broken)], "my-service", print)


def test_run_passes_the_env_file_and_the_apps_arguments(tmp_path: Path) -> None:
    (tmp_path / "prod.env").write_text("LOG_LEVEL=debug\n")
    env_file = env_file_for_run(tmp_path, "prod.env")
    argv = run_argv(get("podman", {}), "my-service:sniper", env_file, ["health"], tty=False)
    assert argv == [
        "podman", "run", "--rm", "--pull", "never",
        "--env-file", str(tmp_path / "prod.env"), "my-service:sniper", "health",
    ]  # fmt: skip
    with_tty = run_argv(get("docker", {}), "my-service:sniper", None, [], tty=True)
    assert with_tty == [
        "docker", "run", "--rm", "--pull", "never", "--interactive", "--tty", "my-service:sniper"
    ]  # fmt: skip


def test_run_reads_dot_env_by_default_and_refuses_a_missing_env_file(tmp_path: Path) -> None:
    assert env_file_for_run(tmp_path, None) is None
    (tmp_path / ".env").write_text("LOG_LEVEL=info\n")
    assert env_file_for_run(tmp_path, None) == tmp_path / ".env"
    with pytest.raises(ImageError, match=r"^env file nope.env not found: write it, or leave out"):
        env_file_for_run(tmp_path, "nope.env")


def test_buildah_runs_the_entrypoint_in_a_working_container_with_the_env_file(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# settings\nLOG_LEVEL=debug\n\nAPI_TOKEN\nUNSET_HERE\n")
    calls: list[list[str]] = []

    def buildah(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        out = "image-working-container\n" if argv[3] == "from" else ""
        return subprocess.CompletedProcess(argv, 0, out, "")

    ran: list[list[str]] = []

    def foreground(argv: Sequence[str], env: Mapping[str, str]) -> int:
        ran.append(list(argv))
        return 3

    engine = get("buildah", {"STORAGE_DRIVER": "vfs", "API_TOKEN": "t0k"}, buildah)
    entrypoint = ["/opt/venv/bin/my-service"]
    code = run_with_buildah(
        engine, "my-service:sniper", entrypoint, env_file, ["health"], foreground
    )
    assert code == 3  # the app's exit code
    prefix = ["buildah", "--storage-driver", "vfs"]
    assert calls == [
        [*prefix, "from", "--pull-never", "my-service:sniper"],
        [*prefix, "config", "--env", "LOG_LEVEL=debug", "image-working-container"],
        [*prefix, "config", "--env", "API_TOKEN=t0k", "image-working-container"],
        [*prefix, "rm", "image-working-container"],
    ]
    assert ran == [
        [*prefix, "run", "image-working-container", "--", "/opt/venv/bin/my-service", "health"]
    ]


def test_a_buildah_image_that_cannot_start_is_one_line() -> None:
    def refused(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 125, "", "error: image not known\n")

    engine = get("buildah", {}, refused)
    with pytest.raises(ImageError, match=r"^cannot start a container from app:x: error: image not"):
        run_with_buildah(engine, "app:x", ["/app"], None, [], lambda argv, env: 0)
