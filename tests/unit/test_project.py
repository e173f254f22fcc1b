import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tooling import ToolingError, lock
from tooling.project import (
    Project,
    load,
    pyproject_rewrites,
    python_version_problems,
    python_version_rewrites,
    tier_install_args,
    wheel_requirement_problems,
)
from uv_stand_in import tier_compile


def make_project(root: Path, python_version: str = "3.11") -> Path:
    (root / ".python-version").write_text(python_version + "\n", encoding="utf-8")
    (root / "pyproject.toml").write_text('[tool.lockstep]\ndev-tier = "tools"\n', encoding="utf-8")
    (root / "requirements").mkdir()
    return root


def test_reads_version_and_settings(tmp_path: Path) -> None:
    project = load(make_project(tmp_path, "3.12.4"))
    assert project.python_version == "3.12.4"
    assert project.python_minor == "3.12"
    assert project.dev_tier == "tools"


@pytest.mark.parametrize("bad", ["3", "python3.11", "3.11\n3.12", ""])
def test_bad_python_version_is_one_clear_line(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ToolingError, match=r"\.python-version says .*write one version"):
        load(make_project(tmp_path, bad))


def test_missing_python_version(tmp_path: Path) -> None:
    make_project(tmp_path).joinpath(".python-version").unlink()
    with pytest.raises(ToolingError, match=r"\.python-version is missing"):
        load(tmp_path)


def test_installs_the_lock_when_present(tmp_path: Path) -> None:
    project = load(make_project(tmp_path))
    (tmp_path / "requirements" / "tools.in").write_text("pytest\n", encoding="utf-8")
    args, note = tier_install_args(project, "tools")
    assert args == ["-r", str(tmp_path / "requirements" / "tools.in")]
    assert note is not None and "nox -s lock" in note
    (tmp_path / "requirements" / "tools.txt").write_text("pytest==8.0\n", encoding="utf-8")
    args, note = tier_install_args(project, "tools")
    assert args[:1] == ["--require-hashes"] and note is None


def test_unknown_tier(tmp_path: Path) -> None:
    with pytest.raises(ToolingError, match=r"has no nope\.in"):
        tier_install_args(load(make_project(tmp_path)), "nope")


def test_disagreeing_versions_are_named(tmp_path: Path) -> None:
    root = make_project(tmp_path, "3.11.9")
    (root / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.12"\n')
    (root / "Dockerfile").write_text("ARG PYTHON_VERSION=3.11.9\nFROM python:3.12-slim AS x\n")
    problems = python_version_problems(load(root))
    assert len(problems) == 2
    assert "requires-python is '>=3.12' but .python-version says 3.11.9" in problems[0]
    assert problems[1].startswith("Dockerfile names Python 3.12 but .python-version says 3.11.9")


@pytest.mark.parametrize("bad", ["3.99", "3.0.99", "3.9", "3.10.4", "3.16"])
def test_version_of_no_usable_release_line_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ToolingError) as raised:
        load(make_project(tmp_path, bad))
    assert str(raised.value) == (
        f".python-version says {bad!r}, which is not a CPython release line this project can "
        "use: write one of 3.11, 3.12, 3.13, 3.14, 3.15 (or 3.N.M of one)"
    )


