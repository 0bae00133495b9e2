"""Foreign-key order of tables, with cycles broken deterministically.

Asset dependencies must form a DAG and a data load must put parents first, but schemas may have
circular foreign keys (a → b → a). We keep the graph acyclic by ignoring, within each strongly
connected group, the edges that point "forward" in name order; the restore loads such groups
before adding any foreign key (post-data), so the order inside a cycle does not matter there.
"""

from __future__ import annotations

from .catalog import Catalog, Table


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (schemas can be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def acyclic_parents(catalog: Catalog) -> dict[str, set[str]]:
    """Qualified table -> the parent tables it depends on, with cycle edges removed."""
    known = {t.qualified for t in catalog.tables}
    graph = {t.qualified: {p for p in t.parents() if p in known} for t in catalog.tables}
    group_of = {}
    for group in _strongly_connected(graph):
        for member in group:
            group_of[member] = frozenset(group)
    return {
        child: {p for p in parents if group_of[p] != group_of[child] or p < child}
        for child, parents in graph.items()
    }


def load_order(catalog: Catalog, tables: list[Table] | None = None) -> list[Table]:
    """Tables parents-first (ties by name), restricted to `tables` when given."""
    parents = acyclic_parents(catalog)
    wanted = {t.qualified for t in (tables if tables is not None else catalog.tables)}
    by_name = catalog.by_qualified()
    done: list[str] = []
    placed: set[str] = set()
    remaining = sorted(wanted)
    while remaining:
        ready = [q for q in remaining if not (parents[q] & wanted) - placed]
        for q in ready:
            placed.add(q)
            done.append(q)
        remaining = [q for q in remaining if q not in placed]
    return [by_name[q] for q in done]


def with_parents(catalog: Catalog, names: set[str]) -> tuple[set[str], set[str]]:
    """Close a set of qualified names over foreign-key parents; return (all, added)."""
    by_name = catalog.by_qualified()
    result = set(names)
    frontier = list(names)
    while frontier:
        for parent in by_name[frontier.pop()].parents():
            if parent in by_name and parent not in result:
                result.add(parent)
                frontier.append(parent)
    return result, result - set(names)
