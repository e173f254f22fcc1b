"""The tooling works in this project.

`tooling/` is maintained upstream, in the template this project was made from,
and tested there; it arrives through `cruft update` (docs/updates.md,
"Template updates"). This one check runs here: the tooling reads this project.
"""

from pathlib import Path

from tooling.project import load
from tooling.tiers import ancestors, read_tiers

ROOT = Path(__file__).resolve().parent.parent


def test_the_tooling_reads_this_projects_tiers_and_settings() -> None:
    project = load(ROOT)  # .python-version and [tool.lockstep] checked
    tiers = read_tiers(project.requirements_dir)
    assert project.dev_tier in tiers
    assert set(ancestors(tiers, project.dev_tier)) <= set(tiers)
