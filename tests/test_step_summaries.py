"""GitHub step summaries: Markdown appended to $GITHUB_STEP_SUMMARY, never a failed command.

The lock check, the lock refresh and the audit sessions are run for real in
test_lock.py and test_generated_audit.py; the images' in test_images.py.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.audit_support import OSV, FakePipAudit, load, two_tier_locks, vuln, write

summary = load("summary")
policy = load("audit.policy")
report = load("audit.report")
main = load("audit.__main__")
engines = load("engines")
images = load("images")


def test_sections_are_appended_to_what_earlier_steps_wrote(tmp_path: Path) -> None:
    page = write(tmp_path / "summary.md", "## build\n\nearlier step\n")
    summary.append("## one\n\nfirst", {"GITHUB_STEP_SUMMARY": str(page)})
    summary.append("## two\n", {"GITHUB_STEP_SUMMARY": str(page)})
    assert page.read_text() == "## build\n\nearlier step\n## one\n\nfirst\n\n## two\n\n"


def test_without_the_variable_nothing_is_written(tmp_path: Path) -> None:
    summary.append("## one", {"GITHUB_STEP_SUMMARY": ""})
    summary.append("## one", {})
    assert list(tmp_path.iterdir()) == []


def test_a_summary_that_cannot_be_written_is_one_line_and_no_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary.append("## one", {"GITHUB_STEP_SUMMARY": str(tmp_path)})  # a folder
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"warning: the step summary {tmp_path} was not written: Is a directory\n"


def test_table_cells_stay_on_one_line_and_escape_pipes() -> None:
    assert summary.table(("a", "b"), [("x | y", "two\nlines"), ("", 3)]) == [
        "| a | b |",
        "|---|---|",
        "| x \\| y | two lines |",
        "|   | 3 |",
    ]


def test_the_audit_table_has_tier_package_version_advisory_severity_fix_and_allowance(
    tmp_path: Path,
) -> None:
    runner = FakePipAudit(
        {
            ("jinja2", "2.10"): [
                vuln("PYSEC-2019-217", "CVE-2019-10906", fix=["2.10.1"]),
                vuln("PYSEC-2020-1", fix=[]),
            ]
        },
        skipped={"colorama": "Dependency not found on PyPI"},
    )
    allowlist = write(
        tmp_path / "audit-allowlist.toml",
        "[[ignore]]\nid = 'PYSEC-2020-1'\nreason = 'Not reachable.'\nexpires = 2029-07-01\n",
    )
    result = policy.audit_locks(
        two_tier_locks(tmp_path),
        run=runner,
        env=dict(OSV),
        today=date(2029, 6, 1),
        allowlist_path=allowlist,
    )
    lines = report.markdown(result).splitlines()
    assert lines[0] == "## pip-audit"
    assert lines[2].startswith("audit FAILED: 1 vulnerability in 1 pinned version")
    assert lines[4:] == [
        "| tier | package | version | advisory | severity | fixed in | allow-listed until |",
        "|---|---|---|---|---|---|---|",
        "| web | jinja2 | 2.10 | PYSEC-2019-217 | unknown | 2.10.1 |   |",
        "| web | jinja2 | 2.10 | PYSEC-2020-1 | unknown | no fix yet | 2029-07-01 |",
        "| web | colorama | 0.4.6 | NOT CHECKED: Dependency not found on PyPI |   |   |   |",
    ]


def test_a_skipped_safety_says_so_on_the_summary_and_the_terminal_is_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = two_tier_locks(tmp_path)["base"].parent
    write(folder / "base.in", "requests\n")
    write(folder / "web.in", "-r base.in\njinja2\n")
    argv = ["safety", "--requirements", str(folder)]
    assert main.main(argv, env={}) == 0
    terminal = capsys.readouterr().out
    page = tmp_path / "summary.md"
    assert main.main(argv, env={"GITHUB_STEP_SUMMARY": str(page)}) == 0
    assert capsys.readouterr().out == terminal
    assert page.read_text() == f"## safety\n\n{terminal.strip()}\n\n"


def facts(size: int) -> object:
    return engines.ImageFacts(
        id="sha256:abc",
        entrypoint=[],
        healthcheck=[],
        user="",
        env=[],
        labels={},
        size=size,
        digest="",
    )


def test_images_are_summarized_with_id_and_size_against_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(page))
    project = SimpleNamespace(settings={"image-budget-mb": {"sniper": 100}})
    checked = [
        ("sniper", "svc:sniper", facts(99_600_000)),
        ("hunter", "svc:hunter", facts(600_000_000)),
    ]
    images.summarize_images(project, "Images built", checked)
    assert page.read_text().splitlines() == [
        "## Images built",
        "",
        "| tier | image | image ID | size | budget |",
        "|---|---|---|---|---|",
        "| sniper | svc:sniper | sha256:abc | 100 MB | 100 MB (within budget) |",
        f"| hunter | svc:hunter | sha256:abc | 600 MB | {images.DEFAULT_BUDGET_MB} MB (OVER BUDGET) |",
        "",
    ]
