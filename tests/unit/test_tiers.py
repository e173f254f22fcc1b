import re
from pathlib import Path

import pytest
from tooling.tiers import TierError, ancestors, describe, logical_lines, read_tier, read_tiers


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
    assert logical_lines(text) == [(2, "numpy"), (4, "pandas   >=2")]  # joined as pip joins


def test_a_byte_order_mark_does_not_hide_the_parent(tmp_path: Path) -> None:
    folder = write(tmp_path / "requirements", base="structlog\n")
    (folder / "hunter.in").write_bytes(b"\xef\xbb\xbf-r base.in\nnumpy\n")
    graph = read_tiers(folder)
    assert graph["hunter"].parents == ("base",)
    assert [str(r) for _, r in graph["hunter"].requirements] == ["numpy"]
    assert "hunter <- base" in describe(graph)


def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path: Path) -> None:
    folder = write(tmp_path / "requirements", base="structlog\n")
    (folder / "hunter.in").write_bytes(b"-r base.in\nnump\xff\n")
    with pytest.raises(TierError) as raised:
        read_tiers(folder)
    assert str(raised.value) == (
        "requirements/hunter.in:2: byte 0xff is not UTF-8; save the file as UTF-8"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-e .", r"requirements/base\.in:2: editable '-e \.' cannot be locked"),
        ("app @ https://example.org/app.whl", "URL requirement .* cannot be locked"),
        ("./vendor/app", "is not a requirement"),
        ("--pre", "option '--pre' is not supported"),
    ],
)
def test_editable_and_url_requirements_say_what_is_supported(
    tmp_path: Path, line: str, expected: str
) -> None:
    folder = write(tmp_path / "requirements", base=f"structlog\n{line}\n")
    with pytest.raises(TierError, match=expected) as raised:
        read_tiers(folder)
    assert "exact (name==1.2) or ranged (name>=1.2)" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_constraints_inside_the_project_are_inputs(tmp_path: Path) -> None:
    folder = write(tmp_path / "requirements", base="-c pins.txt\n-c ../shared/limits.cfg\n")
    (folder / "pins.txt").write_text("structlog<25\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "limits.cfg").write_text("numpy<3\n")
    assert read_tiers(folder)["base"].constraints == (
        folder / "pins.txt",
        tmp_path / "shared" / "limits.cfg",
    )


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../etc/hostname", "../../x.txt"])
def test_constraints_outside_the_project_are_refused(tmp_path: Path, target: str) -> None:
    folder = write(tmp_path / "requirements", base=f"structlog\n-c {target}\n")
    with pytest.raises(TierError, match=rf"base\.in:2: -c {target} is outside the project"):
        read_tiers(folder)


@pytest.mark.parametrize(
    "link_to",
    ["{outside}/pins.txt", "../../outside/pins.txt", "{outside}"],
    ids=["absolute-file", "relative-file", "directory-link"],
)
def test_a_constraint_linked_to_outside_the_project_is_refused(
    tmp_path: Path, link_to: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "pins.txt").write_text("structlog<25\n")
    folder = write(project / "requirements", base="structlog\n-c pins.txt\n")
    target = link_to.format(outside=outside)
    if target == str(outside):  # requirements/shared -> outside, then -c shared/pins.txt
        (folder / "shared").symlink_to(target, target_is_directory=True)
        (folder / "base.in").write_text("structlog\n-c shared/pins.txt\n")
    else:
        (folder / "pins.txt").symlink_to(target)
    with pytest.raises(TierError, match=r"base\.in:2: -c \S+ is outside the project"):
        read_tiers(folder)


def test_a_constraint_linked_inside_the_project_is_accepted(tmp_path: Path) -> None:
    folder = write(tmp_path / "requirements", base="structlog\n-c pins.txt\n")
    (tmp_path / "constraints").mkdir()
    (tmp_path / "constraints" / "pins.txt").write_text("structlog<25\n")
    (folder / "pins.txt").symlink_to("../constraints/pins.txt")
    assert read_tiers(folder)["base"].constraints == (folder / "pins.txt",)


def test_a_link_to_a_generated_lock_is_not_a_constraint(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "requirements", base="structlog\n", hunter="-r base.in\n-c pins.txt\n"
    )
    (folder / "base.txt").write_text("structlog==24.1.0\n")
    (folder / "pins.txt").symlink_to("base.txt")
    with pytest.raises(TierError, match=r"-c pins\.txt is a generated lock"):
        read_tiers(folder)


@pytest.mark.parametrize("lock", ["base.txt", "_union.txt", "_union-cuda.txt"])
def test_a_generated_lock_is_not_a_constraint(tmp_path: Path, lock: str) -> None:
    folder = write(tmp_path / "requirements", base="structlog\n", hunter=f"-r base.in\n-c {lock}\n")
    (folder / lock).write_text("structlog==24.1.0\n")
    with pytest.raises(TierError, match=rf"-c {re.escape(lock)} is a generated lock"):
        read_tiers(folder)


def test_index_lines_are_kept_per_tier(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "requirements",
        base="structlog\n",
        gpu="-r base.in\n--extra-index-url=https://download.pytorch.org/whl/cu121\n-i https://x/simple\n",
    )
    assert read_tiers(folder)["gpu"].index_lines == (
        "--extra-index-url https://download.pytorch.org/whl/cu121",
        "--index-url https://x/simple",
    )


def test_a_refused_line_never_shows_a_password(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "requirements",
        base="app @ https://alice:s3cret@git.example/app.whl\n",
        gpu="--find-links ftp://bob:t0ken@files.example/wheels\n",
    )
    for name in ("base", "gpu"):
        with pytest.raises(TierError) as raised:
            read_tier(folder / f"{name}.in")
        assert "s3cret" not in str(raised.value) and "t0ken" not in str(raised.value)
        assert "alice" not in str(raised.value) and "bob" not in str(raised.value)
        assert "://git.example/app.whl" in str(raised.value) or "://files.example/wheels" in str(
            raised.value
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("num\\\npy\n", [(1, "numpy")]),  # pip joins a continuation with nothing in between
        ("six>=1 \\\n# a comment ends the join\nnumpy\n", [(1, "six>=1"), (3, "numpy")]),
        ("six \\\n   # indented comment\n", [(1, "six")]),
        ("# a comment ending in \\\nsix\n", [(2, "six")]),
        ("six \\\n\\\n>=1\n", [(1, "six >=1")]),
        ("six \\", [(1, "six")]),  # a continuation at the end of the file
        ("six # caf\u0085e\nnumpy # \u2028 \u2029 \x1c\n", [(1, "six"), (2, "numpy")]),
        ("six\r\nnumpy\r\n", [(1, "six"), (2, "numpy")]),
        ("six\rnumpy\r", [(1, "six"), (2, "numpy")]),
        ("six#not-a-comment\n", [(1, "six#not-a-comment")]),
    ],
    ids=[
        "mid-word",
        "comment-after-continuation",
        "indented-comment-after-continuation",
        "continuation-inside-a-comment",
        "empty-continuation",
        "trailing-continuation",
        "unicode-line-separators-in-comments",
        "crlf",
        "cr",
        "hash-without-space",
    ],
)
def test_lines_are_read_as_pip_and_uv_read_them(text: str, expected: list[tuple[int, str]]) -> None:
    assert logical_lines(text) == expected


def test_a_continued_requirement_is_one_requirement(tmp_path: Path) -> None:
    folder = write(tmp_path / "requirements", base="num\\\npy>=1 \\\n# pinned low\n")
    tier = read_tier(folder / "base.in")
    assert [(number, str(requirement)) for number, requirement in tier.requirements] == [
        (1, "numpy>=1")
    ]
