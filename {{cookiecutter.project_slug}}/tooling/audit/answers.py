"""What a well-formed answer from a vulnerability service looks like.

pip-audit reads a `null`, `[]` or `""` answer from OSV as "no known
vulnerabilities", silently drops an advisory without `affected` or with a
schema version it does not know, and crashes on most other surprises. So
every answer is held against these schemas before pip-audit may count it:

- OSV `POST /v1/query`: `{}`, or `{"vulns": [<OSV record>, ...]}`
- OSV `GET /v1/vulns/<id>`: one OSV record
- PyPI `GET /pypi/<name>/<version>/json`: `{"info": {...}, "vulnerabilities": [...]}`

The schemas ask for what pip-audit (and the severity lookup) reads, in the
forms it can read; fields they do not name are left alone.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from packaging.version import InvalidVersion, Version

from tooling.audit import NOT_A_REPORT, clip


def _is_version(value: object) -> bool:
    return not isinstance(value, str) or bool(Version(value))


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("version", raises=InvalidVersion)(_is_version)

_TEXT = {"type": "string"}
_TEXTS = {"type": "array", "items": _TEXT}
_MAYBE_TEXT = {"type": ["string", "null"]}
_VERSION = {"type": "string", "format": "version"}
# The two forms pip-audit parses (it crashes on offsets and spaces).
_TIMESTAMP = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$"}

_RANGE = {
    "type": "object",
    "required": ["type", "events"],
    "properties": {
        "type": _TEXT,
        "events": {"type": "array", "items": {"type": "object", "additionalProperties": _TEXT}},
    },
    # pip-audit reads the fix versions of a PyPI package's ECOSYSTEM range as versions.
    "if": {"properties": {"type": {"const": "ECOSYSTEM"}}},
    "then": {"properties": {"events": {"items": {"properties": {"fixed": _VERSION}}}}},
}

_AFFECTED = {
    "type": "object",
    "required": ["package"],
    "properties": {
        "package": {
            "type": "object",
            "required": ["name", "ecosystem"],
            "properties": {"name": _TEXT, "ecosystem": _TEXT},
        },
        "versions": _TEXTS,
        "ranges": {"type": "array", "items": {"type": "object"}},
    },
    "if": {"properties": {"package": {"properties": {"ecosystem": {"const": "PyPI"}}}}},
    "then": {"properties": {"ranges": {"items": _RANGE}}},
}

OSV_RECORD = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "schema_version": {"type": "string", "pattern": r"^1(\.|$)"},
        "aliases": _TEXTS,
        "summary": _TEXT,
        "details": _TEXT,
        "published": _TIMESTAMP,
        "withdrawn": _TEXT,
        "affected": {"type": "array", "items": _AFFECTED},
        "severity": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "score"],
                "properties": {"type": _TEXT, "score": _TEXT},
            },
        },
        "database_specific": {"type": "object"},  # its "severity" label, for the threshold
    },
    # pip-audit drops a live advisory without `affected` without a word.
    "if": {"not": {"required": ["withdrawn"]}},
    "then": {"required": ["affected"]},
}

OSV_QUERY_ANSWER = {
    "type": "object",
    "properties": {"vulns": {"type": "array", "items": OSV_RECORD}},
    # `{}` means "none"; anything else without `vulns` is not an answer.
    "if": {"minProperties": 1},
    "then": {"required": ["vulns"]},
}

PYPI_RELEASE_ANSWER = {
    "type": "object",
    "required": ["info", "vulnerabilities"],
    "properties": {
        "info": {"type": "object"},
        "vulnerabilities": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "aliases", "fixed_in"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "aliases": _TEXTS,
                    "fixed_in": {"type": "array", "items": _VERSION},
                    "summary": _MAYBE_TEXT,
                    "details": _MAYBE_TEXT,
                    "withdrawn": _MAYBE_TEXT,
                    "published": {"anyOf": [_TIMESTAMP, {"type": "null"}]},
                },
            },
        },
    },
}

# What each service's vulnerability questions are answered with.
ANSWERS = {"osv": OSV_QUERY_ANSWER, "pypi": PYPI_RELEASE_ANSWER}

_KINDS = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "null": "null",
    "number": "a number",
    "integer": "a number",
    "boolean": "a boolean",
}


def _kind(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else "a number"


def _explain(error: ValidationError) -> str:
    where = error.json_path
    if error.validator == "type":
        expected = error.validator_value
        wanted = [expected] if isinstance(expected, str) else list(expected)
        return f"{where} is {_kind(error.instance)}, not {' or '.join(_KINDS[w] for w in wanted)}"
    if error.validator in ("format", "pattern"):
        return f"{where} is {clip(json.dumps(error.instance), 60)}, which pip-audit cannot read"
    return f"{where}: {clip(error.message, 120)}"


def problem(schema: dict[str, Any], body: bytes) -> str | None:
    """What makes `body` something other than an answer of this schema, or None."""
    try:
        document = json.loads(body)
    except ValueError:
        text = body[:200].decode("utf-8", "replace").strip()
        return "an empty answer" if not text else f"not JSON: {clip(text, 60)}"
    validator = Draft202012Validator(schema, format_checker=_FORMATS)
    error = best_match(validator.iter_errors(document))
    return None if error is None else _explain(error)


def answer_fault(status: int, body: bytes, schema: dict[str, Any] | None) -> str | None:
    """What is wrong with an HTTP answer meant to match `schema` (None: any body), or None."""
    if status >= 400:
        return f"answered HTTP {status}"
    wrong = None if schema is None else problem(schema, body)
    return None if wrong is None else f"{NOT_A_REPORT}: {wrong}"
