"""The project's tooling: the logic behind noxfile.py and tasks.py.

Every module raises ToolingError with a one-line message for anything a user
can fix; the entry points print that line and exit non-zero.
"""


class ToolingError(Exception):
    """A problem the user can fix, described in one line."""

    exit_code = 1
