"""The one lock reader: pins, hashes, markers and origins, or an error naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from tooling import lockfile

LOCK = """\
# requirements/hunter.txt: hashed lock of the hunter tier.
# options: format=1 --universal
--extra-index-url https://download.example/whl/cpu
numpy==2.2.6 ; python_full_version < '3.12' \\
    --hash=sha256:aa \\
    --hash=sha256:bb
    # via -r requirements/hunter.in
numpy==2.3.0 ; python_full_version >= '3.12' \\
    --hash=sha256:cc
    # via
    #   -r requirements/hunter.in
    #   pandas
Torch_Audio==2.1.0+cpu \\
    --hash=sha256:dd
"""


def test_reads_header_options_and_every_pin() -> None:
    lock = lockfile.parse(LOCK, "hunter.txt")
    assert lock.header[0].startswith("# requirements/hunter.txt")
    assert lock.options == ("--extra-index-url https://download.example/whl/cpu",)
    assert [(pin.name, pin.version) for pin in lock.pins] == [
        ("numpy", "2.2.6"),
        ("numpy", "2.3.0"),
        ("torch-audio", "2.1.0+cpu"),
    ]
    assert lock.pins[0].hashes == ("sha256:aa", "sha256:bb")
    assert lock.pins[1].via == ("-r requirements/hunter.in", "pandas")
    assert lock.pins[2].line == 13


def test_markers_are_evaluated_for_a_given_environment() -> None:
    old, new, _ = lockfile.parse(LOCK).pins
    py312 = {"python_full_version": "3.12.1", "python_version": "3.12"}
    assert not old.applies(py312)
    assert new.applies(py312)
    assert lockfile.parse(LOCK).versions() >= {("numpy", "2.2.6"), ("numpy", "2.3.0")}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("foo>=1", "is not pinned to one version with =="),
        ("foo==1.*", "is not pinned to one version with =="),
        ("-e .", "editable requirement"),
        ("foo @ https://example.org/foo-1.0.whl", "URL requirement"),
        ("foo==1 ; python_version >>> '3'", "not a requirement"),
    ],
)
def test_bad_lines_name_the_file_and_line(line: str, message: str) -> None:
    with pytest.raises(lockfile.LockFileError, match=rf"^x\.txt:2: .*{message}"):
        lockfile.parse(f"# header\n{line}\n", "x.txt")


def test_stray_text_in_a_block_is_refused() -> None:
    with pytest.raises(lockfile.LockFileError, match=r"x\.txt:2: unexpected line"):
        lockfile.parse("foo==1 \\\n    oops\n", "x.txt")


def test_read_accepts_a_byte_order_mark_and_names_bad_bytes(tmp_path: Path) -> None:
    path = tmp_path / "base.txt"
    path.write_bytes(b"\xef\xbb\xbfsix==1.16.0 \\\n    --hash=sha256:ab\n")
    assert lockfile.read(path).pins[0].name == "six"
    path.write_bytes(b"six==1.16.0\n# caf\xe9\n")
    with pytest.raises(
        lockfile.LockFileError, match=r"^requirements/base\.txt:2: byte 0xe9 is not UTF-8"
    ):
        lockfile.read(path, "requirements/base.txt")
    with pytest.raises(lockfile.LockFileError, match="missing"):
        lockfile.read(tmp_path / "gone.txt")
