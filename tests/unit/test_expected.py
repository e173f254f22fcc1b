"""tooling.shipping.expected: what /opt/venv must hold, from the lock's wheels, and each way an image differs."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import json
import marshal
import os
import platform
import py_compile
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tooling.shipping import expected
from tooling.shipping.expected import ExpectedError, Found, Layout

MINOR = f"{sys.version_info[0]}.{sys.version_info[1]}"
TAG = f"cpython-{sys.version_info[0]}{sys.version_info[1]}"
SITE = f"lib/python{MINOR}/site-packages"
BASE_VERSION = f"{MINOR}.2"
MARKERS = {
    "implementation_name": "cpython",
    "implementation_version": BASE_VERSION,
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": BASE_VERSION,
    "platform_python_implementation": "CPython",
    "python_version": MINOR,
    "sys_platform": "linux",
}
# What uv 0.13 writes for `demo = demo.cli:main` (copied from a real install).
DEMO_SCRIPT = """\
#!/opt/venv/bin/python
# -*- coding: utf-8 -*-
import sys
from demo.cli import main
if __name__ == "__main__":
    if sys.argv[0].endswith("-script.pyw"):
        sys.argv[0] = sys.argv[0][:-11]
    elif sys.argv[0].endswith(".exe"):
        sys.argv[0] = sys.argv[0][:-4]
    sys.exit(main())
