"""Locking against a loopback package index that wants a password (real uv, no internet)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.conftest import Bake
from tests.conftest import run_in as run
from tests.package_index import PackageIndex, build_wheel, user_pip

pytestmark = [pytest.mark.slow]

PASSWORD = "s3cret-Pa55"
TIERS = ("base", "sniper", "hunter", "strategist", "dev")  # the template's default


def use_index(project: Path, url: str | None, tiers: dict[str, str]) -> None:
    pyproject = project / "pyproject.toml"
    if url:
        pyproject.write_text(
            pyproject.read_text().replace(
                "[tool.lockstep]\n", f'[tool.lockstep]\nindex-url = "{url}"\n', 1
            )
        )
    requirements = project / "requirements"
    for path in requirements.glob("*.in"):
        path.unlink()
    for name, text in tiers.items():
        (requirements / f"{name}.in").write_text(text)


@pytest.fixture
def index(tmp_path: Path) -> PackageIndex:
    wheels = tmp_path / "wheels"
    with PackageIndex(credentials=("alice", PASSWORD)) as served:
        served.add("private", build_wheel(wheels, "tinypkg", "1.0", requires=("helper>=1",)))
        served.add("private", build_wheel(wheels, "helper", "1.0"))
        served.add("private", build_wheel(wheels, "helper", "1.1"))
        served.add("extra", build_wheel(wheels / "extra", "extrapkg", "2.0"))
        yield served


def test_credentials_reach_uv_and_pip_but_never_a_lock(
    bake: Bake, index: PackageIndex, tmp_path: Path
) -> None:
    project = bake(with_container="no")
    netrc = index.netrc(tmp_path / "netrc")
    use_index(
        project,
        index.url("private"),
        {
            "base": "tinypkg\n",
            "sniper": "-r base.in\n",
            "hunter": f"-r base.in\n--extra-index-url {index.url('extra', with_credentials=True)}\nextrapkg\n",
            "strategist": "-r hunter.in\n",
            "dev": "-r strategist.in\n",
        },
    )
    env = {"NETRC": str(netrc)}
    locked = run(project, "nox", "-s", "lock", env=env)
    assert locked.returncode == 0, locked.stderr
    assert PASSWORD not in locked.stdout + locked.stderr
    assert "nox > base: first lock, 2 packages\n" in locked.stderr  # tinypkg, helper
    assert "nox > hunter: first lock, 3 packages\n" in locked.stderr
    texts = {path.name: path.read_text() for path in (project / "requirements").glob("*.txt")}
    assert not [name for name, text in texts.items() if PASSWORD in text or "alice" in text]
    assert f"--index-url {index.url('private')}\n" in texts["base.txt"]
    assert f"--extra-index-url {index.url('extra')}\n" in texts["hunter.txt"]
    assert "extra/simple" not in texts["base.txt"] and "extrapkg" not in texts["base.txt"]
    assert any(authorized for _, authorized in index.requests)

    checked = run(project, "nox", "-s", "lock", "--", "--check")
    assert checked.returncode == 0, checked.stderr

    # The pylocks name each file where its own tier's index serves it, without the login.
    pylocks = {path.name: path.read_text() for path in (project / "requirements").glob("*.toml")}
    assert not [name for name, text in pylocks.items() if PASSWORD in text or "alice" in text]
    host = index.url("extra").rsplit("/extra/", 1)[0]
    assert f'url = "{host}/extra/files/extrapkg-' in pylocks["pylock.hunter.toml"]
    assert "extrapkg" not in pylocks["pylock.base.toml"]
    assert f'url = "{host}/private/files/tinypkg-' in pylocks["pylock.base.toml"]
    # pip (26.1+, here the template's own) installs the hunter tier from its pylock.
    venv.create(tmp_path / "from-pylock", with_pip=False)
    from_pylock = tmp_path / "from-pylock" / "bin" / "python"
    pylock_hunter = str(project / "requirements" / "pylock.hunter.toml")
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(from_pylock), "install", "-r", pylock_hunter],
        capture_output=True,
        text=True,
        check=False,
        env={**clean, "PIP_CONFIG_FILE": os.devnull, "NO_PROXY": "127.0.0.1", **env},
    )
    assert installed.returncode == 0, installed.stderr
    shown = subprocess.run(
        [str(from_pylock), "-c", "import tinypkg, helper, extrapkg; print(extrapkg.BUILD)"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.stdout.split() == ["2.0"], shown.stderr

    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    installed = user_pip(
        python, "--require-hashes", "-r", str(project / "requirements" / "hunter.txt"), env=env
    )
    assert installed.returncode == 0, installed.stderr
    shown = subprocess.run(
        [
            str(python),
            "-c",
            "import tinypkg, helper, extrapkg; print(helper.BUILD, extrapkg.BUILD)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.stdout.split() == ["1.1", "2.0"]


def test_a_refused_password_is_never_shown(bake: Bake, index: PackageIndex, tmp_path: Path) -> None:
    project = bake(with_container="no")
    wrong = index.url("private", with_credentials=True).replace(PASSWORD, "not-the-Pa55word")
    use_index(project, None, {"base": f"--index-url {wrong}\ntinypkg\n", "dev": "-r base.in\n"})
    before = sorted(p.name for p in (project / "requirements").iterdir())
    failed = run(project, "nox", "-s", "lock")
    assert failed.returncode == 1
    assert "not-the-Pa55word" not in failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr
    errors = [line for line in failed.stderr.splitlines() if "cannot lock" in line]
    assert len(errors) == 1, failed.stderr
    assert "401 Unauthorized" in errors[0]
    assert sorted(p.name for p in (project / "requirements").iterdir()) == before


def test_locks_keep_only_wheels_an_allowed_python_can_install(bake: Bake, tmp_path: Path) -> None:
    project = bake(with_container="no")  # .python-version 3.11: requires-python >=3.11
    tags = {
        "py3-none-any": True,
        "cp311-cp311-linux_x86_64": True,
        "cp39-abi3-linux_x86_64": True,
        "pp311-pypy311_pp73-linux_x86_64": True,
        "cp310-cp310-linux_x86_64": False,
        "cp38-cp38-win_amd64": False,
        "pp310-pypy310_pp73-linux_x86_64": False,
    }
    with PackageIndex() as served:
        hashes = {}
        for tag in tags:
            wheel = build_wheel(tmp_path / "wheels", "tinypkg", "1.0", tag=tag)
            served.add("simple-index", wheel)
            hashes[tag] = hashlib.sha256(wheel.read_bytes()).hexdigest()
        use_index(
            project,
            served.url("simple-index"),
            {name: "tinypkg\n" if name == "base" else "-r base.in\n" for name in TIERS},
        )
        locked = run(project, "nox", "-s", "lock")
    assert locked.returncode == 0, locked.stderr
    for name in TIERS:
        text = (project / "requirements" / f"{name}.txt").read_text()
        kept = {tag for tag, digest in hashes.items() if f"--hash=sha256:{digest}" in text}
        assert kept == {tag for tag, installs in tags.items() if installs}, name
    checked = run(project, "nox", "-s", "lock", "--", "--check")
    assert checked.returncode == 0, checked.stderr


def locks_of(project: Path) -> dict[str, bytes]:
    folder = project / "requirements"
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.t[xo][tm]*"))}


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def with_digest(text: str, line: str, digest: str) -> str:
    """The text with the digest on its header line starting with `line` replaced."""
    return re.sub(rf"(?m)^({re.escape(line)})[0-9a-f]{{64}}", rf"\g<1>{digest}", text, count=1)


def split_header(text: str) -> tuple[str, str]:
    lines = text.splitlines(keepends=True)
    start = next(n for n, line in enumerate(lines) if not line.startswith("#"))
    return "".join(lines[:start]), "".join(lines[start:])


def with_older_hash(project: Path, tiers: Sequence[str], digest: str) -> None:
    """The locks as a lockstep from before uninstallable hashes were left out wrote them:
    tinypkg's pin in the union and every tier also hashes `digest` (each digest in their
    headers recomputed), and each pylock, written from uv's listing, has no file for it."""
    requirements = project / "requirements"
    pin_line = "tinypkg==1.0 \\\n"

    def with_hash(body: str) -> str:
        assert body.count(pin_line) == 1
        return body.replace(pin_line, f"{pin_line}    --hash=sha256:{digest} \\\n")

    union = requirements / "_union.txt"
    head, body = split_header(union.read_text())
    body = with_hash(body)
    union.write_text(with_digest(head, "# body sha256:", sha256_of(body)) + body)
    after = body.splitlines()[body.splitlines().index(pin_line.rstrip("\n")) :]
    pin = after[: 1 + next(n for n, line in enumerate(after) if not line.endswith("\\"))]
    for tier in tiers:
        head, body = split_header((requirements / f"{tier}.txt").read_text())
        body = with_hash(body)
        head = with_digest(head, "# union pins sha256:", sha256_of("\n".join(pin)))
        (requirements / f"{tier}.txt").write_text(
            with_digest(head, "# body sha256:", sha256_of(body)) + body
        )
        pylock = requirements / f"pylock.{tier}.toml"
        from_line = f"# from requirements/{tier}.txt body sha256:"
        pylock.write_text(with_digest(pylock.read_text(), from_line, sha256_of(body)))


