"""The release workflow, read as GitHub would run it (no scanner or registry can run here).

Schemas and zizmor cover every workflow in tests/test_ci_files.py; this file
checks what the release promises: per tier, build, smoke-test and scan before
anything is pushed, only the publish job can write, every action pinned to a
commit, the scan's severity and accepted findings from the project's own
settings, provenance and SBOM attested for the digest `invoke publish` printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SHA_PINNED, Bake

WRITES = {"packages": "write", "id-token": "write", "attestations": "write"}


def release(project: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (project / ".github" / "workflows" / "release.yml").read_text()
    )
    return loaded


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in steps(job) if str(step.get("uses", "")).startswith(action + "@")]


def test_release_runs_on_version_tags_and_only_publish_writes(bake: Bake) -> None:
    workflow = release(bake())
    assert workflow[True] == {"push": {"tags": ["v*"]}}  # YAML reads `on:` as True
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert set(jobs) == {"tiers", "image", "publish"}
    assert jobs["publish"]["permissions"] == {"contents": "read", **WRITES}
    for name in ("tiers", "image"):
        granted = jobs[name]["permissions"]
        assert not set(granted) & set(WRITES), name
        assert set(granted.values()) <= {"read"} | ({"write"} if name == "image" else set())
    assert jobs["image"]["permissions"] == {"contents": "read", "security-events": "write"}
    # Nothing is pushed unless every tier built, passed its smoke test and its scan.
    assert jobs["publish"]["needs"] == ["tiers", "image"]
    for job in jobs.values():
        for step in steps(job):
            if "uses" in step and not step["uses"].startswith("$/"):
                assert SHA_PINNED.fullmatch(step["uses"].split(" ")[0]), step["uses"]


def test_each_tier_is_smoke_tested_and_scanned_before_it_can_ship(bake: Bake) -> None:
    image = release(bake())["jobs"]["image"]
    runs = [str(step.get("run", "")) for step in steps(image)]
    order = [
        next(i for i, run in enumerate(runs) if run.startswith("invoke build")),
        next(i for i, run in enumerate(runs) if "smoke-test" in run),
        next(i for i, step in enumerate(steps(image)) if step.get("with", {}).get("exit-code") == "1"),
        next(i for i, step in enumerate(steps(image)) if step.get("uses", "").startswith("actions/upload-artifact@")),
    ]  # fmt: skip
    assert order == sorted(order)
    scans = uses(image, "aquasecurity/trivy-action")
    assert [scan["with"]["format"] for scan in scans] == ["sarif", "table"]
    blocking = scans[1]["with"]
    assert blocking["severity"] == "${{ steps.scan.outputs.severity }}"
    assert all(s["with"]["trivyignores"] == "${{ steps.scan.outputs.trivyignore }}" for s in scans)
    [sarif] = uses(image, "github/codeql-action/upload-sarif")
    assert sarif["with"]["sarif_file"] == scans[0]["with"]["output"]
    assert any("GITHUB_STEP_SUMMARY" in run for run in runs)


def test_publish_attests_provenance_and_the_image_sbom_of_the_printed_digest(bake: Bake) -> None:
    publish = release(bake())["jobs"]["publish"]
    runs = " ".join(str(step.get("run", "")) for step in steps(publish))
    assert 'invoke publish --tier "$TIER" --registry "ghcr.io/${OWNER,,}"' in runs
    assert "--password-stdin" in runs and "$TOKEN" in runs
    provenance, *sboms = uses(publish, "actions/attest")
    # The index digest `invoke publish` printed; each platform's SBOM for that platform's digest.
    assert provenance["with"]["subject-digest"] == "${{ steps.publish.outputs.digest }}"
    assert "sbom-path" not in provenance["with"]  # no predicate: SLSA build provenance
    assert [sbom["with"]["subject-digest"] for sbom in sboms] == [
        "${{ steps.publish.outputs.amd64-digest }}",
        "${{ steps.publish.outputs.arm64-digest }}",
    ]
    assert [sbom["with"]["sbom-path"] for sbom in sboms] == [
        "${{ steps.publish.outputs.amd64-sbom }}",
        "${{ steps.publish.outputs.arm64-sbom }}",
    ]
    for attest in (provenance, *sboms):
        assert attest["with"]["push-to-registry"] is True
    assert any("GITHUB_STEP_SUMMARY" in str(step.get("run", "")) for step in steps(publish))


def run_step(project: Path, step: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """A workflow step's shell script run in the project as GitHub would: its outputs."""
    output = project / "github-output"
    output.write_text("")
    done = subprocess.run(
        ["bash", "-e", "-c", str(step["run"])],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "GITHUB_OUTPUT": str(output),
            **env,
        },
    )
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


