"""The rules every tier graph follows, for the bake's answers and the project's files alike.

A graph is {tier: the tiers it includes}. hooks/pre_gen_project.py checks the
`tiers` and `dev_tier` answers with these rules before the project exists;
tooling.tiers checks requirements/*.in and tooling.settings the dev-tier
setting with the same ones. Each function returns what breaks its rule and
leaves the wording to the caller, which knows where the tiers came from.
Standard library only: the bake imports this module from the template.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping, Sequence

Graph = Mapping[str, Sequence[str]]


def unknown_parents(graph: Graph) -> list[tuple[str, str]]:
    """(tier, parent) for every included tier that is not in the graph."""
    return [
        (name, parent)
        for name, parents in graph.items()
        for parent in parents
        if parent not in graph
    ]


def parents_first(graph: Graph) -> tuple[list[str], list[str]]:
    """(every tier with the tiers it includes before it, []), or ([], a cycle: a -> ... -> a)."""
    try:
        return list(graphlib.TopologicalSorter(graph).static_order()), []
    except graphlib.CycleError as error:
        return [], list(reversed(error.args[1]))


def roots(graph: Graph) -> list[str]:
    """The tiers that include no other."""
    return [name for name, parents in graph.items() if not parents]


def leaves(graph: Graph) -> list[str]:
    """The tiers no other tier includes: where the dev tools may go without shipping."""
    included = {parent for parents in graph.values() for parent in parents}
    return [name for name in graph if name not in included]


def includers(graph: Graph, tier: str) -> list[str]:
    """The tiers that include `tier` directly."""
    return [name for name, parents in graph.items() if tier in parents]