def test_a_pylock_file_left_out_is_named_and_an_older_locks_extra_hash_dropped(
    bake: Bake, tmp_path: Path
) -> None:
    project = bake(with_container="no")
    wheels = {}
    with PackageIndex() as served:
        for tag in ("py3-none-any", "cp311-cp311-linux_x86_64", "cp310-cp310-linux_x86_64"):
            wheel = build_wheel(tmp_path / "wheels", "tinypkg", "1.0", tag=tag)
            served.add("simple-index", wheel)
            wheels[tag] = hashlib.sha256(wheel.read_bytes()).hexdigest()
        use_index(
            project,
            served.url("simple-index"),
            {name: "tinypkg\n" if name == "base" else "-r base.in\n" for name in TIERS},
        )
        assert run(project, "nox", "-s", "lock").returncode == 0
        locked = locks_of(project)
        assert wheels["cp310-cp310-linux_x86_64"] not in locked["_union.txt"].decode()

        # a wheel left out of a pylock, its own digest recomputed
        pylock = project / "requirements" / "pylock.base.toml"
        head, body = split_header(pylock.read_text())
        body = "".join(
            line
            for line in body.splitlines(keepends=True)
            if wheels["cp311-cp311-linux_x86_64"] not in line
        )
        pylock.write_text(with_digest(head, "# body sha256:", sha256_of(body)) + body)
        check = run(project, "nox", "-s", "lock", "--", "--check")
        assert check.returncode == 1
        assert [line for line in check.stderr.splitlines() if "pylock" in line] == [
            "nox > base: requirements/pylock.base.toml lacks the file with hash "
            f"sha256:{wheels['cp311-cp311-linux_x86_64']} of tinypkg 1.0, which "
            "requirements/base.txt hashes"
        ], check.stderr
        relock = run(project, "nox", "-s", "lock")
        assert relock.returncode == 0, relock.stderr
        assert "nox > wrote requirements/pylock.base.toml\n" in relock.stderr
        assert locks_of(project) == locked
        assert run(project, "nox", "-s", "lock", "--", "--check").returncode == 0

        # a lock from an older lockstep: a hash of a wheel no allowed Python installs
        older = wheels["cp310-cp310-linux_x86_64"]
        with_older_hash(project, TIERS, older)
        check = run(project, "nox", "-s", "lock", "--", "--check")
        assert check.returncode == 1
        assert sorted(line for line in check.stderr.splitlines() if "pylock" in line) == [
            f"nox > {tier}: requirements/pylock.{tier}.toml lacks the file with hash "
            f"sha256:{older} of tinypkg 1.0, which requirements/{tier}.txt hashes"
            for tier in sorted(TIERS)
        ], check.stderr
        relock = run(project, "nox", "-s", "lock")
        assert relock.returncode == 0, relock.stderr
        assert (
            "nox > requirements/_union.txt and its tiers: dropped the hashes uv lists no "
            "installable file for, which an older lock kept (tinypkg 1.0)\n"
        ) in relock.stderr
        assert locks_of(project) == locked
        checked = run(project, "nox", "-s", "lock", "--", "--check")
        assert checked.returncode == 0, checked.stderr