"""


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@dataclass
class Wheel:
    name: str
    version: str
    files: dict[str, bytes]
    tag: str = "py3-none-any"
    modes: dict[str, int] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}-{self.tag}.whl"

    @property
    def dist_info(self) -> str:
        return f"{self.name}-{self.version}.dist-info"

    def members(self) -> dict[str, bytes]:
        members = dict(self.files)
        members[f"{self.dist_info}/METADATA"] = (
            f"Metadata-Version: 2.1\nName: {self.name}\nVersion: {self.version}\n".encode()
        )
        members[f"{self.dist_info}/WHEEL"] = (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {self.tag}\n".encode()
        )
        rows = [f"{path},{record_hash(data)},{len(data)}" for path, data in members.items()]
        members[f"{self.dist_info}/RECORD"] = (
            "\n".join(rows) + f"\n{self.dist_info}/RECORD,,\n"
        ).encode()
        return members

    def data(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path, data in self.members().items():
                info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = self.modes.get(path, 0o644) << 16
                archive.writestr(info, data)
        return buffer.getvalue()


DEMO = Wheel(
    "demo",
    "1.0",
    {
        "demo/__init__.py": b"VALUE = 1\n",
        "demo/cli.py": b"def main() -> int:\n    return 0\n",
        "demo/broken.py": b"def (:\n",  # a test fixture no compiler accepts: no bytecode
        "demo-1.0.data/scripts/demo-tool": b"#!python\nprint('tool')\n",
        "demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndemo = demo.cli:main\n",
    },
)
PLATFORM = {
    machine: Wheel("fast", "2.0", {"fast.py": f"MACHINE = {machine!r}\n".encode()}, tag=tag)
    for machine, tag in (
        ("x86_64", f"cp{MINOR.replace('.', '')}-cp{MINOR.replace('.', '')}-manylinux_2_17_x86_64"),
        (
            "aarch64",
            f"cp{MINOR.replace('.', '')}-cp{MINOR.replace('.', '')}-manylinux_2_17_aarch64",
        ),
    )
}
WINDOWS_ONLY = Wheel("winonly", "1.0", {"winonly.py": b"X = 1\n"})


def pylock(wheels: list[tuple[Wheel, str | None]]) -> str:
    """A pylock naming each wheel by URL and sha256 (one [[packages]] per name)."""
    by_name: dict[str, list[Wheel]] = {}
    markers: dict[str, str | None] = {}
    for wheel, marker in wheels:
        by_name.setdefault(wheel.name, []).append(wheel)
        markers[wheel.name] = marker
    lines = ['lock-version = "1.0"', 'requires-python = ">=3.11"', 'created-by = "lockstep"']
    for name, versions in by_name.items():
        lines += ["", "[[packages]]", f'name = "{name}"', f'version = "{versions[0].version}"']
        if markers[name]:
            lines.append(f"marker = {json.dumps(markers[name])}")
        lines.append("wheels = [")
        for wheel in versions:
            digest = hashlib.sha256(wheel.data()).hexdigest()
            url = f"https://files.example/{wheel.file_name}"
            hashes = "{ sha256 = " + f'"{digest}"' + " }"
            lines.append(
                "    { " + f'name = "{wheel.file_name}", url = "{url}", hashes = {hashes}' + " },"
            )
        lines.append("]")
    return "\n".join(lines) + "\n"


class Index:
    """Serves the wheels by URL and counts the fetches."""

    def __init__(self, wheels: list[Wheel]) -> None:
        self.served = {f"https://files.example/{wheel.file_name}": wheel.data() for wheel in wheels}
        self.fetched: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.served[url]


def install(venv: Path, wheel: Wheel) -> None:
    """A wheel installed the way uv installs it, with checked-hash bytecode (a stand-in for uv)."""
    site = venv / SITE
    for path, data in wheel.members().items():
        if path.startswith("demo-1.0.data/scripts/"):
            target = venv / "bin" / path.rsplit("/", 1)[1]
            data = data.replace(b"#!python", b"#!/opt/venv/bin/python", 1)
            mode = 0o755
        else:
            target = site / path
            mode = wheel.modes.get(path, 0o644)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
        if path.endswith(".py"):
            compile_pyc(target, f"/opt/venv/{SITE}/{path}")
    (site / wheel.dist_info / "INSTALLER").write_bytes(b"uv")
    (site / wheel.dist_info / "REQUESTED").write_bytes(b"")
    if "demo-1.0.dist-info/entry_points.txt" in wheel.files:
        script = venv / "bin" / "demo"
        script.write_text(DEMO_SCRIPT)
        script.chmod(0o755)


def compile_pyc(source: Path, compiled_as: str) -> None:
    pyc = Path(importlib.util.cache_from_source(str(source)))
    # as compileall: a source that does not compile has no bytecode
    with contextlib.suppress(py_compile.PyCompileError):
        py_compile.compile(
            str(source), str(pyc), compiled_as, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )  # fmt: skip


def make_venv(venv: Path) -> None:
    """What `python3 -m venv --without-pip /opt/venv` makes from a Debian python3."""
    (venv / "bin").mkdir(parents=True)
    (venv / f"include/python{MINOR}").mkdir(parents=True)
    (venv / SITE).mkdir(parents=True)
    (venv / "lib64").symlink_to("lib")
    (venv / "bin/python3").symlink_to("/usr/bin/python3")
    (venv / "bin/python").symlink_to("python3")
    (venv / f"bin/python{MINOR}").symlink_to("python3")
    for script in ("activate", "activate.csh", "activate.fish", "Activate.ps1"):
        (venv / "bin" / script).write_text("# activate\n")
    (venv / "pyvenv.cfg").write_text(
        "home = /usr/bin\ninclude-system-site-packages = false\n"
        f"version = {BASE_VERSION}\nexecutable = /usr/bin/python{MINOR}\n"
        "command = /usr/bin/python3 -m venv --without-pip /opt/venv\n"
    )


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, expected.Expected]:
    """(an image's /opt/venv made from a lock of demo, what the lock says it must hold)."""
    venv = tmp_path / "venv"
    make_venv(venv)
    install(venv, DEMO)
    install(venv, PLATFORM["x86_64"])
    lock = tmp_path / "pylock.base.toml"
    lock.write_text(
        pylock(
            [
                (DEMO, None),
                (PLATFORM["x86_64"], None),
                (PLATFORM["aarch64"], None),
                (WINDOWS_ONLY, "sys_platform == 'win32'"),
            ]
        )
    )
    index = Index([DEMO, *PLATFORM.values(), WINDOWS_ONLY])
    want = expected.expected_site_packages(lock, MINOR, MARKERS, (2, 36), tmp_path / "cache", index)
    want |= expected.venv_skeleton(MINOR, BASE_VERSION)
    return venv, want


def found(venv: Path) -> dict[str, Found]:
    return expected.found_tree(venv, root_uid=os.getuid())  # as if extracted as root


def test_an_environment_installed_from_the_lock_has_no_difference(
    built: tuple[Path, expected.Expected],
) -> None:
    venv, want = built
    assert expected.differences(want, found(venv)) == []
    assert (venv / "bin/demo-tool").read_bytes().startswith(b"#!/opt/venv/bin/python\n")
    assert not (venv / SITE / "winonly.py").exists()  # its marker is false: not expected either


def tampered(built: tuple[Path, expected.Expected], change: Callable[[Path], None]) -> list[str]:
    venv, want = built
    change(venv)
    return expected.differences(want, found(venv))


def rewrite_record_row(venv: Path, path: str, data: bytes) -> None:
    record = venv / SITE / DEMO.dist_info / "RECORD"
    rows = record.read_text().splitlines()
    rows = [
        f"{path},{record_hash(data)},{len(data)}" if row.startswith(path + ",") else row
        for row in rows
    ]
    record.write_text("\n".join(rows) + "\n")


def test_an_edited_file_is_named_though_its_record_row_was_rewritten(
    built: tuple[Path, expected.Expected],
) -> None:
    payload = b"import os\nVALUE = 1\n"

    def change(venv: Path) -> None:
        (venv / SITE / "demo/__init__.py").write_bytes(payload)
        rewrite_record_row(venv, "demo/__init__.py", payload)

    [line] = tampered(built, change)
    assert line.startswith(f"/opt/venv/{SITE}/demo/__init__.py: changed (sha256 ")


def test_record_is_checked_by_rule_so_a_blanked_hash_changes_nothing(
    built: tuple[Path, expected.Expected],
) -> None:
    def change(venv: Path) -> None:
        record = venv / SITE / DEMO.dist_info / "RECORD"
        rows = [row.split(",")[0] + ",," for row in record.read_text().splitlines()]
        record.write_text("\n".join(rows) + "\n")

    assert tampered(built, change) == []


def test_a_blanked_record_hash_does_not_hide_an_edited_file(
    built: tuple[Path, expected.Expected],
) -> None:
    def change(venv: Path) -> None:
        (venv / SITE / "demo/cli.py").write_text("import os\n")
        record = venv / SITE / DEMO.dist_info / "RECORD"
        record.write_text(record.read_text().replace("demo/cli.py,sha256=", "demo/cli.py,,#"))

    [line] = tampered(built, change)
    assert line.startswith(f"/opt/venv/{SITE}/demo/cli.py: changed")


def test_an_extra_pth_file_is_named_as_one(built: tuple[Path, expected.Expected]) -> None:
    def change(venv: Path) -> None:
        (venv / SITE / "evil.pth").write_text("import os; os.system('id')\n")
        rewrite_record_row(venv, "evil.pth", b"")

    assert tampered(built, change) == [
        f"/opt/venv/{SITE}/evil.pth: a .pth file no locked wheel holds (Python runs it at every start)"
    ]


def test_malicious_bytecode_with_the_original_header_is_named(
    built: tuple[Path, expected.Expected],
) -> None:
    assert tampered(built, malicious_init) == [
        f"/opt/venv/{SITE}/demo/__pycache__/__init__.{TAG}.pyc: bytecode that is not its "
        "source's (Python would run it, not the source)"
    ]


def test_bytecode_where_no_source_compiles_or_exists_is_named(
    built: tuple[Path, expected.Expected],
) -> None:
    def change(venv: Path) -> None:
        cache = venv / SITE / "demo/__pycache__"
        (cache / f"broken.{TAG}.pyc").write_bytes((cache / f"cli.{TAG}.pyc").read_bytes())
        (cache / f"gone.{TAG}.pyc").write_bytes((cache / f"cli.{TAG}.pyc").read_bytes())

    assert tampered(built, change) == [
        f"/opt/venv/{SITE}/demo/__pycache__/broken.{TAG}.pyc: bytecode of another source than the locked one",
        f"/opt/venv/{SITE}/demo/__pycache__/gone.{TAG}.pyc: bytecode of no locked source (Python would run it)",
    ]


def test_bytecode_whose_line_table_alone_differs_is_the_sources(
    built: tuple[Path, expected.Expected],
) -> None:
    """Another CPython patch release may number lines differently: not a difference."""

    def write(venv: Path, source: str) -> None:
        pyc = venv / SITE / f"demo/__pycache__/__init__.{TAG}.pyc"
        code = compile(source, f"/opt/venv/{SITE}/demo/__init__.py", "exec", dont_inherit=True)
        pyc.write_bytes(pyc.read_bytes()[:16] + marshal.dumps(code))

    assert tampered(built, lambda venv: write(venv, "\n\nVALUE = 1\n")) == []
    assert len(tampered(built, lambda venv: write(venv, "VALUE = 2\n"))) == 1


def test_an_environment_without_bytecode_has_no_difference(
    built: tuple[Path, expected.Expected],
) -> None:
    """Python compiles the verified sources itself (to memory: it cannot write there)."""

    def change(venv: Path) -> None:
        for cache in sorted((venv / SITE).rglob("__pycache__")):
            for pyc in cache.iterdir():
                pyc.unlink()
            cache.rmdir()

    assert tampered(built, change) == []


def malicious_init(venv: Path) -> None:
    pyc = venv / SITE / f"demo/__pycache__/__init__.{TAG}.pyc"
    code = compile("import os\nVALUE = 1\n", f"/opt/venv/{SITE}/demo/__init__.py", "exec")
    pyc.write_bytes(pyc.read_bytes()[:16] + marshal.dumps(code))


def test_bytecode_that_crashes_the_unmarshaller_is_named_not_a_traceback(
    built: tuple[Path, expected.Expected], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashing = tmp_path / "crash.py"
    crashing.write_text("import sys\nsys.exit(70)\n")  # as a crash of the unmarshaller would
    monkeypatch.setattr(expected.bytecode, "PYC_SHAPE", crashing)
    assert tampered(built, malicious_init) == [
        f"/opt/venv/{SITE}/demo/__pycache__/__init__.{TAG}.pyc: bytecode that makes Python's "
        "unmarshaller fail (Python would refuse or run it)"
    ]


def test_unreadable_bytecode_with_the_original_header_is_named(
    built: tuple[Path, expected.Expected],
) -> None:
    def change(venv: Path) -> None:
        pyc = venv / SITE / f"demo/__pycache__/__init__.{TAG}.pyc"
        pyc.write_bytes(pyc.read_bytes()[:16] + b"\xff\x00garbage")

    [line] = tampered(built, change)
    assert line.endswith("bytecode that cannot be read (Python would refuse or run it)")


def test_bytecode_kept_only_when_its_hash_is_not_this_pythons_compile(
    built: tuple[Path, expected.Expected],
) -> None:
    """A layer reader keeps the bytes of the .pyc files whose sha256 pyc_digests lacks."""
    venv, want = built
    malicious_init(venv)
    digests = expected.pyc_digests(want)
    tree = {
        path: node if node.sha256 not in digests else dataclasses.replace(node, data=None)
        for path, node in found(venv).items()
    }
    assert sum(node.data is None and path.endswith(".pyc") for path, node in tree.items()) == 2
    assert len(expected.differences(want, tree)) == 1
    init = f"{SITE}/demo/__pycache__/__init__.{TAG}.pyc"
    tree[init] = dataclasses.replace(tree[init], data=None)
    assert expected.differences(want, tree) == [
        f"/opt/venv/{init}: bytecode not read from the layer, so it cannot be proven"
    ]


def test_timestamp_bytecode_is_named(built: tuple[Path, expected.Expected]) -> None:
    def change(venv: Path) -> None:
        pyc = venv / SITE / f"demo/__pycache__/__init__.{TAG}.pyc"
        data = pyc.read_bytes()
        pyc.write_bytes(data[:4] + bytes(12) + data[16:])

    [line] = tampered(built, change)
    assert line.endswith("bytecode without a checked source hash (Python would run it unchecked)")


def test_setuid_file_and_world_writable_folder_are_named(
    built: tuple[Path, expected.Expected],
) -> None:
    def change(venv: Path) -> None:
        (venv / "bin/demo-tool").chmod(0o4755)
        (venv / SITE / "demo").chmod(0o777)

    assert tampered(built, change) == [
        "/opt/venv/bin/demo-tool: has the setuid bit (mode 4755)",
        f"/opt/venv/{SITE}/demo: is world-writable (mode 0777)",
    ]


def test_a_script_made_executable_is_named(built: tuple[Path, expected.Expected]) -> None:
    assert tampered(built, lambda venv: (venv / SITE / "demo/cli.py").chmod(0o755)) == [
        f"/opt/venv/{SITE}/demo/cli.py: mode 0755, expected 0644"
    ]


def test_python_linked_elsewhere_is_named(built: tuple[Path, expected.Expected]) -> None:
    def change(venv: Path) -> None:
        (venv / "bin/python3").unlink()
        (venv / "bin/python3").symlink_to("/tmp/payload.sh")

    assert tampered(built, change) == [
        "/opt/venv/bin/python3: links to /tmp/payload.sh, expected /usr/bin/python3"
    ]


def test_system_site_packages_switched_on_is_named(built: tuple[Path, expected.Expected]) -> None:
    def change(venv: Path) -> None:
        config = venv / "pyvenv.cfg"
        config.write_text(config.read_text().replace("= false", "= true"))

    assert tampered(built, change) == [
        "/opt/venv/pyvenv.cfg: line 2 is 'include-system-site-packages = true', "
        "expected 'include-system-site-packages = false'"
    ]


def test_a_file_owned_by_another_user_is_named(built: tuple[Path, expected.Expected]) -> None:
    venv, want = built
    tree = found(venv)
    cli = f"{SITE}/demo/cli.py"
    tree[cli] = dataclasses.replace(tree[cli], owner=1000)
    assert expected.differences(want, tree) == [
        f"/opt/venv/{cli}: is owned by uid 1000, not root (it can rewrite it)"
    ]


def test_a_module_replaced_by_a_folder_and_a_missing_file_are_named(
    built: tuple[Path, expected.Expected],
) -> None:
    def change(venv: Path) -> None:
        (venv / SITE / "demo/cli.py").unlink()
        (venv / SITE / "demo/cli.py").mkdir()
        (venv / "bin/demo").unlink()

    assert tampered(built, change) == [
        "/opt/venv/bin/demo: missing (file of the lock)",
        f"/opt/venv/{SITE}/demo/cli.py: is a folder, expected a file",
    ]


def test_the_wheel_for_the_images_machine_is_expected(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.base.toml"
    lock.write_text(pylock([(wheel, None) for wheel in PLATFORM.values()]))
    index = Index(list(PLATFORM.values()))
    arm = {**MARKERS, "platform_machine": "aarch64"}
    want = expected.expected_site_packages(lock, MINOR, arm, (2, 36), tmp_path / "cache", index)
    assert want[f"{SITE}/fast.py"].sha256 == hashlib.sha256(b"MACHINE = 'aarch64'\n").hexdigest()
    assert index.fetched == [f"https://files.example/{PLATFORM['aarch64'].file_name}"]


def test_a_wheel_is_fetched_once_and_a_changed_cache_entry_is_fetched_again(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.base.toml"
    lock.write_text(pylock([(DEMO, None)]))
    index = Index([DEMO])
    for _ in range(2):
        expected.expected_site_packages(lock, MINOR, MARKERS, (2, 36), tmp_path / "cache", index)
    assert len(index.fetched) == 1
    [cached] = (tmp_path / "cache").rglob("*.whl")
    cached.write_bytes(b"not the wheel")
    expected.expected_site_packages(lock, MINOR, MARKERS, (2, 36), tmp_path / "cache", index)
    assert len(index.fetched) == 2
    assert cached.read_bytes() == DEMO.data()


def test_a_wheel_whose_hash_is_not_the_locks_is_one_line(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.base.toml"
    lock.write_text(pylock([(DEMO, None)]))
    index = Index([DEMO])
    index.served[f"https://files.example/{DEMO.file_name}"] = b"evil"
    with pytest.raises(ExpectedError, match=r"^https://files.example/demo-1.0-py3-none-any.whl served a "
                       r"demo-1.0-py3-none-any.whl whose sha256 is not the lock's") as error:  # fmt: skip
        expected.expected_site_packages(lock, MINOR, MARKERS, (2, 36), tmp_path / "cache", index)
    assert "\n" not in str(error.value)
    assert not list((tmp_path / "cache").rglob("*.whl"))


def test_a_wheel_cache_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.base.toml"
    lock.write_text(pylock([(DEMO, None)]))
    (tmp_path / "cache").write_text("a file where the cache goes")
    with pytest.raises(ExpectedError, match=r"^cannot cache demo-1.0-py3-none-any.whl in .*cache: "
                       r"Not a directory \(XDG_CACHE_HOME chooses where the wheels go\)$"):  # fmt: skip
        expected.expected_site_packages(
            lock, MINOR, MARKERS, (2, 36), tmp_path / "cache", Index([DEMO])
        )


def test_a_wheel_that_cannot_be_fetched_is_one_line() -> None:
    with pytest.raises(ExpectedError, match=r"^cannot fetch http://127.0.0.1:9/demo.whl: "):
        expected.fetch_url("http://127.0.0.1:9/demo.whl")
    with pytest.raises(ExpectedError, match=r"^cannot fetch nowhere/demo.whl.*: unknown url type"):
        expected.fetch_url("nowhere/demo.whl")


def test_a_locked_file_that_is_no_wheel_is_one_line(tmp_path: Path) -> None:
    broken = Wheel("broken", "1.0", {})
    lock = tmp_path / "pylock.base.toml"
    lock.write_text(pylock([(broken, None)]))
    index = Index([broken])
    index.served = {url: b"PK not a zip" for url in index.served}
    digest = hashlib.sha256(b"PK not a zip").hexdigest()
    lock.write_text(lock.read_text().replace(hashlib.sha256(broken.data()).hexdigest(), digest))
    with pytest.raises(ExpectedError, match=r"^broken-1\.0-py3-none-any\.whl is not a wheel"):
        expected.expected_site_packages(lock, MINOR, MARKERS, (2, 36), tmp_path / "cache", index)


def test_a_lock_without_a_wheel_for_the_image_is_one_line(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.base.toml"
    lock.write_text(pylock([(PLATFORM["x86_64"], None)]))
    arm = {**MARKERS, "platform_machine": "aarch64"}
    with pytest.raises(ExpectedError, match=r"has no wheel of fast 2\.0 for CPython"):
        expected.expected_site_packages(lock, MINOR, arm, (2, 36), tmp_path / "cache", Index([]))


def test_verify_needs_the_images_python_minor_to_compile(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.base.toml"
    lock.write_text(pylock([(DEMO, None)]))
    with pytest.raises(ExpectedError, match=r"run it with Python 3\.99 \(\.python-version\)"):
        expected.expected_site_packages(
            lock, "3.99", MARKERS, (2, 36), tmp_path / "cache", Index([])
        )


@pytest.mark.parametrize(
    ("script", "installed"),
    [  # as uv 0.13 installed each (observed)
        (b"#!pythonw -E\nprint(1)\n", b"#!/opt/venv/bin/python\nprint(1)\n"),
        (b"#!python -u\r\nprint(2)\r\n", b"#!/opt/venv/bin/python\nprint(2)\r\n"),
        (b"#!python3\nprint(3)\n", b"#!/opt/venv/bin/python\nprint(3)\n"),
        (b"#!python", b"#!/opt/venv/bin/python\n"),
        (b"\x00\x01binary", b"\x00\x01binary"),
        (b"#!/bin/sh\necho\n", b"#!/bin/sh\necho\n"),
    ],
)
def test_data_scripts_get_the_venvs_python_as_uv_writes_it(script: bytes, installed: bytes) -> None:
    wheel = Wheel("tool", "1.0", {"tool-1.0.data/scripts/tool": script})
    want = expected.installed_files(wheel.data(), wheel.file_name, Layout(MINOR))
    assert want["bin/tool"].sha256 == hashlib.sha256(installed).hexdigest()
    assert want["bin/tool"].mode == 0o755


def test_console_scripts_of_attributes_and_extras_as_uv_writes_them() -> None:
    entry_points = b"[console_scripts]\nx = pkg.mod:obj.attr\ny = pkg:main [extra]\n"
    wheel = Wheel("tool", "1.0", {"tool-1.0.dist-info/entry_points.txt": entry_points})
    want = expected.installed_files(wheel.data(), wheel.file_name, Layout(MINOR))
    script_x, script_y = want["bin/x"].text or "", want["bin/y"].text or ""
    assert "from pkg.mod import obj\n" in script_x
    assert script_x.endswith("    sys.exit(obj.attr())\n")
    assert "from pkg import main\n" in script_y
    assert script_y.endswith("    sys.exit(main())\n")


def test_the_apps_wheel_installed_by_pip_has_its_own_expectations(tmp_path: Path) -> None:
    """pip --root /opt/app: INSTALLER with a newline, direct_url.json, bytecode named /opt/app/..."""
    pip = expected.Installer(
        "pip", newline=True, compiled_prefix="/opt/app",
        direct_url=f"file:///tmp/dist/{DEMO.file_name}",
    )  # fmt: skip
    want = expected.installed_files(DEMO.data(), DEMO.file_name, Layout(MINOR), pip)
    info = f"{SITE}/{DEMO.dist_info}"
    assert want[f"{info}/INSTALLER"].text == "pip\n"
    url = f"file:///tmp/dist/{DEMO.file_name}"
    assert want[f"{info}/direct_url.json"].text == '{"archive_info": {}, "url": "' + url + '"}'
    assert want[f"{SITE}/demo/__pycache__/cli.{TAG}.pyc"].compiled_as == (
        f"/opt/app/opt/venv/{SITE}/demo/cli.py"
    )
    assert want["bin/demo"].text is not None
    assert want["bin/demo"].text.startswith(
        "#!/opt/venv/bin/python\n# -*- coding: utf-8 -*-\nimport re\n"
    )


@dataclass
class Node:
    """A layer reader's node (tooling/shipping/layers.py's Node has these fields)."""

    kind: str
    mode: int
    uid: int = 0
    sha256: str | None = None
    link: str | None = None
    text: str | None = None


def test_a_layer_readers_nodes_are_read_as_the_tree_they_describe(
    built: tuple[Path, expected.Expected],
) -> None:
    venv, want = built
    malicious_init(venv)
    digests = expected.pyc_digests(want)
    nodes: dict[str, Node] = {}
    kept: dict[str, bytes] = {}
    for path, node in found(venv).items():
        text = node.data.decode() if path == "pyvenv.cfg" and node.data else None
        nodes[f"opt/venv/{path}"] = Node(node.kind, node.mode, 0, node.sha256, node.target, text)
        if path.endswith(".pyc") and node.sha256 not in digests and node.data is not None:
            kept[f"opt/venv/{path}"] = node.data
    nodes["etc/passwd"] = Node("file", 0o644, sha256="0" * 64)
    nodes["opt/venv/bin/python3"].link = "/usr/local/bin/python3"
    assert expected.differences(want, expected.found_in_layers(nodes, "/opt/venv", kept)) == [
        "/opt/venv/bin/python3: links to /usr/local/bin/python3, expected /usr/bin/python3",
        f"/opt/venv/{SITE}/demo/__pycache__/__init__.{TAG}.pyc: bytecode that is not its "
        "source's (Python would run it, not the source)",
    ]


def test_glibc_comes_from_the_base_images_libc6_package() -> None:
    status = (
        "Package: libc-bin\nVersion: 2.36-9+deb12u10\n\n"
        "Package: libc6\nStatus: install ok installed\nVersion: 2.41-12\n\n"
        "Package: zlib1g\nVersion: 1:1.2.13\n"
    )
    assert expected.glibc_of(status) == (2, 41)
    assert expected.glibc_of("Package: musl\nVersion: 1.2.4\n") is None


def test_bytecode_is_judged_by_the_python_release_that_wrote_it(
    built: tuple[Path, expected.Expected], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Patch releases compile some functions to other instructions (3.11.2 and 3.11.7 differ
    on one of numpy's): a .pyc is judged by the image's own release wherever one is found."""
    venv, want = built
    malicious_init(venv)
    this = platform.python_version()
    assert expected.bytecode.python_of_release(this) == sys.executable
    # No interpreter of the image's release here: the line says which one to install.
    [line] = expected.differences(want, found(venv), expected.judge_for("3.11.99"))
    assert line.endswith(
        f"bytecode that is not what Python {this} compiles from its source, and the image's "
        "Python is 3.11.99: install it (`uv python install 3.11.99`) so verify compiles the "
        "source as the image did"
    )
    # One found: the bytecode is judged in that interpreter.
    used = tmp_path / "used"
    release_python = tmp_path / "python3.11"
    release_python.write_text(f'#!/bin/sh\ntouch {used}\nexec {sys.executable} "$@"\n')
    release_python.chmod(0o755)
    monkeypatch.setattr(expected.bytecode, "python_of_release", lambda release: str(release_python))
    [line] = expected.differences(want, found(venv), expected.judge_for("3.11.99"))
    assert line.endswith("bytecode that is not its source's (Python would run it, not the source)")
    assert used.exists()
