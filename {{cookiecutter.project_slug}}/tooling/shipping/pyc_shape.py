"""Whether .pyc bodies hold the code their sources compile to; standard library only.

tooling.shipping.expected runs this file's text in a Python of its own (`python -I -c`)
with JSON on stdin: `marshal` is not meant for untrusted data, so bytecode
read from an image is only ever unmarshalled in a process whose crash costs
nothing but a line saying so. Each item is compared field by field and
constant by constant with the compile of its source under the same file
name; only the line table may differ (CPython patch releases number some
lines differently). Prints JSON: path -> null (the source's) or a reason.
"""

from __future__ import annotations

import base64
import json
import marshal
import sys
import types
from typing import Any

NOT_ITS_SOURCES = "bytecode that is not its source's (Python would run it, not the source)"
CODE_FIELDS = (
    "co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize",
    "co_flags", "co_firstlineno", "co_code", "co_names", "co_varnames", "co_freevars",
    "co_cellvars", "co_filename", "co_name", "co_qualname", "co_exceptiontable",
)  # fmt: skip  # every field but co_linetable (co_consts is compared by shape)


def shape(value: Any) -> Any:
    """A value compiled code holds, comparable exactly: types kept (1, 1.0 and True differ)."""
    if isinstance(value, types.CodeType):
        fields = tuple(getattr(value, name, None) for name in CODE_FIELDS)
        return ("code", fields, tuple(shape(item) for item in value.co_consts))
    if isinstance(value, tuple):
        return ("tuple", tuple(shape(item) for item in value))
    if isinstance(value, frozenset):
        return ("frozenset", tuple(sorted((shape(item) for item in value), key=repr)))
    return (type(value).__name__, repr(value))


def verdict(source: bytes, compiled_as: str, body: bytes) -> str | None:
    try:
        compiled = compile(source, compiled_as, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError):
        return "bytecode of a source that does not compile (Python would run it)"
    try:
        loaded = marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return "bytecode that cannot be read (Python would refuse or run it)"
    if not isinstance(loaded, types.CodeType) or shape(loaded) != shape(compiled):
        return NOT_ITS_SOURCES
    return None


def main() -> None:
    items = json.load(sys.stdin)
    decode = base64.b64decode
    verdicts = {
        item["path"]: verdict(decode(item["source"]), item["compiled_as"], decode(item["body"]))
        for item in items
    }
    json.dump(verdicts, sys.stdout)


if __name__ == "__main__":
    main()
