"""tooling.images.platforms and what depends on a platform: the platforms chosen, qemu,
image names, base-image pins per platform, budgets per platform, build options."""

import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from project_files import make_project
from tooling import ToolingError
from tooling.base_image import (
    base_image_for_build,
    read_base_pins,
    refresh_base_pins,
    write_base_pins,
)
from tooling.engines import (
    BuildRequest,
    Engine,
    ImageFacts,
    Secrets,
    engine_class,
    read_build_record,
)
from tooling.images import budget_mb, platforms
from tooling.images.build import Run, rebuild_lines
from tooling.images.layering import Start
from tooling.images.tier_image import budget_setting
from tooling.shipping import rebuild
from tooling.shipping.ship import Verified

DIGEST = "sha256:" + "ab" * 32
ARM = "sha256:" + "cd" * 32


def test_the_platforms_are_the_option_then_the_setting_then_this_machine(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    plain = make_project(tmp_path / "plain")
    assert platforms.chosen_platforms(plain, None, host="linux/arm64") == ["linux/arm64"]
    (tmp_path / "both").mkdir()
    both = make_project(tmp_path / "both", lockstep='platforms = ["linux/amd64", "linux/arm64"]\n')
    assert platforms.chosen_platforms(both, None) == ["linux/amd64", "linux/arm64"]
    assert platforms.chosen_platforms(both, "linux/arm64") == ["linux/arm64"]
    assert platforms.chosen_platforms(both, "linux/arm64, linux/arm64,linux/amd64") == [
        "linux/arm64",
        "linux/amd64",
    ]
    assert platforms.host_platform("x86_64") == "linux/amd64"
    assert platforms.host_platform("aarch64") == "linux/arm64"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "arm64",
            "--platform: 'arm64' is not a platform; write it like linux/amd64 or linux/arm64",
        ),
        (",", "--platform is empty: name platforms like linux/amd64,linux/arm64"),
        ("linux/ARM64", "--platform: 'linux/ARM64' is not a platform"),
    ],
)
def test_a_bad_platform_is_one_line(text: str, message: str) -> None:
    with pytest.raises(platforms.PlatformError) as raised:
        platforms.parse_platforms(text)
    assert str(raised.value).startswith(message)


def test_a_bad_platforms_setting_is_refused_on_load(tmp_path: Path) -> None:
    with pytest.raises(ToolingError, match=r"platforms.*a platform like linux/amd64"):
        make_project(tmp_path, lockstep='platforms = ["arm64"]\n')


def test_several_platforms_have_an_image_each_and_one_index() -> None:
    assert platforms.tagged("app:sniper", ["linux/arm64"]) == {"linux/arm64": "app:sniper"}
    assert platforms.tagged("app:sniper", ["linux/amd64", "linux/arm64"]) == {
        "linux/amd64": "app:sniper-linux-amd64",
        "linux/arm64": "app:sniper-linux-arm64",
    }
    assert platforms.index_image("app:sniper") == "app:sniper-index"


def test_a_foreign_platform_needs_qemu_registered(tmp_path: Path) -> None:
    host = "linux/amd64"
    assert platforms.emulation_problem("linux/amd64", host, tmp_path) is None
    problem = platforms.emulation_problem("linux/arm64", host, tmp_path)
    assert problem == (
        "building linux/arm64 on this linux/amd64 machine runs its programs under qemu, and "
        "qemu-aarch64 is not registered with binfmt_misc: run `apt-get install "
        "qemu-user-static binfmt-support` as root (or `update-binfmts --enable qemu-aarch64`)"
    )
    (tmp_path / "qemu-aarch64").write_text("disabled\ninterpreter /usr/bin/qemu-aarch64\n")
    assert platforms.emulation_problem("linux/arm64", host, tmp_path) == problem
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\n")
    assert platforms.emulation_problem("linux/arm64", host, tmp_path) is None


