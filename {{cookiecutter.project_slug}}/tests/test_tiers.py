from pathlib import Path

import pytest

from tooling.tiers import TierError, ancestors, describe, logical_lines, read_tiers


def write(folder: Path, **files: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.in").write_text(text, encoding="utf-8")
    return folder


def test_reads_the_graph_parents_first(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "requirements",
        strategist="-r hunter.in\npandas\n",
        hunter="-r base.in\nnumpy\n",
        base="structlog\n",
        sniper="--requirement=base.in\n",
    )
    graph = read_tiers(folder)
    order = list(graph)
    assert order.index("base") < order.index("hunter") < order.index("strategist")
    assert graph["sniper"].parents == ("base",)
    assert ancestors(graph, "strategist") == ["base", "hunter", "strategist"]
    assert "strategist <- hunter" in describe(graph)
    assert "base (root)" in describe(graph)


def test_a_new_file_is_a_new_tier(tmp_path: Path) -> None:
    folder = write(tmp_path / "requirements", base="", gpu="-r base.in\ntorch\n")
    assert list(read_tiers(folder)) == ["base", "gpu"]


def test_missing_parent_names_the_file(tmp_path: Path) -> None:
    folder = write(tmp_path / "requirements", base="", hunter="-r extras.in\n")
    with pytest.raises(
        TierError, match=r"hunter\.in: -r extras\.in names a tier that does not exist"
    ):
        read_tiers(folder)


def test_cycle_is_reported_as_a_path(tmp_path: Path) -> None:
    folder = write(tmp_path / "requirements", a="-r b.in\n", b="-r a.in\n")
    with pytest.raises(
        TierError, match=r"tier cycle .*(a\.in -> b\.in -> a\.in|b\.in -> a\.in -> b\.in)"
    ):
        read_tiers(folder)


def test_unsafe_tier_name_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "requirements", **{"base": "", "Bad Name": "-r base.in\n"})
    with pytest.raises(TierError, match="not a safe file name"):
        read_tiers(folder)


def test_include_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "requirements", base="-r ../other.in\n")
    with pytest.raises(TierError, match="must name a tier file beside it"):
        read_tiers(folder)


def test_no_tiers_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    with pytest.raises(TierError, match=r"has no \*\.in files"):
        read_tiers(tmp_path / "requirements")


def test_comments_and_continuations_are_not_requirements() -> None:
    text = "# a comment\nnumpy  # inline\n\npandas \\\n  >=2\n"
    assert logical_lines(text) == [(2, "numpy"), (4, "pandas >=2")]
