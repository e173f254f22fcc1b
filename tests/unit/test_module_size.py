"""No tooling module over 500 lines: a module that grows past it holds more than one job."""

from __future__ import annotations

from conftest import PROJECT_TEMPLATE

TOOLING = PROJECT_TEMPLATE / "tooling"
MOST_LINES = 500


def line_counts() -> dict[str, int]:
    return {
        path.relative_to(PROJECT_TEMPLATE).as_posix(): len(path.read_bytes().splitlines())
        for path in sorted(TOOLING.rglob("*.py"))
    }


def test_no_tooling_module_is_over_500_lines() -> None:
    counts = line_counts()
    assert len(counts) > 20  # every module was read
    too_long = {name: lines for name, lines in counts.items() if lines > MOST_LINES}
    assert too_long == {}, f"split these into a package of smaller modules: {too_long}"
