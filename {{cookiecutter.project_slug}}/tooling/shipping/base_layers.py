"""Everything outside /opt/venv: the pinned base image's layers, and what the Dockerfile adds.

`invoke verify` proves /opt/venv file by file elsewhere (tooling/shipping/image_venv.py).
Here: the image's lowest layers are exactly the layers of the base image that
this checkout's base-images.lock pins (its config fetched by that digest by
tooling/base_image/, the layers compared by diff_id), and the layers above them change nothing outside
/opt/venv but what the Dockerfile's runtime stage makes: the app user and
group added to the account files by `useradd`, and the empty mount points and
folders a `RUN --mount` leaves. Anything else an upper layer adds, changes or
removes (an interpreter, a `.pth` or `sitecustomize` anywhere, a deleted base
file) is named, one line each.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tooling import ToolingError
from tooling.base_image import PinnedBase
from tooling.images.provenance import BASE_LABEL
from tooling.shipping.layers import Filesystem, LayerError, Node
from tooling.shipping.pulled_image import PulledImage

VENV = "opt/venv"
# Layers the Dockerfile puts on the base: the bare stage's RUN test -n (buildah and podman
# leave /etc/hosts there); for each tier whose lock the image installs (the tier and the
# tiers it is layered on, tooling/images/layering.py) a COPY of the locks and a RUN
# installing into /opt/venv; the runtime stage's RUN useradd and COPY --from=app.
BARE_LAYERS = 1
TIER_LAYERS = 2
RUNTIME_LAYERS = 2
UPPER_LAYERS = BARE_LAYERS + TIER_LAYERS + RUNTIME_LAYERS  # a tier built on the base alone
# useradd's files: the base's lines, then exactly the app's (days since 1970 in shadow's).
ACCOUNT_LINES = {
    "etc/passwd": re.compile(r"app:x:1000:1000::/nonexistent:/usr/sbin/nologin"),
    "etc/group": re.compile(r"app:x:1000:"),
    "etc/shadow": re.compile(r"app:!\*?:\d*:\d*:\d*:\d*:\d*:\d*:"),
    "etc/gshadow": re.compile(r"app:!\*?::"),
    "etc/subuid": re.compile(r"app:\d+:\d+"),
    "etc/subgid": re.compile(r"app:\d+:\d+"),
}
# What useradd leaves beside them: the files as they were (passwd- ...), its lock, its logs.
BACKUPS = {f"{path}-": path for path in ACCOUNT_LINES}
LOGS = {"var/log/lastlog", "var/log/faillog", "var/log/tallylog", "etc/.pwd.lock"}
# Mount points the engines make for a RUN (--mount targets, the files every container
# gets): left behind empty.
EMPTY_FILES = {
    "etc/hosts", "etc/hostname", "etc/resolv.conf", "run/.containerenv",
    "opt/pipconf_to_uv.py", "opt/compile_new.py",
    "run/secrets/ca", "run/secrets/pipconf", "run/secrets/netrc",
}  # fmt: skip
# Folders an upper layer may make (when the base has none): the mount points and their parents.
NEW_FOLDERS = {"opt", "opt/uv", "root", "root/.cache", "run", "run/secrets", "var", "var/log"}


class BaseLayerError(ToolingError):
    pass


@dataclass(frozen=True)
class Base:
    pin: str  # REFERENCE@sha256:DIGEST, as base-images.lock pins it
    diff_ids: list[str]


def base_of(pinned: PinnedBase) -> Base:
    """The pinned base's diff_ids, read from its config (fetched by tooling/base_image/)."""
    try:
        diff_ids = pinned.config["rootfs"]["diff_ids"]
        if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
            raise TypeError
    except (KeyError, TypeError):
        raise BaseLayerError(f"the base image {pinned.pin} has no config verify can read") from None
    return Base(pinned.pin, diff_ids)


def diff_ids(image: PulledImage) -> list[str]:
    return [str(each) for each in (image.config.get("rootfs") or {}).get("diff_ids") or []]


