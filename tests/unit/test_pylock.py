"""requirements/pylock.<tier>.toml: written with the tier locks, checked, kept in step."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import uv_stand_in
from test_lock import HASHES, UNION_BODY, FakeUv, locks, project  # noqa: F401  (project is a fixture)
from tooling import lock, lockfile, pylock
from tooling.distfiles import File
from tooling.project import load

SHA = {name: hashlib.sha256(name.encode()).hexdigest() for name in ("sdist", "w1", "w2", "x")}
LOCK = f"""\
# requirements/hunter.txt: hashed lock of the hunter tier.
numpy==2.0.0 ; python_version < "3.12" \\
    --hash=sha256:{SHA["w2"]} \\
    --hash=sha256:{SHA["sdist"]} \\
    --hash=sha256:{SHA["w1"]}
    # via -r requirements/hunter.in
"""
FILES = {
    f"sha256:{SHA['sdist']}": File(
        "numpy-2.0.0.tar.gz", "https://alice:S3CRET@files.example/numpy-2.0.0.tar.gz", ()
    ),
    f"sha256:{SHA['w1']}": File(
        "numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "https://files.example/numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl#sha256=x",
        (),
    ),
    f"sha256:{SHA['w2']}": File("numpy-2.0.0-cp311-cp311-win_amd64.whl", "wheels/numpy.whl", ()),
}
FILES = {digest: File(f.name, f.url, (digest,)) for digest, f in FILES.items()}


def rendered(text: str = LOCK, files: dict[str, File] = FILES) -> str:
    pins = lockfile.parse(text).pins
    header = ["# requirements/pylock.hunter.toml: test", "# second line"]
    return pylock.render("requirements/hunter.txt", text, pins, files, ">=3.11", header)


def test_a_pylock_holds_the_same_pin_marker_and_hashes_as_its_lock() -> None:
    text = rendered()
    data = tomllib.loads(text)
    assert (data["lock-version"], data["requires-python"]) == ("1.0", ">=3.11")
    (numpy,) = data["packages"]
    assert (numpy["name"], numpy["version"]) == ("numpy", "2.0.0")
    assert numpy["marker"] == 'python_version < "3.12"'
    assert numpy["sdist"]["hashes"] == {"sha256": SHA["sdist"]}
    # no login and no fragment reach the lock; a local file stays a path
    assert numpy["sdist"]["url"] == "https://files.example/numpy-2.0.0.tar.gz"
    assert "S3CRET" not in text
    wheels = {wheel["name"]: wheel for wheel in numpy["wheels"]}
    assert wheels["numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl"]["url"].endswith(".whl")
    assert wheels["numpy-2.0.0-cp311-cp311-win_amd64.whl"]["path"] == "wheels/numpy.whl"
    hashes = {f"sha256:{w['hashes']['sha256']}" for w in numpy["wheels"]}
    hashes.add(f"sha256:{numpy['sdist']['hashes']['sha256']}")
    assert hashes == set(lockfile.parse(LOCK).pins[0].hashes)
    assert pylock.problem(text, "requirements/hunter.txt", LOCK) is None


def test_a_pylock_is_valid_for_the_standard_reader() -> None:
    reader = pytest.importorskip("packaging.pylock")  # packaging 26+, as pip vendors it
    reader.Pylock.from_dict(tomllib.loads(rendered()))


def test_a_hash_without_a_listed_file_is_left_out_and_a_pin_without_any_is_named() -> None:
    # what uv lists no file for, no allowed Python installs (an older lock still has it)
    fewer = tomllib.loads(rendered(files={k: v for k, v in FILES.items() if SHA["w2"] not in k}))
    assert [wheel["name"] for wheel in fewer["packages"][0]["wheels"]] == [
        "numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    ]
    with pytest.raises(pylock.UnlistedFiles) as unlisted:
        rendered(files={})
    assert unlisted.value.pins == ["numpy==2.0.0"]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda text: text.replace('version = "2.0.0"', 'version = "2.0.1"'),
            "does not match the digest of its body (cut or edited by hand)",
        ),
        (
            lambda text: "\n".join(line for line in text.splitlines() if "body" not in line),
            "records no digests: it was not written by `nox -s lock`",
        ),
    ],
)
def test_an_edited_pylock_is_named(edit: object, problem: str) -> None:
    assert callable(edit)
    assert pylock.problem(edit(rendered()), "requirements/hunter.txt", LOCK) == problem


def test_a_pylock_of_another_lock_is_named() -> None:
    other = LOCK.replace("2.0.0", "2.0.1")
    assert pylock.problem(rendered(), "requirements/hunter.txt", other) == (
        "was written from another requirements/hunter.txt than the one beside it"
    )


def check_of(root: Path) -> list[str]:
    return lock.check(load(root))


def test_the_lock_writes_a_pylock_per_tier_and_the_check_names_an_edited_one(
    project: Path,  # noqa: F811
) -> None:
    lock.lock(load(project), run=FakeUv())
    written = locks(project)
    for tier in ("base", "sniper", "hunter", "strategist"):
        data = tomllib.loads(written[f"pylock.{tier}.toml"])
        pins = lockfile.parse(written[f"{tier}.txt"]).pins
        assert [(p["name"], p["version"]) for p in data["packages"]] == [
            (pin.name, pin.version) for pin in pins
        ]
    assert check_of(project) == []
    path = project / "requirements" / "pylock.hunter.toml"
    path.write_text(path.read_text().replace('version = "2.0.0"', 'version = "1.26.4"'))
    assert check_of(project) == [
        "hunter: requirements/pylock.hunter.toml does not match the digest of its body "
        "(cut or edited by hand)"
    ]
    path.unlink()
    assert check_of(project) == ["hunter: requirements/pylock.hunter.toml is missing"]


def test_the_check_checks_a_file_that_several_tiers_name_once(
    project: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock.lock(load(project), run=FakeUv())
    pylock.reading.package_as_written.cache_clear()  # as in a new process
    pylock.check.sound_files.cache_clear()
    pylock.check.table_as_derived.cache_clear()
    checked: list[str] = []
    real = pylock.check.file_problem

    def counted(pin: lockfile.Pin, file: File, sources: pylock.Sources, name: str) -> str | None:
        checked.append(file.name)
        return real(pin, file, sources, name)

    monkeypatch.setattr(pylock.check, "file_problem", counted)
    assert check_of(project) == []
    named = [
        entry["name"]
        for text in locks(project).values()
        if text.startswith("# requirements/pylock.")
        for package in tomllib.loads(text)["packages"]
        for entry in [package.get("sdist", {}), *package.get("wheels", [])]
        if entry
    ]
    assert len(named) > len(set(named))  # tiers share packages
    assert sorted(checked) == sorted(set(named))


def test_the_lock_writes_a_missing_or_edited_pylock_again_without_resolving(
    project: Path,  # noqa: F811
) -> None:
    lock.lock(load(project), run=FakeUv())
    before = locks(project)
    (project / "requirements" / "pylock.hunter.toml").write_text("edited\n")
    (project / "requirements" / "pylock.base.toml").unlink()
    uv = FakeUv()
    result = lock.lock(load(project), run=uv)
    assert uv.calls == [] and not result.resolved  # the file listing came from uv's cache
    assert locks(project) == before
    assert check_of(project) == []


def test_a_gone_tiers_pylock_is_deleted_and_a_hand_written_one_is_kept(
    project: Path,  # noqa: F811
) -> None:
    lock.lock(load(project), run=FakeUv())
    (project / "requirements" / "pylock.mine.toml").write_text('lock-version = "1.0"\n')
    (project / "requirements" / "sniper.in").unlink()
    result = lock.lock(load(project), run=FakeUv())
    assert project / "requirements" / "pylock.sniper.toml" in result.removed
    assert not (project / "requirements" / "pylock.sniper.toml").exists()
    assert (project / "requirements" / "pylock.mine.toml").exists()


def test_a_pylock_without_the_files_of_its_hashes_is_one_line(
    project: Path,  # noqa: F811
) -> None:
    class ListsNothing(FakeUv):
        def __call__(self, argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
            if "pylock.toml" in argv:
                Path(argv[argv.index("--output-file") + 1]).write_text('lock-version = "1.0"\n')
                return subprocess.CompletedProcess(argv, 0, "", "")
            return super().__call__(argv, cwd)

    with pytest.raises(lock.LockError) as error:
        lock.lock(load(project), run=ListsNothing())
    assert re.match(r"requirements/pylock\.\w+\.toml: uv lists no file for any ", str(error.value))
    assert not list((project / "requirements").glob("*.txt"))


# --- the check derives a pylock from its .txt: its own digests prove nothing -----------------

NUMPY_WHEEL = "numpy-2.0.0-py3-none-any.whl"
NUMPY_URL = f"https://files.pythonhosted.org/packages/{NUMPY_WHEEL}"
EVIL = (
    '\n[[packages]]\nname = "evil"\nversion = "1.0"\nwheels = [\n    { name = '
    '"evil-1.0-py3-none-any.whl", url = "https://files.pythonhosted.org/packages/'
    'evil-1.0-py3-none-any.whl", hashes = { sha256 = "' + SHA["x"] + '" } },\n]\n'
)
STRUCTLOG = re.compile(r'\n\[\[packages\]\]\nname = "structlog"\n.*?\]\n', re.DOTALL)


def with_digest(text: str) -> str:
    """The pylock with its `# body sha256` recomputed, as a careful hand edit would."""
    head, body = pylock.split_header(text)
    digest = hashlib.sha256(body.encode()).hexdigest()
    return re.sub(r"# body sha256:[0-9a-f]{64}", f"# body sha256:{digest}", head) + body


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda t: t + EVIL, "names evil 1.0, which requirements/hunter.txt does not pin"),
        (
            lambda t: t.replace('version = "2.0.0"', 'version = "1.26.4"'),
            "names numpy 1.26.4, but requirements/hunter.txt pins numpy 2.0.0",
        ),
        (
            lambda t: STRUCTLOG.sub("", t),
            "lacks structlog 24.1.0, which requirements/hunter.txt pins",
        ),
        (
            lambda t: t.replace(NUMPY_URL, f"https://mirror.example/{NUMPY_WHEEL}"),
            f"names {NUMPY_WHEEL} for numpy 2.0.0 at https://mirror.example, which is not an "
            "index requirements/hunter.txt names (https://pypi.org, https://files.pythonhosted.org)",
        ),
        (
            lambda t: t.replace('version = "2.0.0"', 'version = "2.0.0"\nmarker = "os_name == \'nt\'"'),
            "gives numpy 2.0.0 the marker \"os_name == 'nt'\", but requirements/hunter.txt gives "
            "it no marker",
        ),
        (
            lambda t: re.sub(r'(numpy-2\.0\.0-py3-none-any\.whl", hashes = \{ sha256 = ")\w+', rf"\g<1>{SHA['x']}", t),
            f"names {NUMPY_WHEEL} for numpy 2.0.0 with a hash requirements/hunter.txt does not pin",
        ),
        (
            lambda t: t.replace(f'name = "{NUMPY_WHEEL}"', 'name = "evil-2.0.0-py3-none-any.whl"'),
            "names evil-2.0.0-py3-none-any.whl, which is not a file of numpy 2.0.0",
        ),
        (
            lambda t: t.replace(NUMPY_URL, "https://files.pythonhosted.org/packages/evil.whl"),
            f"names {NUMPY_WHEEL} for numpy 2.0.0 at the URL of another file (evil.whl)",
        ),
        (
            lambda t: t.replace(NUMPY_URL, NUMPY_URL + "?token=x"),
            "is not what `nox -s lock` writes from requirements/hunter.txt: line 13 (package numpy) "
            "reads '…0.0-py3-none-any.whl?token=x\", hashes = { sha256 = \"ca978112…' where it "
            "writes '…0.0-py3-none-any.whl\", hashes = { sha256 = \"ca978112ca1bbdca…'",
        ),
        (
            lambda t: t + "[[packages\n",
            "cannot be derived: it is not TOML (Expected ']]' at the end of an array declaration "
            "(at line 22, column 11))",
        ),
    ],
    ids=[
        "extra package", "other version", "removed package", "other host", "marker",
        "unpinned hash", "another package's file", "URL of another file", "query string",
        "not TOML",
    ],
)  # fmt: skip
def test_a_pylock_edited_with_its_digest_recomputed_is_named_and_written_again(
    project: Path,  # noqa: F811
    edit: Callable[[str], str],
    named: str,
) -> None:
    lock.lock(load(project), run=FakeUv())
    before = locks(project)
    path = project / "requirements" / "pylock.hunter.toml"
    path.write_text(with_digest(edit(path.read_text())))
    assert check_of(project) == [f"hunter: requirements/pylock.hunter.toml {named}"]
    lock.lock(load(project), run=FakeUv())  # the .txt locks are current: only the pylock moves
    assert locks(project) == before
    assert check_of(project) == []


def test_a_pylock_with_an_escape_json_does_not_read_is_one_line(
    project: Path,  # noqa: F811
) -> None:
    """The quick reader reads JSON's escapes; one it does not read is left to tomllib."""
    lock.lock(load(project), run=FakeUv())
    path = project / "requirements" / "pylock.hunter.toml"
    text = path.read_text()
    path.write_text(with_digest(text.replace('name = "structlog"', 'name = "struct\\qlog"')))
    assert check_of(project) == [
        "hunter: requirements/pylock.hunter.toml cannot be derived: it is not TOML (Unescaped "
        "'\\' in a string (at line 17, column 17))"
    ]


