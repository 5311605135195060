"""A stage's configuration, declared once.

Each stage has one frozen dataclass. A field carries its type (`Literal` for a choice), its
default and a one-line help: the docstring written under the attribute, as TRL's configs
carry `metadata={"help": ...}`. Everything else is derived from that declaration:

- the `distillery` command's options (`cli/options.py`): `--field-name`, the type, the
  default, the help, the choices;
- the Prefect flow's parameters: a flow takes the config itself, so the UI's run form
  shows each field with its help and a dropdown for a choice (`__pydantic_config__` hands
  pydantic the help while it builds the schema).

Checks that need no warehouse and no model run in `__post_init__` and raise `ConfigError`
with one line naming the option, so bad input stops before any flow starts. Shared groups
of fields (decoding, prompt selection, backend) are base classes, declared once and
inherited: a stage's config stays flat, one option per field.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from functools import cache
from types import UnionType
from typing import Any, Literal, TypeVar, Union

Split = Literal["train", "test"]
C = TypeVar("C")


class ConfigError(ValueError):
    """A bad value in a stage's configuration; the message names the option and the fix."""


def flag(name: str) -> str:
    """The command-line option of field `name`."""
    return "--" + name.replace("_", "-")


def check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def at_least(value: int | float | None, low: int | float, name: str) -> None:
    """`value` (None allowed: the default) must be >= `low`."""
    check(value is None or value >= low, f"{flag(name)} must be at least {low} (got {value})")


def _schema_help(schema: dict[str, Any], cls: type) -> None:
    """pydantic's hook while it builds the JSON schema Prefect's run form is drawn from:
    each field's help as its description (pydantic's own docstring reading sees only the
    class itself, not the shared groups a config inherits)."""
    helps = field_help(cls)
    for name, prop in schema.get("properties", {}).items():
        if name in helps:
            prop["description"] = helps[name]


@dataclasses.dataclass(frozen=True)
class StageConfig:
    """Base of every stage's config: field help is the attribute's docstring."""

    # Read by pydantic (Prefect's parameter schema); a plain dict, so no import here.
    __pydantic_config__ = {"json_schema_extra": _schema_help}  # noqa: RUF012

    def __post_init__(self) -> None:
        """Every `Literal` field holds one of its choices (subclasses call this first)."""
        for name, choices in _choices(type(self)).items():
            value = getattr(self, name)
            if value not in choices:
                shown = ", ".join(str(c) for c in choices if c is not None)
                raise ConfigError(f"{flag(name)} must be one of {shown} (got {value!r})")

    def as_params(self) -> dict[str, Any]:
        """The fields as plain values (a run's recorded parameters)."""
        return dataclasses.asdict(self)


def project(config: Any, cls: type[C]) -> C:
    """The `cls` part of `config` (a config that inherits `cls`, or holds its fields):
    same names, same values, nothing renamed."""
    return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


@cache
def _choices(cls: type) -> dict[str, tuple[Any, ...]]:
    """The allowed values of each `Literal` field (None among them for `Literal[...] | None`)."""
    out: dict[str, tuple[Any, ...]] = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = typing.get_args(hint) if typing.get_origin(hint) in (Union, UnionType) else (hint,)
        literal = [a for a in args if typing.get_origin(a) is Literal]
        if literal:
            out[name] = tuple(typing.get_args(literal[0])) + ((None,) if type(None) in args else ())
    return out


@cache
def field_help(cls: type) -> dict[str, str]:
    """Each field's help: the string literal right below its declaration, in `cls` or the
    base class that declares it (a subclass may redeclare a field with a new default)."""
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        assert isinstance(body, ast.ClassDef)
        for node, after in zip(body.body, body.body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                helps[node.target.id] = " ".join(after.value.value.split())
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in helps]
    assert not missing, f"{cls.__name__}: fields without a help docstring: {missing}"
    return helps
