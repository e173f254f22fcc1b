"""`python -m tooling.lock [--check] [...]`: the lock command for the project in this folder."""

from __future__ import annotations

import sys
from pathlib import Path

from tooling import ToolingError, project
from tooling.lock.cli import main


def run(argv: list[str]) -> int:
    try:
        main(project.load(Path.cwd()), argv)
    except ToolingError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
