"""Rendering of ``tenant_templates/<component>/<kind>.yaml.j2`` into manifests.

Templates are YAML with jinja2 holes. Every value that comes from the model goes
through the ``tojson`` filter: JSON is valid YAML flow syntax, so names, quantities,
multi-line XML and anything with ``:``, ``#`` or quotes arrive as the exact string the
model holds instead of whatever YAML's implicit typing would make of them ("0.8",
"yes", "1e3"). ``StrictUndefined`` turns a missing variable into an error instead of
an empty string that would only show up as an invalid object in the API server.

Rendering reads the template files (the only I/O of the build step); the environment
is built once per process and caches compiled templates.
"""

from __future__ import annotations

import functools
import json
import shlex
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import jinja2
import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# libyaml's safe loader is ~10x faster than the pure-Python one; every reconcile renders.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Override for installs that ship the templates somewhere else (a wheel, an image).
TEMPLATES_ENV = "TENANTRY_TEMPLATES_DIR"


class TemplateSettings(BaseSettings):
    """Where the builders find their templates (apart from the operator's `Settings`:
    the builders are pure functions that the CLI and tests call without an operator)."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", env_ignore_empty=True, use_attribute_docstrings=True
    )

    templates_dir: Path | None = Field(None, validation_alias=TEMPLATES_ENV)
    """The ``tenant_templates`` folder (the image sets it); unset: the repository's."""


# builders/ -> tenantry_operator/ -> operator/ -> the repository root.
_REPO_TEMPLATES = Path(__file__).resolve().parents[3] / "tenant_templates"

Manifest = dict[str, Any]


def templates_dir() -> Path:
    """Where the templates live: $TENANTRY_TEMPLATES_DIR, else the repository's folder."""
    path = TemplateSettings().templates_dir or _REPO_TEMPLATES
    if not path.is_dir():
        raise FileNotFoundError(
            f"tenant templates not found at {path}; set {TEMPLATES_ENV} to their folder"
        )
    return path


def _tojson(value: Any) -> str:
    # ASCII-only JSON: a valid YAML double-quoted scalar / flow collection for any value.
    return json.dumps(value, ensure_ascii=True)


def _xml(value: Any) -> str:
    return escape(str(value), {'"': "&quot;"})


def _shquote(value: Any) -> str:
    return shlex.quote(str(value))


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - YAML, XML and shell, never HTML; values are escaped per format
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = _tojson
    env.filters["xml"] = _xml
    env.filters["shquote"] = _shquote
    return env


def text(template: str, /, **context: Any) -> str:
    """The rendered text of one template (XML config files, scripts)."""
    return environment().get_template(template).render(**context)


def objects(template: str, /, **context: Any) -> list[Manifest]:
    """Every YAML document a template renders (empty documents skipped)."""
    docs = yaml.load_all(text(template, **context), Loader=_LOADER)
    out: list[Manifest] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"{template} rendered a {type(doc).__name__}, not an object")
        out.append(doc)
    return out


def one(template: str, /, **context: Any) -> Manifest:
    """The single object a template renders."""
    docs = objects(template, **context)
    if len(docs) != 1:
        raise ValueError(f"{template} rendered {len(docs)} objects, expected 1")
    return docs[0]