def built_on(image: PulledImage) -> str:
    return str(((image.config.get("config") or {}).get("Labels") or {}).get(BASE_LABEL) or "")


def on_base(image: PulledImage, base: Base) -> bool:
    return diff_ids(image)[: len(base.diff_ids)] == base.diff_ids


def upper_layers(installed: int) -> int:
    """The layers the Dockerfile puts on the base for an image that installed `installed` locks."""
    return BARE_LAYERS + TIER_LAYERS * installed + RUNTIME_LAYERS


def layer_problems(image: PulledImage, base: Base, installed: int = 1) -> list[str]:
    """The image's layers and label against the pinned base's (diff_ids: uncompressed layers)."""
    count, labelled = len(base.diff_ids), built_on(image)
    if not on_base(image, base):
        says = f" (it says it is built on {labelled})" if labelled != base.pin else ""
        return [
            f"its base layers are not those of {base.pin} ({count}), the base "
            f"base-images.lock pins{says}: it is built on another base"
        ]
    problems = []
    if labelled != base.pin:
        problems.append(
            f"it says it is built on {labelled or '(no label)'}, but base-images.lock "
            f"pins {base.pin}"
        )
    upper, made = len(diff_ids(image)) - count, upper_layers(installed)
    if upper > made:
        problems.append(
            f"{upper} layers above the base, the Dockerfile makes {made}: "
            "the image has layers no build of this Dockerfile makes"
        )
    if len(image.layers) != len(diff_ids(image)):
        problems.append(
            f"its manifest lists {len(image.layers)} layers, its config {len(diff_ids(image))}"
        )
    return problems


def stacked_twice(layers: list[Path], count: int) -> tuple[Node, Node]:
    """(the tree of the first `count` layers, the tree of them all), read in one pass."""
    tree = Filesystem(keep_text=[*ACCOUNT_LINES, *BACKUPS])
    for path in layers[:count]:
        tree.apply(path)
    base = copy.deepcopy(tree.root)
    for path in layers[count:]:
        tree.apply(path)
    return base, tree.root


def same(old: Node, new: Node) -> bool:
    if (old.kind, old.mode, old.uid, old.gid) != (new.kind, new.mode, new.uid, new.gid):
        return False
    return old.kind == "dir" or (old.sha256, old.link, old.size) == (new.sha256, new.link, new.size)


def account_problem(path: str, old: Node | None, new: Node) -> str | None:
    """What is wrong with useradd's `path` (passwd, ...): the base's lines and the app's."""
    if new.kind != "file" or new.text is None or new.mode & 0o7133:
        return "not the file useradd writes"
    if old is not None and (old.kind != "file" or old.text is None):
        return "not the file useradd writes"
    before = old.text.splitlines() if old is not None and old.text is not None else []
    lines = new.text.splitlines()
    if lines[: len(before)] != before:
        return "changes lines of the base image's"
    added = lines[len(before) :]
    if len(added) != 1 or not ACCOUNT_LINES[path].fullmatch(added[0]):
        return f"adds {added!r}, expected only the app user's line"
    return None


def backup_problem(path: str, base_files: Mapping[str, Node | None], new: Node) -> str | None:
    """useradd's copy (passwd-, ...) of the base's file as it was."""
    was = base_files.get(BACKUPS[path])
    empty = was is None and new.size == 0
    if new.kind != "file" or new.mode & 0o7133:
        return "not the copy useradd keeps"
    if empty or (was is not None and was.kind == "file" and was.sha256 == new.sha256):
        return None
    return "not the base image's file as it was"


def accounted(
    path: str, old: Node | None, new: Node, base_files: Mapping[str, Node | None]
) -> str | None:
    """None when the Dockerfile's layers make `new` at `path` (`old`: the base's); else why not."""
    if path in ACCOUNT_LINES:
        return account_problem(path, old, new)
    if path in BACKUPS:
        return backup_problem(path, base_files, new)
    if path in LOGS and new.kind == "file" and not new.mode & 0o7111:
        return None
    if old is None and path in EMPTY_FILES and new.kind == "file" and new.size == 0:
        return None
    if old is None and path in NEW_FOLDERS and new.kind == "dir" and not new.mode & 0o7022:
        return None
    return what_changed(path, old, new)


