"""An import-linter contract type the built-in ones lack: no cycles between modules.

import-linter's ``acyclic_siblings`` looks at sibling *packages*: the control plane's
domain packages (orgs, rbac, tenants, billing, ...) lean on each other in both
directions by design (a service of one reads the repository of another), which that
contract would count as cycles. What must never come back is a cycle of *modules*,
like the one that ran deps -> audit.service -> deps (issue 15) and was held together by
imports inside functions: Python resolves those at call time, so nothing failed until a
module was imported in another order. ``acyclic_modules`` walks every import (module
level, inside functions and under ``TYPE_CHECKING`` alike) and reports each group of
modules that reach one another, with the imports that close the loop.

Registered in ``.importlinter`` (``contract_types``); dev-only like this package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set

import grimp
from importlinter import Contract, ContractCheck, fields, output


class AcyclicModulesContract(Contract):
    """No import cycle among the modules of ``packages`` (and their descendants)."""

    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        roots: list[str] = list(self.packages)  # type: ignore[call-overload]
        modules: set[str] = set()
        for root in roots:
            modules.add(root)
            modules |= graph.find_descendants(root)
        edges = {
            module: graph.find_modules_directly_imported_by(module) & modules for module in modules
        }
        output.verbose_print(verbose, f"Looking for import cycles among {len(modules)} modules")
        cycles = [sorted(group) for group in strongly_connected(edges) if len(group) > 1]
        details = [
            [
                (importer, imported, _lines(graph, importer, imported))
                for importer in group
                for imported in sorted(edges[importer] & set(group))
            ]
            for group in cycles
        ]
        return ContractCheck(kept=not cycles, metadata={"cycles": sorted(details)})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for imports in check.metadata["cycles"]:
            members = sorted({importer for importer, _, _ in imports})
            output.print_error(f"These modules import one another: {', '.join(members)}")
            output.new_line()
            for importer, imported, lines in imports:
                output.indent_cursor()
                output.print_error(f"{importer} -> {imported} ({lines})", bold=False)
            output.new_line()


def _lines(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    return ", ".join(f"l.{d['line_number']}" for d in details) or "?"


def strongly_connected(edges: Mapping[str, Set[str]]) -> Iterable[set[str]]:
    """The strongly connected components of a directed graph (Tarjan's algorithm, with
    an explicit stack: import chains can be deeper than Python's recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(edges[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(edges.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                yield group
