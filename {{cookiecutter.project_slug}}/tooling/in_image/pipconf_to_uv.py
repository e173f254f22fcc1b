"""Print a pip.conf's index settings as `export UV_...=...` lines for a shell to eval.

uv ignores pip's configuration, so the image build translates the `pipconf`
build secret with this script (standard library only: it runs in the build
stage) inside the RUN that installs; the values never reach a layer.

    settings="$(python pipconf_to_uv.py /run/secrets/pipconf)" && eval "$settings"
"""

from __future__ import annotations

import configparser
import shlex
import sys

# pip.conf key -> uv environment variable; multi-valued keys are joined with spaces.
SETTINGS = {
    "index-url": "UV_INDEX_URL",
    "extra-index-url": "UV_EXTRA_INDEX_URL",
    "find-links": "UV_FIND_LINKS",
    "trusted-host": "UV_INSECURE_HOST",
    "cert": "SSL_CERT_FILE",
}
SECTIONS = ("global", "install")  # pip reads [install] after [global]


def uv_environment(text: str) -> dict[str, str]:
    """The uv settings a pip.conf's [global] and [install] sections name."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    found: dict[str, str] = {}
    for section in SECTIONS:
        if not parser.has_section(section):
            continue
        for key, variable in SETTINGS.items():
            value = parser.get(section, key, fallback="").split()
            if value:
                separator = "," if variable == "UV_FIND_LINKS" else " "
                found[variable] = separator.join(value)
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: pipconf_to_uv.py PIP_CONF", file=sys.stderr)
        return 2
    try:
        with open(argv[0], encoding="utf-8") as file:
            settings = uv_environment(file.read())
    except OSError as error:
        print(f"pipconf secret: cannot read {argv[0]}: {error.strerror}", file=sys.stderr)
        return 1
    except configparser.Error as error:
        # Not the parser's message: it quotes lines, and those may hold credentials.
        print(f"pipconf secret is not a valid pip.conf ({type(error).__name__})", file=sys.stderr)
        return 1
    for variable, value in settings.items():
        print(f"export {variable}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