def test_each_tier_is_built_per_platform_on_native_runners_and_merged_into_one_index(
    bake: Bake,
) -> None:
    project = bake()
    workflow = release(project)
    tiers_job, image, publish = (workflow["jobs"][name] for name in ("tiers", "image", "publish"))
    [listing] = [step for step in steps(tiers_job) if step.get("id") == "list"]
    default = run_step(project, listing, {})
    assert json.loads(default["platforms"]) == ["linux/amd64"]
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.lockstep]\n", '[tool.lockstep]\nplatforms = ["linux/amd64", "linux/arm64"]\n'
        )
    )
    both = run_step(project, listing, {})
    builds = json.loads(both["builds"])
    tiers_listed = json.loads(both["tiers"])
    assert {(b["tier"], b["platform"], b["runner"]) for b in builds} == {
        (tier, platform, runner)
        for tier in tiers_listed
        for platform, runner in (
            ("linux/amd64", "ubuntu-24.04"),
            ("linux/arm64", "ubuntu-24.04-arm"),
        )
    }
    assert image["runs-on"] == "${{ matrix.runner }}"
    assert image["strategy"]["matrix"] == {"include": "${{ fromJSON(needs.tiers.outputs.builds) }}"}
    runs = [str(step.get("run", "")) for step in steps(image)]
    assert 'invoke build --tier "$TIER" --engine docker --platform "$PLATFORM"' in runs
    [kept] = uses(image, "actions/upload-artifact")
    assert kept["with"]["name"] == "image-${{ matrix.tier }}-${{ matrix.arch }}"
    # The publish job merges every platform's image of its tier into one index, then publishes.
    assert publish["strategy"]["matrix"] == {"tier": "${{ fromJSON(needs.tiers.outputs.tiers) }}"}
    [fetched] = uses(publish, "actions/download-artifact")
    assert fetched["with"]["pattern"] == "image-${{ matrix.tier }}-*"
    publish_runs = [str(step.get("run", "")) for step in steps(publish)]
    merged = next(
        i for i, run in enumerate(publish_runs) if "python -m tooling.images.index" in run
    )
    pushed = next(i for i, run in enumerate(publish_runs) if "invoke publish" in run)
    assert merged < pushed
    assert any("qemu-user-static binfmt-support" in run for run in publish_runs[:pushed])

    pyproject.write_text(pyproject.read_text().replace('"linux/arm64"]', '"linux/s390x"]'))
    refused = subprocess.run(
        ["bash", "-e", "-c", str(listing["run"])],
        cwd=project, capture_output=True, text=True, check=False,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "GITHUB_OUTPUT": "/dev/null"},
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: no GitHub-hosted runner builds linux/s390x natively: use linux/amd64, linux/arm64"
    )


@pytest.mark.parametrize(
    ("setting", "severities"),
    [("", "CRITICAL"), ('image-scan-severity = "high"\n', "HIGH,CRITICAL")],
)
def test_the_scan_settings_step_reads_the_project(
    bake: Bake, setting: str, severities: str
) -> None:
    """The step the workflow runs, run here: severities and the allow-list as Trivy's file."""
    project = bake()
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.lockstep]\n", f"[tool.lockstep]\n{setting}")
    )
    expires = date.today() + timedelta(days=100)
    allowlist = project / "audit-allowlist.toml"
    allowlist.write_text(
        '[[ignore]]\nid = "CVE-2026-0001"\npackage = "libssl3"\n'
        f'reason = "Not reachable: no TLS server runs in the image."\nexpires = {expires}\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "tooling.images.image_scan", "sniper"],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [f"severity={severities}", "trivyignore=dist/images/sniper.trivyignore.yaml"]
    ignores = yaml.safe_load((project / "dist/images/sniper.trivyignore.yaml").read_text())
    assert ignores == {
        "vulnerabilities": [
            {
                "id": "CVE-2026-0001",
                "statement": "Not reachable: no TLS server runs in the image.",
                "expired_at": expires.isoformat(),
            }
        ]
    }

    allowlist.write_text(allowlist.read_text().replace(str(expires), "2020-01-01"))
    expired = subprocess.run(
        [sys.executable, "-m", "tooling.images.image_scan", "sniper"],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert expired.returncode == 1
    assert expired.stderr.strip().splitlines() == [
        "error: audit-allowlist.toml: expired: [[ignore]] #1 (CVE-2026-0001 for libssl3) on "
        "2020-01-01; review it or remove it"
    ]


def test_ci_scans_every_image_it_builds_with_the_same_settings(bake: Bake) -> None:
    project = bake()
    ci = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    image = ci["jobs"]["image"]
    assert image["permissions"] == {"contents": "read"}
    [scan] = uses(image, "aquasecurity/trivy-action")
    assert scan["with"]["exit-code"] == "1"
    assert scan["with"]["severity"] == "${{ steps.scan.outputs.severity }}"
    assert scan["with"]["trivyignores"] == "${{ steps.scan.outputs.trivyignore }}"
    runs = [str(step.get("run", "")) for step in steps(image)]
    assert any(run.startswith("python -m tooling.images.image_scan") for run in runs)


def test_scan_without_a_scanner_says_how_to_get_one(bake: Bake) -> None:
    project = bake()
    path = str(Path(sys.executable).parent)  # invoke and python, no trivy or grype
    done = subprocess.run(
        ["invoke", "scan", "--tier", "sniper"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": path, "HOME": str(project)},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: no container scanner found: install trivy (https://trivy.dev) or grype "
        "(https://github.com/anchore/grype); CI scans every image with Trivy"
    ]
