import json
import subprocess
import sys

import pytest

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.cli import main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip().endswith(__version__)


def test_health_reports_ok_when_installed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "ok"
    assert report["problems"] == []


def test_health_fails_on_a_bad_log_level(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    assert main(["health"]) == 1
    assert "LOG_LEVEL=LOUD" in capsys.readouterr().out


def test_no_command_prints_help_and_fails() -> None:
    assert main([]) == 2


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "health"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
