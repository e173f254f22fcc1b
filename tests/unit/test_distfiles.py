"""Which files of a pinned version some Python that requires-python allows can install."""

from __future__ import annotations

import pytest
from tooling.distfiles import File, installable, installable_hashes, read_pylock


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("numpy-2.2.6.tar.gz", True),
        ("numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl", True),
        ("numpy-2.2.6-cp313-cp313t-win_amd64.whl", True),
        ("numpy-2.2.6-cp310-cp310-manylinux_2_17_x86_64.whl", False),
        ("numpy-2.2.6-cp38-cp38-win32.whl", False),
        ("numpy-2.2.6-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl", False),
        ("numpy-2.2.6-pp311-pypy311_pp73-win_amd64.whl", True),
        ("cryptography-46.0.0-cp37-abi3-manylinux_2_28_x86_64.whl", True),
        ("cryptography-46.0.0-cp314-abi3-win_amd64.whl", True),
        ("six-1.17.0-py2.py3-none-any.whl", True),
        ("futures-3.4.0-py2-none-any.whl", False),
        ("tool-1.0-py38-none-any.whl", True),
        ("tool-1.0-cp310-none-any.whl", False),
    ],
)
def test_a_wheel_installs_when_one_tag_fits_a_python_from_the_minimum_on(
    name: str, expected: bool
) -> None:
    assert installable(name, "3.11") is expected


def test_hashes_of_uninstallable_files_are_left_out() -> None:
    files = [
        File("a-1-cp310-cp310-linux_x86_64.whl", "", ("sha256:10",)),
        File("a-1-cp311-cp311-linux_x86_64.whl", "", ("sha256:11",)),
        File("a-1.tar.gz", "", ("sha256:00",)),
    ]
    assert installable_hashes(files, "3.11") == {"sha256:11", "sha256:00"}


def test_a_pylock_names_each_file_of_each_version() -> None:
    listed = read_pylock(
        '[[packages]]\nname = "Typing_Extensions"\nversion = "4.15.0"\n'
        'sdist = { url = "https://files.example/t/typing_extensions-4.15.0.tar.gz", '
        'hashes = { sha256 = "00" } }\n'
        'wheels = [{ url = "https://files.example/t/typing_extensions-4.15.0-py3-none-any.whl", '
        'hashes = { sha256 = "01" } }]\n'
    )
    assert [file.name for file in listed["typing-extensions", "4.15.0"]] == [
        "typing_extensions-4.15.0.tar.gz",
        "typing_extensions-4.15.0-py3-none-any.whl",
    ]
    assert listed["typing-extensions", "4.15.0"][1].hashes == ("sha256:01",)
