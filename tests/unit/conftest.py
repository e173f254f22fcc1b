"""Unit tests of the generated project's `tooling/`, run in place in the template.

`tooling/` holds no Jinja, so it is imported straight from the template folder:
the tooling is tested once, here, and a generated project carries only its
app's tests and one short check that its tooling works there. Also: fixtures
shared by the lock tests.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT_TEMPLATE = Path(__file__).resolve().parents[2] / "{{cookiecutter.project_slug}}"
sys.path.insert(0, str(PROJECT_TEMPLATE))

from tooling import lock, lockfile  # noqa: E402  (found through the path above)


@pytest.fixture
def forge_digests() -> Callable[[Path], None]:
    """Rewrite every lock header as if its inputs had always been what they are now.

    What someone would do to make a hand-edited input look locked; only the
    check of requirements against pins can still see it.
    """

    def forge(root: Path) -> None:
        # unions first: each tier records a digest of its packages' pins in its union
        for path in sorted((root / "requirements").glob("*.txt")):
            text = re.sub(
                r"(?m)^#   (\S+) sha256:[0-9a-f]{64}$",
                lambda found: (
                    f"#   {found.group(1)} sha256:"
                    + lock.requirement_digest((root / found.group(1)).read_text())
                ),
                path.read_text(),
            )
            if (union_pins := lock.recorded(text).derived_from) is not None:
                union_path = re.search(r"as (requirements/\S+) pins them", text)
                assert union_path is not None
                union = lockfile.read(root / union_path.group(1))
                names = {pin.name for pin in lockfile.parse(text).pins}
                text = text.replace(union_pins, lock.Union("", union.pins).digest_of(names))
            if (body_digest := lock.recorded(text).body_digest) is not None:
                fresh = hashlib.sha256(lock.recorded(text).body.encode()).hexdigest()
                text = text.replace(body_digest, fresh)
            path.write_text(text)

    return forge
