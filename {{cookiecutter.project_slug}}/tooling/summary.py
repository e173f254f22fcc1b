"""GitHub step summaries: Markdown for a run's summary page, when a CI step asks for it.

GitHub Actions names a file in GITHUB_STEP_SUMMARY that every step of a job
shares, so sections are appended, never written over. Anywhere else the
variable is unset and nothing is written: terminals keep their plain text.
A summary that cannot be written never fails the command; one line on stderr
says so.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence

VARIABLE = "GITHUB_STEP_SUMMARY"


def cell(value: object) -> str:
    """A table cell: one line, pipes escaped."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    return text or " "


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table, as lines."""
    lines = ["| " + " | ".join(cell(name) for name in header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return lines


def append(markdown: str, env: Mapping[str, str] | None = None) -> None:
    """Append a section to the step summary, if this step has one."""
    path = (os.environ if env is None else env).get(VARIABLE)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(markdown.rstrip("\n") + "\n\n")
    except OSError as error:
        reason = error.strerror or str(error)
        print(f"warning: the step summary {path} was not written: {reason}", file=sys.stderr)
