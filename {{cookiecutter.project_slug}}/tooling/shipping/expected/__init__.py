"""What /opt/venv must hold, derived from trusted inputs only, and how an image differs from it.

Trusted inputs: the tier's pylock (each package's wheel, fetched by its URL
and accepted only when its sha256 is the lock's), the base image pinned in
base-images.lock (its interpreter's path and version, for the venv's links
and `pyvenv.cfg`), and the project's own wheel built from the commit. Nothing
the image says about itself (RECORD, METADATA, a .pyc header) is believed:
every file is compared with the bytes the installer would have written, and
the files the installer generates are checked by rule.

Bytecode is proven by meaning, not by its bytes (see tooling/shipping/expected/bytecode.py).

The package, by layer (each module imports only those before it): wants (Want,
Found, Layout, Installer), wheels (the wheel an installer takes, fetched by
hash), install (what installing a wheel writes), venv (the whole venv a lock
makes), bytecode (a .pyc proven against its source), found (what an image
holds) and compare (`differences`).
"""

from __future__ import annotations

from tooling.shipping.expected.bytecode import Judge, judge_for, pyc_digests
from tooling.shipping.expected.compare import differences
from tooling.shipping.expected.found import found_in_layers, found_tree, glibc_of
from tooling.shipping.expected.install import installed_files
from tooling.shipping.expected.venv import expected_site_packages, venv_skeleton
from tooling.shipping.expected.wants import (
    FILE,
    FOLDER,
    LINK,
    UV,
    VENV,
    Expected,
    ExpectedError,
    Found,
    Installer,
    Layout,
    Want,
    file_want,
    sha256_hex,
    text_want,
)
from tooling.shipping.expected.wheels import Fetch, fetch_url

__all__ = [
    "FILE",
    "FOLDER",
    "LINK",
    "UV",
    "VENV",
    "Expected",
    "ExpectedError",
    "Fetch",
    "Found",
    "Installer",
    "Judge",
    "Layout",
    "Want",
    "differences",
    "expected_site_packages",
    "fetch_url",
    "file_want",
    "found_in_layers",
    "found_tree",
    "glibc_of",
    "installed_files",
    "judge_for",
    "pyc_digests",
    "sha256_hex",
    "text_want",
    "venv_skeleton",
]
