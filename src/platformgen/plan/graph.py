"""Dependency graphs: deterministic topological order, and cycles reported with their path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class CycleError(Exception):
    """A dependency cycle; `cycle` lists the nodes, first node repeated at the end."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(" -> ".join(cycle))


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle among the nodes of `edges` (node -> the nodes it depends on), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if dep not in edges:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def topo_order(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes ordered so that dependencies come first; ties broken by name for stable output."""
    cycle = find_cycle(edges)
    if cycle:
        raise CycleError(cycle)
    order: list[str] = []
    done: set[str] = set()
    remaining = {n: {d for d in deps if d in edges} for n, deps in edges.items()}
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if deps <= done)
        for node in ready:
            order.append(node)
            done.add(node)
            del remaining[node]
    return order
