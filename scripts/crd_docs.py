"""Write docs/crd-reference.md from the generated CRDs in crds/.

The CRDs are generated from the pydantic models (``make crds``), so this reference is
generated from the same source through them: every field with its type, default,
constraints (OpenAPI bounds and CEL rules, with the messages the API server returns) and
the description taken from the models' docstrings.

    python scripts/crd_docs.py            # rewrite docs/crd-reference.md
    python scripts/crd_docs.py --check    # exit 1 when the file is stale (tests use this)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CRDS = REPO / "crds"
OUT = REPO / "docs" / "crd-reference.md"

# apimachinery's resource.Quantity pattern, as pydantic/k8s schemas spell it out.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

Schema = dict[str, Any]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f"`{text}`".replace("|", "\\|")


def _type(node: Schema) -> str:
    kind = str(node.get("type", "any"))
    if kind == "array":
        return f"[]{_type(node.get('items') or {})}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type(node['additionalProperties'])}"
    if node.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    return kind


def _constraints(node: Schema, *, required: bool) -> list[str]:
    out: list[str] = ["required"] if required else []
    if "enum" in node:
        out.append("one of " + ", ".join(_code(v) for v in node["enum"]))
    bounds = (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
        ("minProperties", "keys ≥"),
        ("maxProperties", "keys ≤"),
    )
    for key, label in bounds:
        if key in node:
            out.append(f"{label} {node[key]}")
    if "pattern" in node:
        pattern = node["pattern"]
        out.append(
            "a quantity (e.g. `500m`, `8Gi`)"
            if pattern == QUANTITY_PATTERN
            else (f"matches {_code(pattern)}")
        )
    if node.get("x-kubernetes-list-type") == "map":
        keys = ", ".join(node.get("x-kubernetes-list-map-keys", []))
        out.append(f"list keyed by {keys}")
    elif node.get("x-kubernetes-list-type") == "set":
        out.append("unique items")
    for rule in node.get("x-kubernetes-validations", []):
        out.append(_cell(rule.get("message") or f"rule {_code(rule['rule'])}"))
    return out


def _fields(node: Schema, path: str) -> Iterator[tuple[str, Schema, bool]]:
    """(path, schema, required) for every field below ``node``, depth first."""
    required = set(node.get("required", []))
    for name, child in (node.get("properties") or {}).items():
        child_path = f"{path}.{name}" if path else name
        yield child_path, child, name in required
        yield from _descend(child, child_path)


def _descend(node: Schema, path: str) -> Iterator[tuple[str, Schema, bool]]:
    if "properties" in node:
        yield from _fields(node, path)
    elif node.get("type") == "array" and isinstance(node.get("items"), dict):
        yield from _descend(node["items"], f"{path}[]")
    elif isinstance(node.get("additionalProperties"), dict):
        yield from _descend(node["additionalProperties"], f"{path}.<key>")


def _table(root: Schema, section: str) -> list[str]:
    node = root["properties"].get(section)
    if not node:
        return []
    lines = [
        f"### `{section}`",
        "",
        _cell(node.get("description", "")),
        "",
    ]
    rules = _constraints(node, required=False)
    if rules:
        lines += ["Rules on the whole object:", ""]
        lines += [f"- {r}" for r in rules] + [""]
    lines += [
        "| Field | Type | Default | Constraints | Description |",
        "|---|---|---|---|---|",
    ]
    for path, child, required in _fields(node, section):
        default = _code(child["default"]) if "default" in child else ""
        constraints = "; ".join(_constraints(child, required=required))
        lines.append(
            f"| `{path}` | {_type(child)} | {default} | {constraints} | "
            f"{_cell(child.get('description', ''))} |"
        )
    return [*lines, ""]


def _crd(doc: Schema) -> list[str]:
    spec = doc["spec"]
    names = spec["names"]
    lines: list[str] = []
    for version in spec["versions"]:
        root = version["schema"]["openAPIV3Schema"]
        api = f"{spec['group']}/{version['name']}"
        lines += [
            f"## {names['kind']} (`{api}`)",
            "",
            _cell(root.get("description", "")),
            "",
            f"- Scope: {spec['scope']}; plural `{names['plural']}`"
            + (f"; short names {', '.join(_code(s) for s in names.get('shortNames', []))}")
            + ("; status subresource" if "status" in version.get("subresources", {}) else ""),
        ]
        for rule in root.get("x-kubernetes-validations", []):
            lines.append(f"- Rule: {_cell(rule.get('message') or rule['rule'])}")
        columns = version.get("additionalPrinterColumns", [])
        if columns:
            lines.append("- `kubectl get` columns: " + ", ".join(_code(c["name"]) for c in columns))
        lines.append("")
        for section in ("spec", "status"):
            lines += _table(root, section)
    return lines


def render(crds: Path = CRDS) -> str:
    docs = [yaml.safe_load(p.read_text()) for p in sorted(crds.glob("*.yaml"))]
    docs.sort(key=lambda d: (d["spec"]["names"]["kind"] != "Tenant", d["spec"]["names"]["kind"]))
    lines = [
        "# CRD reference",
        "",
        "<!-- Generated by scripts/crd_docs.py from crds/*.yaml; do not edit by hand. -->",
        "",
        "Generated from the CRDs, which are generated from the pydantic models in",
        "`tenantry/api/`. Constraints are enforced by the API server; the messages are those",
        "it returns. `kubectl explain tenant.spec` shows the same descriptions.",
        "",
    ]
    for doc in docs:
        lines += _crd(doc)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run python scripts/crd_docs.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
