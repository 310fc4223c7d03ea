"""What every component's settings model shares: reading a given environment, naming
the variable at fault, and the settings reference generated from the models.

The operator, the control plane and ingestion each declare their settings as one
pydantic-settings model (`BaseSettings`): the field's type, default, bounds and
docstring are the single description of an environment variable. `from_mapping` reads
a model from an explicit mapping instead of the process environment, through
pydantic-settings' own environment source (same parsing: empty values unset, lists
split where the model says so), so a test can feed a model exactly the environment
another component renders (the ingestion pod's, from the operator's builder).
`reference` writes the Markdown tables of `docs/settings.md` from the same models (each
model sets `use_attribute_docstrings`, so a field's docstring is its description).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

S = TypeVar("S", bound=BaseSettings)


class SettingsError(ValueError):
    """The environment does not describe a runnable service; the message names the
    variables at fault."""


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._given, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def env_name(model: type[BaseSettings], name: str) -> str:
    """The environment variable of field `name`: its alias, else prefix + name."""
    field = model.model_fields[name]
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    return (str(model.model_config.get("env_prefix", "")) + name).upper()


def describe(model: type[BaseSettings], exc: ValidationError) -> str:
    """The problems, `; `-separated, each naming its environment variable (and the
    value given, unless the field is a secret)."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        message = str(error["msg"]).removeprefix("Value error, ")
        if not loc:
            problems.append(message)
            continue
        first = str(loc[0])  # the field's name, or its alias when read by alias
        field = model.model_fields.get(first) or next(
            (f for f in model.model_fields.values() if f.validation_alias == first), None
        )
        if field is not None:
            first = next(k for k, f in model.model_fields.items() if f is field)
        name = first if field is None else env_name(model, first)
        secret = field is not None and field.repr is False
        hidden = error["type"] == "missing" or secret or field is None
        value = "" if hidden else f" (got {error['input']!r})"
        problems.append(f"{name}: {message}{value}")
    return "; ".join(problems)


def from_mapping(model: type[S], env: Mapping[str, str]) -> S:
    """`model` read from `env` (an environment: names to values); SettingsError when
    the values are not acceptable, naming each variable."""
    try:
        return model.model_validate(_MappingSource(model, env)())
    except ValidationError as exc:
        raise SettingsError(describe(model, exc)) from None


def _default(field: FieldInfo) -> str:
    value: Any = field.default
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif value is PydanticUndefined:
        return "**required**"
    if value is None or hasattr(value, "get_secret_value"):
        return "(unset)"
    if isinstance(value, tuple | list | frozenset | set):
        return f"`{','.join(str(v) for v in value)}`" if value else "(none)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return "(empty)"
    return f"`{value}`"


_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}


def _type(field: FieldInfo) -> str:
    """How the value is written: a word for scalars, lists as they are parsed."""
    annotation = field.annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    if args and get_origin(annotation) in (Union, UnionType):
        annotation = args[0]
    origin = get_origin(annotation) or annotation
    if origin in (tuple, frozenset, set):
        return "comma-separated list"
    if origin is list:
        return "JSON list"
    if origin is SecretStr:
        return "string (secret)"
    if origin is Path:
        return "path"
    word = _TYPES.get(origin, "string") if isinstance(origin, type) else "string"
    return f"{word} (secret)" if field.repr is False else word


def _bounds(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            bound = getattr(item, attr, None)
            if bound is not None:
                parts.append(f"{sign} {bound}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            parts.append(f"`{pattern}`")
    return ", ".join(parts)


def reference(model: type[BaseSettings]) -> str:
    """A Markdown table: variable, type, default, bounds, description, a row per field."""
    rows = [
        "| variable | type | default | bounds | description |",
        "|---|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        text = " ".join((field.description or "").split()).replace("|", "\\|")
        rows.append(
            f"| `{env_name(model, name)}` | {_type(field)} | {_default(field)} "
            f"| {_bounds(field)} | {text} |"
        )
    return "\n".join(rows) + "\n"
