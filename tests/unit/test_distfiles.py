"""Which files of a pinned version some Python that requires-python allows can install."""

from __future__ import annotations

import pytest
from tooling.distfiles import (
    File,
    installable,
    installable_hashes,
    read_any_pylock,
    read_pylock,
    uv_packages,
)


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


UV_PYLOCK = """lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "python_full_version >= '3.11' and sys_platform == 'win32'"
sdist = { url = "https://files.example/c/colorama-0.4.6.tar.gz", upload-time = 2022-10-25T02:36:22Z, size = 27697, hashes = { sha256 = "08" } }
wheels = [{ url = "https://files.example/c/colorama-0.4.6-py2.py3-none-any.whl", upload-time = 2022-10-25T02:36:20Z, size = 25335, hashes = { sha256 = "4f" } }]

[[packages]]
name = "torch"
version = "2.1.0+cpu"
index = "https://download.example/whl/cpu"
wheels = [
    { url = "https://download.example/whl/cpu/torch-2.1.0%2Bcpu-cp311-cp311-linux_x86_64.whl", hashes = { sha256 = "aa" } },
    { name = "torch-2.1.0+cpu-cp312-cp312-win_amd64.whl", url = "https://download.example/whl/cpu/t.whl", size = 1, hashes = { sha256 = "bb", blake2b = "cc" } },
]
"""


def test_uvs_own_pylock_is_read_line_by_line_as_tomllib_reads_it() -> None:
    assert uv_packages(UV_PYLOCK) is not None  # no TOML parser needed
    listed = read_pylock(UV_PYLOCK)
    assert listed == read_any_pylock(UV_PYLOCK)
    assert listed["colorama", "0.4.6"] == (
        File(
            "colorama-0.4.6.tar.gz", "https://files.example/c/colorama-0.4.6.tar.gz", ("sha256:08",)
        ),
        File(
            "colorama-0.4.6-py2.py3-none-any.whl",
            "https://files.example/c/colorama-0.4.6-py2.py3-none-any.whl",
            ("sha256:4f",),
        ),
    )
    assert [(file.name, file.hashes) for file in listed["torch", "2.1.0+cpu"]] == [
        ("torch-2.1.0+cpu-cp311-cp311-linux_x86_64.whl", ("sha256:aa",)),
        ("torch-2.1.0+cpu-cp312-cp312-win_amd64.whl", ("blake2b:cc", "sha256:bb")),
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("colorama-0.4.6.tar.gz", 'colorama-0.4.6\\".tar.gz'),  # an escape in a string
        ('version = "0.4.6"\n', 'version = "0.4.6"\ndependencies = [{ name = "x" }]\n'),
        ("sdist = {", "archive = {"),
        ('[[packages]]\nname = "torch"', "[[packages]]\nname = 'torch'"),
    ],
)
def test_a_pylock_not_written_as_uv_writes_it_is_read_by_tomllib(old: str, new: str) -> None:
    text = UV_PYLOCK.replace(old, new, 1)
    assert text != UV_PYLOCK
    assert uv_packages(text) is None
    assert read_pylock(text) == read_any_pylock(text)
