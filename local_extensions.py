"""Jinja filters that put user answers into generated files as data.

`toml_str` and `py_str` give string literals that read as if written by hand
(UTF-8 kept, quotes chosen the way ruff's formatter would), so an answer can
never break out of its string or become code. `project_template` gives the
hooks the template's project folder, to import the project's own rules from.
"""

from __future__ import annotations

import json
from pathlib import Path

from cookiecutter.utils import simple_filter


@simple_filter
def toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


@simple_filter
def py_str(value: str) -> str:
    double_quoted = json.dumps(value, ensure_ascii=False)
    if value.count('"') <= value.count("'"):
        return double_quoted
    body = double_quoted[1:-1].replace('\\"', '"').replace("'", "\\'")
    return "'" + body + "'"


@simple_filter
def project_template(_: object) -> str:
    """The absolute path of this template's project folder (cookiecutter runs hooks elsewhere)."""
    return str(Path(__file__).resolve().parent / ("{" + "{cookiecutter.project_slug}" + "}"))
