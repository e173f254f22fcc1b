"""The release-age cooldown against a loopback index with upload times (real uv, no internet)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Bake, read_lock
from tests.conftest import run_in as run
from tests.package_index import PackageIndex, build_wheel

pytestmark = [pytest.mark.slow]

NOW = datetime.datetime.now(datetime.UTC)
TWO_DAYS_AGO = NOW - datetime.timedelta(days=2, hours=1)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PackageIndex]:
    wheels = tmp_path / "wheels"
    with PackageIndex() as served:
        served.add("pkgs", build_wheel(wheels, "alpha", "1.0"))
        served.add("pkgs", build_wheel(wheels, "alpha", "1.1"))
        served.add("pkgs", build_wheel(wheels, "alpha", "1.2"), uploaded=TWO_DAYS_AGO)
        served.add("pkgs", build_wheel(wheels, "beta", "2.0"))
        served.add("pkgs", build_wheel(wheels, "beta", "2.1"), uploaded=TWO_DAYS_AGO)
        served.add("pkgs", build_wheel(wheels, "delta", "1.0"))
        served.add("pkgs", build_wheel(wheels, "delta", "1.1"), uploaded=TWO_DAYS_AGO)
        served.add("pkgs", build_wheel(wheels, "gamma", "1.0"), uploaded=TWO_DAYS_AGO)
        yield served


def configure(project: Path, url: str, cooldown: str, base: str) -> None:
    """Resolve from the loopback index with this cooldown; `base` is requirements/base.in."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    start = text.index("cooldown = ")
    end = text.index("\n", start)
    lines = f'index-url = "{url}"\n{cooldown}'
    if "index-url" in text:
        text = text.replace(text[text.index("index-url") : end], lines)
    else:
        text = text[:start] + lines + text[end:]
    pyproject.write_text(text)
    requirements = project / "requirements"
    for path in requirements.glob("*.in"):
        path.unlink()
    tiers = {"base": base, "sniper": "-r base.in\n", "hunter": "-r base.in\n"}
    tiers |= {"strategist": "-r hunter.in\n", "dev": "-r strategist.in\n"}
    for name, text in tiers.items():
        (requirements / f"{name}.in").write_text(text)


def pins(project: Path, tier: str = "sniper") -> dict[str, str]:
    return {
        str(pin["name"]): str(pin["version"])
        for pin in read_lock(project, f"requirements/{tier}.txt")
    }


def test_the_cooldown_holds_young_releases_back_names_them_and_never_moves_a_pin_back(
    bake: Bake, index: PackageIndex
) -> None:
    project = bake(with_container="no")
    url = index.url("pkgs")
    configure(project, url, "cooldown = false", "delta\n")
    first = run(project, "nox", "-s", "lock")
    assert first.returncode == 0, first.stderr
    assert pins(project) == {"delta": "1.1"}  # no cooldown: the newest release

    cooldown = 'cooldown = "7 days"\ncooldown-exempt = ["Beta"]'
    configure(project, url, cooldown, "alpha\nbeta\ndelta\n")
    stale = run(project, "nox", "-s", "lock", "--", "--check")
    assert stale.returncode == 1
    assert 'cooldown="7 days"' in stale.stdout + stale.stderr  # the header records the setting

    locked = run(project, "nox", "-s", "lock")
    assert locked.returncode == 0, locked.stderr
    # alpha 1.2 is two days old: held back and named; beta is exempt; delta keeps its pin.
    assert pins(project) == {"alpha": "1.1", "beta": "2.1", "delta": "1.1"}
    assert "held back: alpha 1.2 (published 2 days ago); locked 1.1" in locked.stderr
    assert "kept delta 1.1: the 7 days cooldown never moves a pin back" in locked.stderr
    assert "beta" not in "".join(line for line in locked.stderr.splitlines() if "held" in line)
    header = (project / "requirements" / "sniper.txt").read_text()
    assert 'cooldown="7 days" cooldown-exempt=beta' in header
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0

    # A security fix cannot wait: --skip-cooldown takes alpha 1.2 for this run and says so.
    skipped = run(project, "nox", "-s", "lock", "--", "--skip-cooldown", "alpha")
    assert skipped.returncode == 0, skipped.stderr
    assert pins(project)["alpha"] == "1.2"
    assert "alpha 1.1 → 1.2" in skipped.stderr
    assert "cooldown skipped for alpha (--skip-cooldown, this run only)" in skipped.stderr
    assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0

    # A later full upgrade under the cooldown keeps it: no pin ever moves back.
    upgraded = run(project, "nox", "-s", "lock", "--", "--upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert pins(project) == {"alpha": "1.2", "beta": "2.1", "delta": "1.1"}


def test_a_package_with_no_release_old_enough_fails_in_one_line_and_changes_nothing(
    bake: Bake, index: PackageIndex
) -> None:
    project = bake(with_container="no")
    configure(project, index.url("pkgs"), 'cooldown = "7 days"', "alpha\n")
    assert run(project, "nox", "-s", "lock").returncode == 0
    before = {path.name: path.read_bytes() for path in (project / "requirements").glob("*.t*")}

    (project / "requirements" / "base.in").write_text("alpha\ngamma\n")
    failed = run(project, "nox", "-s", "lock")
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if "cannot lock" in line]
    assert len(errors) == 1, failed.stderr
    assert "gamma has no release" in errors[0] and "7 days cooldown" in errors[0]
    assert "cooldown-exempt" in errors[0] and "--skip-cooldown gamma" in errors[0]
    after = {path.name: path.read_bytes() for path in (project / "requirements").glob("*.t*")}
    assert after == before

    taken = run(project, "nox", "-s", "lock", "--", "--skip-cooldown", "gamma")
    assert taken.returncode == 0, taken.stderr
    assert pins(project) == {"alpha": "1.1", "gamma": "1.0"}


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ('cooldown = "7 dayz"', 'must be a duration like "7 days"'),
        ('cooldown = "0 days"', "write false for no cooldown"),
        ("cooldown = 7", 'must be a duration like "7 days", "36 hours" or "2 weeks", or false'),
        ('cooldown-exempt = ["not a name"]', "must be a package name like numpy"),
    ],
)
def test_a_bad_cooldown_setting_is_one_line(bake: Bake, setting: str, expected: str) -> None:
    project = bake(with_container="no")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('cooldown = "7 days"', setting))
    checked = run(project, "nox", "-s", "lock", "--", "--check")
    assert checked.returncode == 1
    lines = [line for line in checked.stderr.splitlines() if "pyproject.toml:" in line]
    assert len(lines) == 1 and expected in lines[0], checked.stderr


def test_skip_cooldown_without_a_cooldown_says_what_to_use(bake: Bake) -> None:
    project = bake(with_container="no")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('cooldown = "7 days"', "cooldown = false"))
    refused = run(project, "nox", "-s", "lock", "--", "--skip-cooldown", "numpy")
    assert refused.returncode == 1
    assert "this project sets no cooldown" in refused.stderr
    assert "use --upgrade-package instead" in refused.stderr
