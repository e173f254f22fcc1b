"""Which tier's environment each tier's image starts from (tooling/images/layering.py)."""

from __future__ import annotations

from pathlib import Path

from tooling import tiers
from tooling.images import layering
from tooling.images.layering import Start
from tooling.project import load

HASH = {
    "pydantic": "1" * 64,
    "structlog": "2" * 64,
    "numpy": "3" * 64,
    "pandas": "4" * 64,
    "idna": "5" * 64,
}


def lock_text(*pins: str, options: str = "") -> str:
    """A lock of `name==version` pins, each with its hash from HASH (or the one after @)."""
    lines = [options] if options else []
    for pin in pins:
        pin, _, digest = pin.partition("@")
        lines += [f"{pin} \\", f"    --hash=sha256:{digest or HASH[pin.split('==')[0]]}"]
    return "\n".join(lines) + "\n"


def project_with(root: Path, inputs: dict[str, str], locks: dict[str, str], tool: str = "") -> Path:
    (root / ".python-version").write_text("3.11\n")
    (root / "pyproject.toml").write_text(f'[project]\nname = "app"\n[tool.lockstep]\n{tool}')
    requirements = root / "requirements"
    requirements.mkdir()
    for name, text in inputs.items():
        (requirements / f"{name}.in").write_text(text)
    for name, text in locks.items():
        (requirements / f"{name}.txt").write_text(text)
    return root


def plan_of(root: Path) -> dict[str, Start]:
    project = load(root)
    return layering.plan(project, tiers.read_tiers(project.requirements_dir))


BASE = lock_text("pydantic==2.0", "structlog==25.4")
INPUTS = {
    "base": "pydantic\nstructlog\n",
    "sniper": "-r base.in\n",
    "hunter": "-r base.in\nnumpy\n",
    "strategist": "-r hunter.in\npandas\n",
}
LOCKS = {
    "base": BASE,
    "sniper": BASE,
    "hunter": lock_text("numpy==2.3", "pydantic==2.0", "structlog==25.4"),
    "strategist": lock_text("numpy==2.3", "pandas==2.2", "pydantic==2.0", "structlog==25.4"),
}


def test_each_child_builds_on_its_parent_and_one_with_nothing_of_its_own_adds_no_layer(
    tmp_path: Path,
) -> None:
    starts = plan_of(project_with(tmp_path, INPUTS, LOCKS))
    assert starts == {
        "base": Start("base", None, True),
        "sniper": Start("sniper", "base", False),
        "hunter": Start("hunter", "base", True),
        "strategist": Start("strategist", "hunter", True),
    }
    assert layering.ancestors(starts, "strategist") == ["base", "hunter"]
    assert layering.installed(starts, "strategist") == ["base", "hunter", "strategist"]
    assert layering.installed(starts, "sniper") == ["base"]
    assert layering.environment_base("app", starts["hunter"]) == "localhost/app-environment:base"
    assert layering.environment_base("app", starts["base"]) == "bare"
    one_of_several = layering.environment_base(
        "app", starts["hunter"], lambda i: f"{i}-linux-arm64"
    )
    assert one_of_several == "localhost/app-environment:base-linux-arm64"
    assert {name: start.stage for name, start in starts.items()} == {
        "base": "installed",
        "sniper": "inherited",
        "hunter": "installed",
        "strategist": "installed",
    }


def test_a_tier_starts_from_the_base_image_when_its_parent_s_layers_are_not_right_for_it(
    tmp_path: Path,
) -> None:
    """Another hash of a shared pin, another index, another base image, another solve group."""
    cases = {
        "hash": ({"hunter": lock_text("numpy==2.3", f"pydantic==2.0@{'9' * 64}", "structlog==25.4")}, ""),
        "index": (
            {"hunter": lock_text("numpy==2.3", "pydantic==2.0", "structlog==25.4", options="--index-url https://mirror.example/simple")},
            "",
        ),
        "base image": ({}, 'base-images = {hunter = "debian:12"}\n'),
        "solve group": ({}, '[tool.lockstep.solve-groups]\nfleet = ["hunter", "strategist"]\n'),
    }  # fmt: skip
    for case, (locks, tool) in cases.items():
        root = tmp_path / case.replace(" ", "-")
        root.mkdir()
        starts = plan_of(project_with(root, INPUTS, {**LOCKS, **locks}, tool))
        assert starts["hunter"] == Start("hunter", None, True), case
        assert starts["sniper"].parent == "base", case


def test_of_two_parents_the_larger_is_built_on(tmp_path: Path) -> None:
    inputs = {**INPUTS, "mixed": "-r sniper.in\n-r hunter.in\nidna\n"}
    locks = {
        **LOCKS,
        "mixed": lock_text("idna==3.10", "numpy==2.3", "pydantic==2.0", "structlog==25.4"),
    }
    starts = plan_of(project_with(tmp_path, inputs, locks))
    assert starts["mixed"] == Start("mixed", "hunter", True)
    assert layering.installed(starts, "mixed") == ["base", "hunter", "mixed"]