def test_a_file_on_a_host_of_the_tiers_own_index_is_accepted(project: Path) -> None:  # noqa: F811
    (project / "pyproject.toml").write_text(
        '[tool.lockstep]\nindex-url = "https://pypi.example/simple"\n'
    )
    lock.lock(load(project), run=FakeUv())
    text = (project / "requirements" / "pylock.hunter.toml").read_text()
    assert f'url = "https://pypi.example/files/{NUMPY_WHEEL}"' in text
    assert check_of(project) == []
    path = project / "requirements" / "pylock.hunter.toml"
    path.write_text(
        with_digest(text.replace(f"https://pypi.example/files/{NUMPY_WHEEL}", NUMPY_URL))
    )
    assert check_of(project) == [
        f"hunter: requirements/pylock.hunter.toml names {NUMPY_WHEEL} for numpy 2.0.0 at "
        "https://files.pythonhosted.org, which is not an index requirements/hunter.txt names "
        "(https://pypi.example)"
    ]


def test_a_file_on_an_index_the_environment_sets_is_accepted(
    project: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A company mirror set for uv and pip on this machine (UV_INDEX_URL...), not in the project."""
    lock.lock(load(project), run=FakeUv())
    path = project / "requirements" / "pylock.hunter.toml"
    mirror = NUMPY_URL.replace("https://files.pythonhosted.org", "https://mirror.corp:8443")
    path.write_text(with_digest(path.read_text().replace(NUMPY_URL, mirror)))
    monkeypatch.setenv("UV_INDEX", "corp=https://bob:t0ken@mirror.corp:8443/simple")
    assert check_of(project) == []
    monkeypatch.delenv("UV_INDEX")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "https://other.corp/simple")
    assert check_of(project) == [
        f"hunter: requirements/pylock.hunter.toml names {NUMPY_WHEEL} for numpy 2.0.0 at "
        "https://mirror.corp:8443, which is not an index requirements/hunter.txt names or the "
        "environment sets (https://pypi.org, https://files.pythonhosted.org, https://other.corp)"
    ]


# --- every hash of the .txt has its file in the pylock --------------------------------------

TWO_WHEELS = UNION_BODY.replace(  # numpy: a py3 wheel and a Linux one
    f"    --hash=sha256:{HASHES['a']}\n",
    f"    --hash=sha256:{HASHES['a']} \\\n    --hash=sha256:{HASHES['d']}\n",
    1,
)
LINUX_WHEEL = "cp311-cp311-manylinux_2_17_x86_64"


def without_file(text: str, digest: str) -> str:
    """The pylock without the wheel of this hash, its own digest recomputed."""
    kept = [line for line in text.splitlines(keepends=True) if digest not in line]
    assert len(kept) == len(text.splitlines()) - 1
    return with_digest("".join(kept))


def test_a_pylock_that_leaves_out_a_file_of_its_lock_is_named_and_written_again(
    project: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(uv_stand_in.WHEEL_TAGS, f"sha256:{HASHES['d']}", LINUX_WHEEL)
    lock.lock(load(project), run=FakeUv(TWO_WHEELS))
    before = locks(project)
    assert f"numpy-2.0.0-{LINUX_WHEEL}.whl" in before["pylock.hunter.toml"]
    path = project / "requirements" / "pylock.hunter.toml"
    path.write_text(without_file(path.read_text(), HASHES["d"]))
    assert check_of(project) == [
        f"hunter: requirements/pylock.hunter.toml lacks the file with hash sha256:{HASHES['d']} "
        "of numpy 2.0.0, which requirements/hunter.txt hashes"
    ]
    uv = FakeUv(TWO_WHEELS)
    result = lock.lock(load(project), run=uv)
    assert uv.calls == [] and not result.resolved
    assert result.written == [path]
    assert locks(project) == before
    assert check_of(project) == []


def test_a_hash_uv_lists_no_file_for_is_dropped_from_an_older_lock(
    project: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lock from before uninstallable hashes were left out: its `.txt` hashes a file uv does
    not list, and its pylock (written from uv's listing) names no file for that hash."""
    monkeypatch.setitem(uv_stand_in.WHEEL_TAGS, f"sha256:{HASHES['d']}", LINUX_WHEEL)
    lock.lock(load(project), run=FakeUv(TWO_WHEELS))
    for tier in ("hunter", "strategist"):
        path = project / "requirements" / f"pylock.{tier}.toml"
        path.write_text(without_file(path.read_text(), HASHES["d"]))
    assert check_of(project) == [
        f"{tier}: requirements/pylock.{tier}.toml lacks the file with hash "
        f"sha256:{HASHES['d']} of numpy 2.0.0, which requirements/{tier}.txt hashes"
        for tier in ("hunter", "strategist")
    ]
    monkeypatch.setattr(uv_stand_in, "UNLISTED", {f"sha256:{HASHES['d']}"})
    uv = FakeUv(TWO_WHEELS)
    result = lock.lock(load(project), run=uv)
    assert uv.calls == [] and not result.resolved
    assert result.notes == [
        "requirements/_union.txt and its tiers: dropped the hashes uv lists no installable file "
        "for, which an older lock kept (numpy 2.0.0)"
    ]
    repaired = locks(project)
    assert not [name for name, text in repaired.items() if HASHES["d"] in text]
    assert check_of(project) == []
    for name in repaired:  # what a lock from scratch writes
        (project / "requirements" / name).unlink()
    lock.lock(load(project), run=FakeUv(TWO_WHEELS))
    assert locks(project) == repaired
