"""The layering rules of DESIGN.md, checked on the source: routers speak HTTP and call
services, services hold the rules, and SQL lives only in repositories (plus the
migration runner in ``db.py``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3] / "controlplane"
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _strings(path: Path) -> list[str]:
    return [
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_routers_never_reach_repositories() -> None:
    for router in ROOT.glob("*/router.py"):
        bad = [m for m in _imports(router) if m.endswith(".repository")]
        assert not bad, f"{router.relative_to(ROOT)} imports {bad}"


def test_repositories_never_import_services_or_routers() -> None:
    for repo in ROOT.glob("*/repository.py"):
        bad = [m for m in _imports(repo) if m.endswith((".service", ".router"))]
        assert not bad, f"{repo.relative_to(ROOT)} imports {bad}"


def test_sql_only_in_repositories() -> None:
    allowed = {"db.py"}
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.name == "repository.py" or path.name in allowed:
            continue
        if any(SQL.search(text) for text in _strings(path)):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"SQL outside repositories: {offenders}"


def test_every_domain_has_the_four_layers() -> None:
    for domain in ("auth", "users", "orgs", "rbac", "tenants", "dashboards", "apikeys", "audit"):
        for layer in ("router", "service", "repository", "schemas"):
            assert (ROOT / domain / f"{layer}.py").is_file(), f"{domain}/{layer}.py"