def test_byte_order_marks_are_accepted(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / ".python-version").write_bytes(b"\xef\xbb\xbf3.12\r\n")
    (root / "pyproject.toml").write_bytes(b'\xef\xbb\xbf[tool.lockstep]\r\ndev-tier = "tools"\r\n')
    project = load(root)
    assert project.python_version == "3.12"
    assert project.dev_tier == "tools"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (".python-version", b"3.1\xff\n", ".python-version:1: byte 0xff is not UTF-8"),
        (
            "pyproject.toml",
            b'[project]\nname = "x"\n# caf\xe9\n',
            "pyproject.toml:3: byte 0xe9 is not UTF-8",
        ),
    ],
)
def test_other_encodings_are_one_line_naming_the_file_and_line(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    root = make_project(tmp_path)
    (root / name).write_bytes(content)
    with pytest.raises(ToolingError) as raised:
        load(root)
    assert str(raised.value) == f"{message}; save the file as UTF-8"


@pytest.mark.parametrize(
    ("pyproject", "message"),
    [
        ("[tool\n", "pyproject.toml is not valid TOML: "),
        ('tool = "x"\n', "pyproject.toml: tool must be a table ([tool])"),
        ("project = 1\n", "pyproject.toml: project must be a table ([project])"),
    ],
)
def test_malformed_pyproject_is_one_line(tmp_path: Path, pyproject: str, message: str) -> None:
    root = make_project(tmp_path)
    (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    with pytest.raises(ToolingError, match=re.escape(message)):
        load(root)


PYPROJECT = """\
[project]
name = "demo"
# Follows .python-version.
requires-python = ">=3.11"  # rewritten by the lock

[tool.ruff]
target-version = 'py311'
line-length = 100

[tool.ruff.lint]
select = ["E"]

[ tool.mypy ]
"python_version" = "3.11"
strict = true
"""


def test_rewrites_only_the_three_versions_byte_for_byte(tmp_path: Path) -> None:
    root = make_project(tmp_path, "3.12.4")
    original = ("\ufeff" + PYPROJECT.replace("\n", "\r\n")).encode()
    (root / "pyproject.toml").write_bytes(original)
    project = load(root)
    assert len(python_version_problems(project)) == 3
    rewrites = python_version_rewrites(project)
    assert list(rewrites) == [root / "pyproject.toml"]
    expected = (
        original.decode()
        .replace('">=3.11"', '">=3.12"')
        .replace("'py311'", "'py312'")
        .replace('"3.11"', '"3.12"')
    )
    assert rewrites[root / "pyproject.toml"] == expected
    (root / "pyproject.toml").write_bytes(expected.encode())
    assert python_version_problems(load(root)) == []
    assert python_version_rewrites(load(root)) == {}


def test_absent_keys_are_not_added(tmp_path: Path) -> None:
    root = make_project(tmp_path, "3.13")
    (root / "pyproject.toml").write_text('[tool.mypy]\npython_version = "3.11"\n')
    assert python_version_rewrites(load(root)) == {
        root / "pyproject.toml": '[tool.mypy]\npython_version = "3.13"\n'
    }


@pytest.mark.parametrize(
    "pyproject",
    [
        '[tool]\nruff.target-version = "py311"\n',
        '[tool.ruff]\ntarget-version = """py311"""\n',
        "[project]\nrequires-python = 3.11\n",
    ],
)
def test_a_version_it_cannot_rewrite_safely_is_one_line(tmp_path: Path, pyproject: str) -> None:
    root = make_project(tmp_path, "3.12")
    (root / "pyproject.toml").write_text(pyproject)
    with pytest.raises(ToolingError, match=r"^cannot rewrite pyproject\.toml .* by hand$"):
        python_version_rewrites(load(root))


def fake_uv(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    if (listing := tier_compile(argv, cwd)) is not None:
        return listing
    output = Path(argv[argv.index("--output-file") + 1])
    output.write_text(
        f"structlog==24.1.0 \\\n    --hash=sha256:{'c' * 64}\n    # via -r requirements/base.in\n"
    )
    return subprocess.CompletedProcess(argv, 0, "", "")


def test_the_lock_rewrites_pyproject_with_the_locks(tmp_path: Path) -> None:
    root = make_project(tmp_path, "3.11")
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "requirements" / "base.in").write_text("structlog\n")
    lock.lock(load(root), run=fake_uv)
    assert lock.check(load(root)) == []
    (root / ".python-version").write_text("3.13\n")
    problems = lock.check(load(root))
    assert any("target-version is 'py311' but .python-version says 3.13" in p for p in problems)
    result = lock.lock(load(root), run=fake_uv)
    assert root / "pyproject.toml" in result.written
    assert "--python-version 3.13" in (root / "requirements" / "base.txt").read_text()
    assert lock.check(load(root)) == []


def test_a_failed_lock_leaves_pyproject_alone(tmp_path: Path) -> None:
    root = make_project(tmp_path, "3.13")
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "requirements" / "base.in").write_text("structlog\n")

    def failing_uv(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "error: no network")

    with pytest.raises(ToolingError, match="no network"):
        lock.lock(load(root), run=failing_uv)
    assert (root / "pyproject.toml").read_text() == PYPROJECT
    assert list((root / "requirements").glob("*.txt")) == []


REMOVING = """\
[tool.lockstep]
# the dev tier is left out: "base" would break the bake's rule that no tier includes it

[tool.lockstep.image-budget-mb]
# per tier
base = 250
sniper = 250  # going away
"""


def test_a_removed_tiers_entries_are_dropped_by_the_lock(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "pyproject.toml").write_text(REMOVING)
    (root / "requirements" / "base.in").write_text("structlog\n")
    (root / "requirements" / "sniper.in").write_text("-r base.in\n")
    lock.lock(load(root), run=fake_uv)
    (root / "requirements" / "sniper.in").unlink()
    project = load(root)
    assert [str(use.key) for use in project.removed_tier_entries] == [
        "[tool.lockstep.image-budget-mb] sniper"
    ]
    assert pyproject_rewrites(project) == {
        root / "pyproject.toml": REMOVING.replace("sniper = 250  # going away\n", "")
    }
    result = lock.lock(project, run=fake_uv)
    assert result.removed == [
        root / "requirements" / "sniper.txt",
        root / "requirements" / "pylock.sniper.toml",
    ]
    assert "sniper" not in (root / "pyproject.toml").read_text()
    assert lock.check(load(root)) == []


def test_an_entry_for_a_tier_that_never_had_a_lock_is_still_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "pyproject.toml").write_text(REMOVING)
    (root / "requirements" / "base.in").write_text("structlog\n")
    with pytest.raises(ToolingError, match=r"image-budget-mb\] sniper names tier 'sniper'"):
        load(root)