def test_a_base_is_pinned_per_platform_and_old_pins_still_read(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (tmp_path / "base-images.lock").write_text(f"python:3.11-slim@{DIGEST}\n")  # before platforms
    assert base_image_for_build(project, "sniper", None, "linux/arm64")[0].endswith(DIGEST)
    (tmp_path / "base-images.lock").write_text(
        f"python:3.11-slim@{DIGEST}\npython:3.11-slim@{ARM} linux/arm64\n"
    )
    assert base_image_for_build(project, "sniper", None, "linux/arm64") == (
        f"python:3.11-slim@{ARM}",
        None,
    )
    assert base_image_for_build(project, "sniper", None, "linux/amd64")[0].endswith(DIGEST)
    assert base_image_for_build(project, "sniper", None)[0].endswith(DIGEST)
    pins = read_base_pins(tmp_path)
    write_base_pins(tmp_path, pins)
    assert read_base_pins(tmp_path) == pins
    assert f"python:3.11-slim@{ARM} linux/arm64\n" in (tmp_path / "base-images.lock").read_text()
    (tmp_path / "base-images.lock").write_text(f"python:3.11-slim@{ARM} arm64\n")
    with pytest.raises(ToolingError, match=r"is not IMAGE@sha256:DIGEST \[PLATFORM\]"):
        read_base_pins(tmp_path)


def test_a_platform_s_budget_wins_over_the_tier_s(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        lockstep=(
            "image-budget-mb = { sniper = 250 }\n"
            'platform-budget-mb = { "linux/arm64" = { sniper = 280 } }\n'
        ),
    )
    assert budget_mb(project, "sniper") == 250
    assert budget_mb(project, "sniper", "linux/amd64") == 250
    assert budget_mb(project, "sniper", "linux/arm64") == 280
    assert budget_mb(project, "hunter", "linux/arm64") == 500
    assert budget_setting(project, "sniper", "linux/arm64") == (
        '[tool.lockstep.platform-budget-mb."linux/arm64"] sniper'
    )
    assert budget_setting(project, "sniper", None) == "[tool.lockstep.image-budget-mb] sniper"


def test_the_build_asks_the_engine_for_the_platform() -> None:
    request = BuildRequest("sniper", "app:sniper-linux-arm64", "3.11", "0", platform="linux/arm64")
    argv = request.common_argv()
    assert argv[argv.index("--platform") + 1] == "linux/arm64"
    assert "--platform" not in BuildRequest("sniper", "app:sniper", "3.11", "0").common_argv()


def test_docker_names_the_engines_that_build_several_platforms() -> None:
    docker = engine_class("docker")({})
    assert docker.several_platforms_problem() == (
        "docker builds one platform at a time here: build several platforms with "
        "--engine buildah or --engine podman (manifest lists), or name one with --platform"
    )
    assert engine_class("buildah")({}).several_platforms_problem() is None


class PlatformStub(Engine):
    """An engine that pulls `python:3.11-slim` for a platform: its digest is that platform's."""

    name = "stub"

    def __init__(self) -> None:
        super().__init__({}, run=self.answer)
        self.platform = ""

    def answer(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if "--platform" in argv:
            self.platform = argv[argv.index("--platform") + 1]
        return subprocess.CompletedProcess(list(argv), 0, "", "")

    def inspect(self, image: str) -> ImageFacts | None:
        digest = ARM if self.platform == "linux/arm64" else DIGEST
        return ImageFacts("1" * 64, [], [], "", [], {}, 0, digest)


def test_refresh_pins_each_platform_s_base_when_several_are_built(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    both = ["linux/amd64", "linux/arm64"]
    pins = refresh_base_pins(project, ["base"], PlatformStub(), pull=True, platforms=both)
    assert pins == {
        "python:3.11-slim linux/amd64": f"python:3.11-slim@{DIGEST}",
        "python:3.11-slim linux/arm64": f"python:3.11-slim@{ARM}",
    }
    assert base_image_for_build(project, "sniper", None, "linux/arm64")[0].endswith(ARM)
    assert base_image_for_build(project, "sniper", None, "linux/amd64")[0].endswith(DIGEST)
    with pytest.raises(ToolingError, match=r"^--local pins the one image the engine has"):
        refresh_base_pins(project, ["base"], PlatformStub(), pull=False, platforms=both)
    one = refresh_base_pins(project, ["base"], PlatformStub(), pull=True, platforms=both[1:])
    assert one == {"python:3.11-slim": f"python:3.11-slim@{DIGEST}"}


def test_a_rebuilt_index_is_compared_platform_by_platform() -> None:
    published = {"linux/amd64": "a" * 64, "linux/arm64": "b" * 64}
    built = {"app:sniper-linux-amd64": "a" * 64, "app:sniper-linux-arm64": "c" * 64}
    same, problems = rebuild_lines(
        "app:sniper", "reg/app:sniper (linux/amd64, linux/arm64)", built, published
    )
    assert same == [
        f"rebuilt from this commit: image ID {'a' * 64}, the same as reg/app:sniper (linux/amd64)"
    ]
    assert problems == [
        f"reg/app:sniper (linux/arm64): rebuilt from this commit, the image ID is {'c' * 64}, "
        f"not {'b' * 64} as published"
    ]
    single = rebuild_lines("app:sniper", "reg/app:sniper", {"app:sniper": "a" * 64}, {"": "a" * 64})
    assert single == (
        [f"rebuilt from this commit: image ID {'a' * 64}, the same as reg/app:sniper"],
        [],
    )


class RecordingEngine(Engine):
    """An engine that builds nothing: it keeps each request and answers an image ID."""

    name = "buildah"

    def __init__(self) -> None:
        super().__init__({})
        self.requests: list[BuildRequest] = []

    def build(self, request: BuildRequest, context: Path) -> str:
        self.requests.append(request)
        return f"{len(self.requests):064d}"


def test_a_layered_tier_keeps_its_chain_per_platform(tmp_path: Path) -> None:
    """hunter on sniper's environment, per platform: each platform's environment image."""
    project = make_project(tmp_path)
    for tier in ("sniper", "hunter"):
        (tmp_path / "requirements" / f"{tier}.txt").write_text("")
    starts = {
        "sniper": Start("sniper", None, True),
        "hunter": Start("hunter", "sniper", True),
    }
    engine = RecordingEngine()
    for platform in ("linux/amd64", "linux/arm64"):
        run = Run(
            project, engine, starts, {"sniper": ("base@x", None), "hunter": ("base@x", None)},
            None, "0", "0.1.0", Secrets(), None, lambda line: None, platform, True,
        )  # fmt: skip
        run.build_all(["hunter"], None, lambda line: None)
    built = [(r.tag, r.platform, r.environment_base) for r in engine.requests]
    assert built == [
        ("localhost/app-environment:sniper-linux-amd64", "linux/amd64", "bare"),
        ("app:hunter-linux-amd64", "linux/amd64", "localhost/app-environment:sniper-linux-amd64"),
        ("localhost/app-environment:sniper-linux-arm64", "linux/arm64", "bare"),
        ("app:hunter-linux-arm64", "linux/arm64", "localhost/app-environment:sniper-linux-arm64"),
    ]
    recorded = read_build_record(tmp_path)
    assert recorded["app:hunter-linux-arm64"]["platform"] == "linux/arm64"


def verified_index(**changes: Any) -> Verified:
    published = {"linux/amd64": "a" * 64, "linux/arm64": "b" * 64}
    found = Verified("reg/app:sniper (linux/amd64, linux/arm64)", tier="sniper", commit="abc1234")
    found.image_ids = published
    return replace(found, **changes)


def test_verify_rebuild_builds_each_platform_of_an_index_and_names_the_one_that_differs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked: list[dict[str, Any]] = []

    def build_tiers(the_project: Any, chosen: list[str], engine: Any, base: Any, *args: Any,
                    **options: Any) -> dict[str, str]:  # fmt: skip
        asked.append({"chosen": chosen, "engine": engine, "base": base, **options})
        return {"app:sniper-linux-amd64": "a" * 64, "app:sniper-linux-arm64": "c" * 64}

    monkeypatch.setattr(rebuild, "build_tiers", build_tiers)
    shown: list[str] = []
    the_project = make_project(tmp_path)
    problems = rebuild.rebuild_problems(
        the_project, verified_index(), "podman", lambda: True, log=shown.append
    )
    assert [(a["chosen"], a["engine"], a["base"], a["platform"]) for a in asked] == [
        (["sniper"], "podman", None, "linux/amd64,linux/arm64")
    ]
    assert shown[-1] == (
        f"rebuilt from this commit: image ID {'a' * 64}, the same as reg/app:sniper (linux/amd64)"
    )
    assert problems == [
        f"reg/app:sniper (linux/arm64): rebuilt from this commit, the image ID is {'c' * 64}, "
        f"not {'b' * 64} as published"
    ]


def test_verify_rebuild_builds_nothing_for_a_failed_verify_or_uncommitted_changes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(rebuild, "build_tiers", lambda *a, **k: pytest.fail("built"))
    the_project = make_project(tmp_path)
    failed = verified_index(problems=["a file differs"])
    assert rebuild.rebuild_problems(the_project, failed, None, lambda: True) == []
    assert rebuild.rebuild_problems(
        the_project, verified_index(uncommitted=2), None, lambda: True
    ) == [
        "--rebuild builds the work tree, whose uncommitted changes are not commit abc1234: "
        "commit or stash them, then verify with --rebuild again"
    ]
