"""The tier-graph rules the bake and the project share (tooling/tier_rules.py)."""

from __future__ import annotations

from tooling import tier_rules

DEFAULT = {"base": [], "sniper": ["base"], "hunter": ["base"], "dev": ["hunter"]}


def test_parents_come_first_and_a_cycle_is_named_in_include_order() -> None:
    order, cycle = tier_rules.parents_first(DEFAULT)
    assert not cycle
    assert order.index("base") < order.index("hunter") < order.index("dev")
    order, cycle = tier_rules.parents_first({"base": [], "a": ["b"], "b": ["a"]})
    assert order == []
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b"}


def test_unknown_parents_roots_leaves_and_includers() -> None:
    graph = {**DEFAULT, "extra": ["missing"]}
    assert tier_rules.unknown_parents(graph) == [("extra", "missing")]
    assert tier_rules.roots({**DEFAULT, "other": []}) == ["base", "other"]
    assert tier_rules.leaves(DEFAULT) == ["sniper", "dev"]
    assert tier_rules.includers(DEFAULT, "base") == ["sniper", "hunter"]
    assert tier_rules.includers(DEFAULT, "dev") == []


def test_the_module_needs_only_the_standard_library() -> None:
    """The bake imports it before any project (or its dependencies) exists."""
    source = (tier_rules.__file__ or "").replace(".pyc", ".py")
    with open(source, encoding="utf-8") as stream:
        imports = [line for line in stream if line.startswith(("import ", "from "))]
    assert all(
        line.split()[1].split(".")[0] in ("__future__", "graphlib", "collections")
        for line in imports
    ), imports