def what_changed(path: str, old: Node | None, new: Node) -> str:
    name = path.rpartition("/")[2]
    runs = ""
    if name.endswith(".pth") or name.startswith(("sitecustomize.", "usercustomize.")):
        runs = " (Python runs it at every start)"
    if old is None:
        return f"a {new.kind} no layer of the Dockerfile makes{runs}"
    if old.kind != new.kind:
        return f"a {old.kind} of the base image made a {new.kind}"
    if (old.mode, old.uid, old.gid) != (new.mode, new.uid, new.gid):
        return (
            f"mode {new.mode:o}, owner {new.uid}:{new.gid}; the base image's is "
            f"{old.mode:o}, {old.uid}:{old.gid}"
        )
    return f"changed from the base image's{runs}"


def walked(old: Node | None, new: Node, path: str) -> Iterator[tuple[str, Node | None, Node]]:
    """(path, the base's node or None, the node now) for each entry of the folder `path`."""
    for name, child in sorted(new.children.items()):
        below = old.children.get(name) if old is not None and old.kind == "dir" else None
        yield f"{path}/{name}".lstrip("/"), below, child


def removed(old: Node | None, new: Node, path: str) -> list[str]:
    if old is None or old.kind != "dir" or new.kind != "dir":
        return []
    return [
        f"{path}/{name}".lstrip("/") for name in sorted(old.children) if name not in new.children
    ]


def tree_problems(base: Node, image: Node) -> list[str]:
    """One line per path outside /opt/venv the upper layers made, changed or removed, unaccounted.

    A folder no layer of the Dockerfile makes is named once, not file by file.
    """
    account_paths = [*ACCOUNT_LINES, *BACKUPS]
    base_files = {path: find(base, path) for path in account_paths}
    problems = [f"/{path}: removed from the base image" for path in removed(base, image, "")]
    pending = list(walked(base, image, ""))[::-1]
    while pending:
        path, old, new = pending.pop()
        if path == VENV:
            continue
        if old is None or not same(old, new):
            why = accounted(path, old, new, base_files)
            if why is not None:
                problems.append(f"/{path}: {why}")
                continue
        if new.kind == "dir":
            problems += [
                f"/{gone}: removed from the base image" for gone in removed(old, new, path)
            ]
            pending += list(walked(old, new, path))[::-1]
    return problems


def find(root: Node, path: str) -> Node | None:
    node: Node | None = root
    for part in path.split("/"):
        node = node.children.get(part) if node is not None else None
    return node


def upper_layer_problems(image: PulledImage, count: int) -> list[str]:
    """What the layers above the base's `count` change outside /opt/venv that no Dockerfile line does."""
    try:
        base, tree = stacked_twice(image.layers, count)
    except LayerError as error:
        return [str(error)]
    return tree_problems(base, tree)


def base_problems(
    image: PulledImage, pinned: PinnedBase, installed: int = 1
) -> tuple[list[str], list[str]]:
    """(checks passed, problems) of everything outside /opt/venv: the base's layers, the rest.

    `installed`: how many tiers' locks the image installed, one layer pair each.
    """
    try:
        base = base_of(pinned)
    except BaseLayerError as error:
        return [], [str(error)]
    problems = layer_problems(image, base, installed)
    if on_base(image, base) and len(image.layers) == len(diff_ids(image)):
        problems += upper_layer_problems(image, len(base.diff_ids))
    if problems:
        return [], problems
    return [
        f"its base layers ({len(base.diff_ids)}) are {base.pin}'s, as base-images.lock pins; the "
        "layers above change nothing outside /opt/venv but the app user useradd adds"
    ], []
