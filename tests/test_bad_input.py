"""Every bad answer is refused with one clear line, and nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE

BAD_ANSWERS = [
    # (answers, the prompt named, words the message must contain)
    ({"python_version": "3.9"}, "python_version", "3.11"),
    ({"python_version": "3"}, "python_version", "3.N or 3.N.M"),
    ({"python_version": "python3.11"}, "python_version", "3.N or 3.N.M"),
    ({"python_version": "3.11.x"}, "python_version", "3.N or 3.N.M"),
    ({"python_version": "4.0"}, "python_version", "3.N or 3.N.M"),
    ({"project_slug": "../escape"}, "project_slug", "lowercase letters"),
    ({"project_slug": "My Project"}, "project_slug", "lowercase letters"),
    ({"project_slug": "a;rm -rf ~"}, "project_slug", "lowercase letters"),
    ({"package_name": "class"}, "package_name", "keyword"),
    ({"package_name": "match"}, "package_name", "keyword"),
    ({"package_name": "my-pkg"}, "package_name", "identifier"),
    ({"package_name": "2fast"}, "package_name", "identifier"),
    ({"package_name": "os.path"}, "package_name", "identifier"),
    ({"package_name": "json"}, "package_name", "standard library"),
    ({"package_name": "tooling"}, "package_name", "already uses"),
    ({"project_name": "   "}, "project_name", "must not be empty"),
    ({"project_name": "!!!"}, "project_name", "at least one letter or digit"),
    ({"description": "two\nlines"}, "description", "one line"),
    ({"author_email": "nobody"}, "author_email", "you@example.com"),
    ({"version": "one"}, "version", "0.1.0"),
    ({"tiers": "base, hunter:extras"}, "tiers", "'extras', which is not a tier"),
    ({"tiers": "a:b, b:a"}, "tiers", "cycle"),
    ({"tiers": "base, a:b, b:a"}, "tiers", "cycle"),
    ({"tiers": "base, other"}, "tiers", "exactly one tier must have no parent"),
    ({"tiers": "base, ../evil:base"}, "tiers", "not a safe file name"),
    ({"tiers": "base, Hunter:base"}, "tiers", "not a safe file name"),
    ({"tiers": "base, sniper:base, base"}, "tiers", "listed twice"),
    ({"tiers": "base,,sniper:base"}, "tiers", "every comma"),
    ({"tiers": ""}, "tiers", "every comma"),
    ({"tiers": "base, sniper:base", "dev_tier": "dev"}, "dev_tier", "base, sniper"),
]


def run_cookiecutter(output: Path, answers: dict[str, str]) -> subprocess.CompletedProcess[str]:
    arguments = [f"{key}={value}" for key, value in answers.items()]
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), *arguments],
        cwd=output,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("answers", "prompt", "words"), BAD_ANSWERS, ids=[repr(case[0]) for case in BAD_ANSWERS]
)
def test_bad_answer_is_refused_clearly(
    tmp_path: Path, answers: dict[str, str], prompt: str, words: str
) -> None:
    result = run_cookiecutter(tmp_path, answers)
    assert result.returncode != 0
    first_error = result.stderr.strip().splitlines()[0]
    assert first_error.startswith(f"ERROR: {prompt}=")
    assert words in first_error
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "escape").exists()


def test_good_answers_are_accepted(tmp_path: Path) -> None:
    answers = {"python_version": "3.13.1", "tiers": "core, api:core, dev:api", "project_name": "X"}
    result = run_cookiecutter(tmp_path, answers)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x" / "requirements" / "api.in").read_text().count("-r core.in") == 1
