"""The project's tooling: the logic behind noxfile.py and tasks.py.

Every module raises ToolingError with a one-line message for anything a user
can fix; the entry points print that line and exit non-zero.
"""

import re


def lines_of(text: str) -> list[str]:
    """A file's lines as uv splits a requirements file or a lock: at \\n, \\r\\n and \\r only.

    str.splitlines also splits at U+0085, U+2028 and other characters a comment may hold.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # faster than a regex
    return lines[:-1] if lines[-1] == "" else lines


URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s`'\"<>]+")


def public_url(url: str) -> str:
    """A URL without user info, query string or fragment: what may be printed or recorded.

    Everything up to the last @ goes, so a password holding a / is not half shown.
    """
    if "://" in url and "@" not in url and "?" not in url and "#" not in url:
        return url  # nothing to take out (most URLs: a lock's thousands of file URLs)
    scheme, _, rest = url.partition("://")
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    return f"{scheme}://{rest.rpartition('@')[2]}"


def without_secrets(text: str) -> str:
    """Text with every URL in it made public (see public_url)."""
    return URL.sub(lambda found: public_url(found.group(0)), text)


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
