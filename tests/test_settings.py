"""A baked project refuses bad settings, credentials, bad encodings and unknown Python
versions with one line from every entry point, and `.python-version` alone moves the version."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.conftest import TEMPLATE
from tests.conftest import run_in as run

GOOD_LOCKSTEP = (
    '[tool.lockstep]\n# The tier whose lock the test and lint sessions install.\ndev-tier = "dev"\n'
)


def tree(project: Path) -> dict[str, bytes]:
    """Every file of the project but nox's environments."""
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".nox" not in path.parts and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("baked")
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output)))


@pytest.fixture
def project(baked: Path, tmp_path: Path) -> Path:
    copy = tmp_path / baked.name
    shutil.copytree(baked, copy)
    return copy


Change = Callable[[Path], None]


def replace_in_pyproject(old: str, new: str) -> Change:
    def change(project: Path) -> None:
        pyproject = project / "pyproject.toml"
        text = pyproject.read_text()
        assert old in text
        pyproject.write_text(text.replace(old, new, 1))

    return change


def settings(lockstep: str) -> Change:
    """Replace the generated [tool.lockstep] table by this text."""
    return replace_in_pyproject(GOOD_LOCKSTEP, lockstep)


def settings_table_replaced_by(text: str) -> Change:
    """Replace [tool.lockstep] and its image budgets, everything up to [tool.pytest...]."""

    def change(project: Path) -> None:
        pyproject = project / "pyproject.toml"
        old = pyproject.read_text()
        start, end = old.index("[tool.lockstep]"), old.index("[tool.pytest.ini_options]")
        pyproject.write_text(old[:start] + text + "\n" + old[end:])

    return change


def write(name: str, content: bytes) -> Change:
    def change(project: Path) -> None:
        (project / name).write_bytes(content)

    return change


def delete(name: str) -> Change:
    return lambda project: (project / name).unlink()


def append_to_pyproject(content: bytes) -> Change:
    def change(project: Path) -> None:
        pyproject = project / "pyproject.toml"
        pyproject.write_bytes(pyproject.read_bytes() + content)

    return change


