"""Compile the byte code of the sources in /opt/venv that have none yet; standard library only.

The image build runs it after uv installed a child tier on its parent tier's
environment (the Dockerfile's environment stage). uv's own compile step walks
all of site-packages and rewrites every .pyc (compileall does not recognise a
checked-hash .pyc as current), so the child's layer would hold a copy of the
parent's byte code. Here a source is compiled only when its .pyc is missing,
the way uv compiles it: compileall.compile_file on the absolute path, the
default invalidation mode (checked-hash, as SOURCE_DATE_EPOCH is set).
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import sys
import sysconfig
from collections.abc import Iterator


def sources(site_packages: str) -> Iterator[str]:
    """Every .py file below site_packages, in a stable order."""
    for folder, folders, files in os.walk(site_packages):
        folders.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def main() -> int:
    site_packages = sysconfig.get_paths()["purelib"]
    for source in sources(site_packages):
        if not os.path.exists(importlib.util.cache_from_source(source)):
            compileall.compile_file(source, quiet=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