def test_an_entry_it_cannot_drop_safely_is_one_line(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "pyproject.toml").write_text(
        "[tool.lockstep]\nimage-budget-mb = { base = 250, sniper = 250 }\n"
    )
    (root / "requirements" / "base.in").write_text("structlog\n")
    (root / "requirements" / "sniper.in").write_text("-r base.in\n")
    lock.lock(load(root), run=fake_uv)
    (root / "requirements" / "sniper.in").unlink()
    with pytest.raises(ToolingError, match="remove that entry by hand"):
        lock.lock(load(root), run=fake_uv)
    assert (root / "requirements" / "sniper.txt").exists()


def hatch_settings(files: list[str], only_include: list[str]) -> dict[str, Any]:
    hooks = {"requirements_txt": {"files": files}}
    sdist = {"only-include": only_include}
    return {
        "tool": {"hatch": {"metadata": {"hooks": hooks}, "build": {"targets": {"sdist": sdist}}}}
    }


def test_the_wheel_reads_its_requirements_from_the_root_tier() -> None:
    good = hatch_settings(["requirements/core.in"], ["src", "requirements/core.in"])
    assert wheel_requirement_problems(Project(Path("."), "3.11", good), "core") == []
    renamed = hatch_settings(["requirements/base.in"], ["src", "requirements/base.in"])
    assert wheel_requirement_problems(Project(Path("."), "3.11", renamed), "core") == [
        "pyproject.toml [tool.hatch.metadata.hooks.requirements_txt] files is "
        "['requirements/base.in'], but the root tier is requirements/core.in: "
        'write files = ["requirements/core.in"]',
        "pyproject.toml [tool.hatch.build.targets.sdist] only-include lacks "
        "requirements/core.in, which the wheel's requirements are read from: add it",
    ]
    assert wheel_requirement_problems(Project(Path("."), "3.11", {}), "core") == []


DEVCONTAINER = """{
  // VS Code builds the dev stage itself
  "build": {
    "args": {
      "PYTHON_VERSION": "3.11",
      "TIER": "dev"
    }
  }
}
"""


def test_the_dev_containers_python_follows_python_version(tmp_path: Path) -> None:
    root = make_project(tmp_path, "3.12.4")
    (root / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.12"\n')
    (root / ".devcontainer").mkdir()
    path = root / ".devcontainer" / "devcontainer.json"
    path.write_bytes(DEVCONTAINER.replace("\n", "\r\n").encode())
    project = load(root)
    assert python_version_problems(project) == [
        ".devcontainer/devcontainer.json passes PYTHON_VERSION '3.11' but .python-version says "
        "3.12.4 (`nox -s lock` rewrites it)"
    ]
    rewritten = pyproject_rewrites(project)
    assert list(rewritten) == [path]  # pyproject.toml already agrees
    assert rewritten[path] == DEVCONTAINER.replace("3.11", "3.12.4").replace("\n", "\r\n")
    path.write_bytes(rewritten[path].encode())
    assert python_version_problems(load(root)) == []
    assert pyproject_rewrites(load(root)) == {}


def test_a_project_without_a_dev_container_has_nothing_to_follow(tmp_path: Path) -> None:
    root = make_project(tmp_path, "3.12")
    (root / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.12"\n')
    assert python_version_problems(load(root)) == []
    assert pyproject_rewrites(load(root)) == {}