# (what to write into the project, the one line every entry point must print)
BAD_INPUTS = {
    "extra-index-urls is a string": (
        settings('[tool.lockstep]\nextra-index-urls = "https://download.pytorch.org/whl/cpu"\n'),
        "error: pyproject.toml: [tool.lockstep] extra-index-urls must be a list of URLs, got a "
        'string; write it like extra-index-urls = ["https://download.pytorch.org/whl/cpu"]',
    ),
    "extra-index-urls holds integers": (
        settings("[tool.lockstep]\nextra-index-urls = [1, 2]\n"),
        "error: pyproject.toml: [tool.lockstep] extra-index-urls item 1 must be a URL "
        '(https://...), got an integer (1); write it like extra-index-urls = ["https://download.pytorch.org/whl/cpu"]',
    ),
    "index-url is a number": (
        settings("[tool.lockstep]\nindex-url = 123\n"),
        "error: pyproject.toml: [tool.lockstep] index-url must be a URL (https://...), got an "
        'integer (123); write it like index-url = "https://pypi.example.com/simple"',
    ),
    "require-exact-pins is a string": (
        settings('[tool.lockstep]\nrequire-exact-pins = "false"\n'),
        "error: pyproject.toml: [tool.lockstep] require-exact-pins must be true or false, got "
        'a string ("false"); write it like require-exact-pins = true',
    ),
    "a typo in a key": (
        settings("[tool.lockstep]\nrequire_exact_pins = true\n"),
        "error: pyproject.toml: [tool.lockstep] require_exact_pins is not a setting; "
        "did you mean require-exact-pins?",
    ),
    "[tool.lockstep] is a string": (
        settings_table_replaced_by('[tool]\nlockstep = "dev"\n'),
        "error: pyproject.toml: [tool.lockstep] must be a table, got a string",
    ),
    "an image budget is a string": (
        replace_in_pyproject("base = 250", 'base = "250"'),
        "error: pyproject.toml: [tool.lockstep.image-budget-mb] base must be a positive whole "
        "number, got a string; write it like [tool.lockstep.image-budget-mb] base = 250",
    ),
    "dev-tier names no tier": (
        settings('[tool.lockstep]\ndev-tier = "tools"\n'),
        "error: pyproject.toml: [tool.lockstep] dev-tier names tier 'tools', which has no "
        "requirements/tools.in; remove it or add requirements/tools.in "
        "(tiers: base, dev, hunter, sniper, strategist)",
    ),
    "dev-tier is a tier others include": (
        settings('[tool.lockstep]\ndev-tier = "base"\n'),
        "error: pyproject.toml: [tool.lockstep] dev-tier is 'base', which tier 'hunter' "
        "includes (-r base.in): it would ship the test and lint tools; name a tier no other "
        "tier includes: dev, sniper",
    ),
    "a budget for a removed tier": (
        delete("requirements/sniper.in"),
        "error: pyproject.toml: [tool.lockstep.image-budget-mb] sniper names tier 'sniper', "
        "which has no requirements/sniper.in; remove it or add requirements/sniper.in "
        "(tiers: base, dev, hunter, strategist)",
    ),
    "a password in the index URL": (
        settings(
            '[tool.lockstep]\nindex-url = "https://alice:s3cr3t-t0ken@pypi.example.com/simple"\n'
        ),
        "error: pyproject.toml: [tool.lockstep] index-url must not hold credentials "
        "(https://***@pypi.example.com/simple): every lock would record them; keep the URL "
        "without them and put the login in ~/.netrc (machine pypi.example.com) or a keyring, "
        "or drop the key and set UV_INDEX_URL and PIP_INDEX_URL in the environment",
    ),
    ".python-version names no release": (
        write(".python-version", b"3.99\n"),
        "error: .python-version says '3.99', which is not a CPython release line this project "
        "can use: write one of 3.11, 3.12, 3.13, 3.14, 3.15 (or 3.N.M of one)",
    ),
    ".python-version is not UTF-8": (
        write(".python-version", b"3.1\xb2\n"),
        "error: .python-version:1: byte 0xb2 is not UTF-8; save the file as UTF-8",
    ),
    "pyproject.toml is not UTF-8": (
        append_to_pyproject(b"# na\xefve\n"),
        "error: pyproject.toml:{last}: byte 0xef is not UTF-8; save the file as UTF-8",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize(
    "command",
    [("nox", "-s", "lock"), ("nox", "-s", "lock", "--", "--check"), ("invoke", "lock")],
    ids=["nox lock", "nox check", "invoke lock"],
)
def test_bad_input_is_one_line_and_writes_nothing(
    project: Path, case: str, command: tuple[str, ...]
) -> None:
    change, line = BAD_INPUTS[case]
    change(project)
    line = line.replace("{last}", str(len((project / "pyproject.toml").read_bytes().splitlines())))
    before = tree(project)
    result = run(project, *command)
    assert result.returncode == 1
    assert result.stderr.strip() == line
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "alice" not in result.stdout + result.stderr
    assert tree(project) == before


RECORD_THE_LOCKS_AS_CURRENT = (
    "from pathlib import Path\n"
    "from tooling import project\n"
    "from tooling.lock import fresh\n"
    "current = project.load(Path('.'))\n"
    "fresh.record(current, fresh.inputs_digest(current))\n"
    "print(fresh.load_project(Path('.'))[1])\n"
)


@pytest.mark.parametrize(
    "case", ["a typo in a key", "dev-tier names no tier", ".python-version names no release"]
)
@pytest.mark.parametrize(
    "command", [("nox", "--list"), ("nox", "-s", "lock")], ids=["nox list", "nox lock"]
)
def test_a_setting_broken_after_a_lock_is_refused_in_one_line(
    project: Path, case: str, command: tuple[str, ...]
) -> None:
    # what a lock that succeeded leaves: the record a no-op lock stops at (tooling.lock.fresh)
    recorded = run(project, sys.executable, "-c", RECORD_THE_LOCKS_AS_CURRENT)
    assert recorded.stdout.strip() == "True", recorded.stderr  # read without checking again
    assert run(project, "nox", "--list").returncode == 0
    change, line = BAD_INPUTS[case]
    change(project)
    result = run(project, *command)
    assert (result.returncode, result.stderr.strip()) == (1, line)


def test_byte_order_marks_are_accepted(project: Path) -> None:
    for name in (".python-version", "pyproject.toml"):
        path = project / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    result = run(project, "invoke", "tiers")
    assert result.returncode == 0, result.stderr
    assert "strategist <- hunter" in result.stdout


def test_the_generated_readme_says_what_the_lock_does(baked: Path) -> None:
    readme = (baked / "docs" / "locks.md").read_text()
    assert "derives `requires-python`" not in readme
    assert "`nox -s lock`\nrewrites them in the same all-or-nothing write as the locks" in readme
    dockerfile = (baked / "Dockerfile").read_text()
    assert "ARG PYTHON_VERSION\n" in dockerfile and "ARG PYTHON_VERSION=" not in dockerfile
    workflow = (baked / ".github" / "workflows" / "ci.yml").read_text()
    assert "python-version-file: .python-version" in workflow
    assert "python-version:" not in workflow.replace("python-version-file:", "")


@pytest.mark.network
@pytest.mark.slow
def test_python_version_moves_everything_with_one_lock(project: Path) -> None:
    assert run(project, "nox", "-s", "lock").returncode == 0
    pyproject_before = (project / "pyproject.toml").read_text().splitlines()
    devcontainer = project / ".devcontainer" / "devcontainer.json"
    devcontainer_before = devcontainer.read_text()

    (project / ".python-version").write_text("3.12\n")
    stale = run(project, "nox", "-s", "lock", "--", "--check")
    assert stale.returncode == 1
    assert "requires-python is '>=3.11' but .python-version says 3.12" in stale.stderr
    assert (
        ".devcontainer/devcontainer.json passes PYTHON_VERSION '3.11' but .python-version says 3.12"
        in stale.stderr
    )

    locked = run(project, "nox", "-s", "lock")
    assert locked.returncode == 0, locked.stderr
    assert "wrote pyproject.toml" in locked.stderr
    check = run(project, "nox", "-s", "lock", "--", "--check")
    assert check.returncode == 0, check.stderr
    assert "locks are current" in check.stderr

    after = (project / "pyproject.toml").read_text().splitlines()
    changed = [(old, new) for old, new in zip(pyproject_before, after, strict=True) if old != new]
    assert changed == [
        ('requires-python = ">=3.11"', 'requires-python = ">=3.12"'),
        ('target-version = "py311"', 'target-version = "py312"'),
        ('python_version = "3.11"', 'python_version = "3.12"'),
    ]
    assert "--python-version 3.12" in (project / "requirements" / "dev.txt").read_text()
    assert devcontainer.read_text() == devcontainer_before.replace(
        '"PYTHON_VERSION": "3.11"', '"PYTHON_VERSION": "3.12"'
    )
    assert devcontainer.read_text() != devcontainer_before

    (project / ".python-version").write_text("3.11\n")
    back = run(project, "invoke", "lock")
    assert back.returncode == 0, back.stderr
    assert (project / "pyproject.toml").read_text().splitlines() == pyproject_before
    assert devcontainer.read_text() == devcontainer_before
    assert run(project, "invoke", "lock", "--check").returncode == 0
