"""The generated project reads requirements files as pip does, on the same bytes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pip._internal.req.req_file import preprocess

from tests.conftest import Bake

# Each case is a requirements file; pip's own reader gives the expected lines.
CASES = [
    "num\\\npy\n",
    "six>=1 \\\n# a comment ends the join\nnumpy\n",
    "six \\\n   # indented comment\npandas\n",
    "# a comment ending in \\\nsix\n",
    "six \\\n\\\n>=1\n",
    "six \\",
    "pandas \\\n  >=2 \\\n  ,<3  # ranged\n",
    "six  # trailing comment\n\n\n  numpy\n",
    "six#not-a-comment\n",
    "six\r\nnum\\\r\npy\r\n",
    "six\rnumpy\r",
    "\\\\six\n",
]


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> list[list[list[object]]]:
    """The generated project's reading of every case, by its own tooling.tiers."""
    from cookiecutter.main import cookiecutter

    from tests.conftest import TEMPLATE

    output = tmp_path_factory.mktemp("syntax")
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output)))
    code = (
        "import json, sys\n"
        "from tooling.tiers import logical_lines\n"
        "print(json.dumps([logical_lines(text) for text in json.load(sys.stdin)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        input=json.dumps(CASES),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("number", range(len(CASES)))
def test_lines_match_pip(ours: list[list[list[object]]], number: int) -> None:
    pip = [[line_number, line] for line_number, line in preprocess(CASES[number])]
    assert ours[number] == pip


def test_line_separators_inside_a_comment_break_no_line(bake: Bake) -> None:
    """pip splits at U+0085 (str.splitlines) where uv does not; uv resolves, so we follow uv."""
    project = bake()
    code = (
        "from tooling.tiers import logical_lines\n"
        "print(logical_lines('six # caf\\u0085e \\u2028 x\\nnumpy\\n'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[(1, 'six'), (2, 'numpy')]"
