"""The project's tooling: the logic behind noxfile.py and tasks.py.

Every module raises ToolingError with a one-line message for anything a user
can fix; the entry points print that line and exit non-zero.
"""

import re

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def lines_of(text: str) -> list[str]:
    """A file's lines as uv splits a requirements file or a lock: at \\n, \\r\\n and \\r only.

    str.splitlines also splits at U+0085, U+2028 and other characters a comment may hold.
    """
    lines = LINE_BREAK.split(text)
    return lines[:-1] if lines[-1] == "" else lines


class ToolingError(Exception):
    """A problem the user can fix, described in one line."""

    exit_code = 1


def decode_utf8(data: bytes, shown: str, error: type[ToolingError] = ToolingError) -> str:
    """UTF-8 text (a byte-order mark is kept); other bytes are one line naming file and line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as problem:
        line = data[: problem.start].count(b"\n") + 1
        raise error(
            f"{shown}:{line}: byte 0x{data[problem.start]:02x} is not UTF-8; save the file as UTF-8"
        ) from None