def test_a_yanked_pin_is_locked_with_uvs_warning_shown_and_reported(
    bake: Bake, tmp_path: Path
) -> None:
    project = bake(with_container="no")
    with PackageIndex() as served:
        yanked = build_wheel(tmp_path / "wheels", "tinypkg", "1.0")
        served.add("simple-index", yanked)
        served.add("simple-index", build_wheel(tmp_path / "wheels", "tinypkg", "1.1"))
        served.yank(yanked, "broken release")
        use_index(
            project,
            served.url("simple-index"),
            {name: "tinypkg==1.0\n" if name == "base" else "-r base.in\n" for name in TIERS},
        )
        locked = run(project, "nox", "-s", "lock", "--", "--report", "moved.md")
    assert locked.returncode == 0, locked.stderr
    warning = (
        "warning: tinypkg 1.0 is yanked on its index (broken release); locked in "
        f"{', '.join(sorted(TIERS))}: pin another version unless you need this one"
    )
    assert f"nox > {warning}\n" in locked.stderr
    assert f"- {warning}\n" in (project / "moved.md").read_text()
    assert "tinypkg==1.0" in (project / "requirements" / "base.txt").read_text()


def test_a_file_on_an_index_no_lock_names_stops_the_lock(
    bake: Bake, index: PackageIndex, tmp_path: Path
) -> None:
    """uv's own uv.toml picks the index: the `.txt` names none, so its pylock may name no file
    there (the drift check refuses any pylock URL off the tier's indexes)."""
    project = bake(with_container="no")
    use_index(
        project, None, {name: "tinypkg\n" if name == "base" else "-r base.in\n" for name in TIERS}
    )
    (project / "uv.toml").write_text(f'[pip]\nindex-url = "{index.url("private")}"\n')
    before = sorted(p.name for p in (project / "requirements").iterdir())
    refused = run(project, "nox", "-s", "lock", env={"NETRC": str(index.netrc(tmp_path / "netrc"))})
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    port = index.url("private").split(":")[2].split("/")[0]
    assert (
        "aborted: cannot write requirements/pylock.base.toml: uv's listing names "
        f"helper-1.1-py3-none-any.whl for helper 1.1 at http://127.0.0.1:{port}, which is not "
        "an index requirements/base.txt names (https://pypi.org, https://files.pythonhosted.org); "
        "name the index that serves it with --index-url or --extra-index-url in requirements/base.in"
    ) in refused.stderr, refused.stderr
    assert sorted(p.name for p in (project / "requirements").iterdir()) == before
