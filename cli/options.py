"""The command's options, derived from the stages' configs (`config/base.py`).

`stage_command` registers a command whose options are the fields of one or more configs:
`--field-name`, the field's type (a `Literal` gives a choice), its default and its help.
A tuple field takes comma-separated values (`--k 1,4,16`). The command builds the configs
(a `ConfigError` is one `error:` line and exit 1, before any flow starts) and hands them
to `run`. Nothing about an option is written here: rename or document a field in its
config and the command follows.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NoReturn

import typer

from distillery.config.base import ConfigError, field_help, flag

Fail = Callable[[str], NoReturn]


def _tuple_item(annotation: Any) -> type | None:
    """`int` for `tuple[int, ...]` (the field is a comma-separated option); else None."""
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


def _in_help_order(cls: type) -> list[dataclasses.Field[Any]]:
    """The stage's own fields first, then each shared group's (dataclasses order fields
    base classes first)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    ordered: dict[str, dataclasses.Field[Any]] = {}
    for klass in cls.__mro__:
        for name in getattr(klass, "__annotations__", {}):
            if name in fields and name not in ordered:
                ordered[name] = fields[name]
    return list(ordered.values())


def config_params(cls: type) -> list[inspect.Parameter]:
    """One keyword parameter per field of `cls`, annotated for Typer."""
    hints = typing.get_type_hints(cls)
    helps = field_help(cls)
    params = []
    for f in _in_help_order(cls):
        annotation, default = hints[f.name], f.default
        if default is dataclasses.MISSING:
            assert f.default_factory is not dataclasses.MISSING, f"{cls.__name__}.{f.name}"
            default = f.default_factory()
        decls = [flag(f.name)]
        if annotation is bool:
            decls = [f"{flag(f.name)}/--no-{f.name.replace('_', '-')}"]
        if _tuple_item(annotation) is not None:
            annotation, default = str, ",".join(str(v) for v in default)
        option = typer.Option(*decls, help=helps[f.name], show_default=True)
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[annotation, option],
            )
        )
    return params


def build(cls: type, values: dict[str, Any]) -> Any:
    """The config `cls` from the command's values (comma-separated tuples split here)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        value, item = values[f.name], _tuple_item(hints[f.name])
        if item is not None:
            try:
                value = tuple(item(v.strip()) for v in str(value).split(",") if v.strip())
            except ValueError:
                kind = "integers" if item is int else f"{item.__name__} values"
                raise ConfigError(
                    f"{flag(f.name)} takes comma-separated {kind} (got {value!r})"
                ) from None
        kwargs[f.name] = value
    return cls(**kwargs)


def stage_command(
    app: typer.Typer,
    name: str,
    configs: Sequence[type],
    run: Callable[..., None],
    fail: Fail,
    extra: Sequence[inspect.Parameter] = (),
    help: str | None = None,
) -> None:
    """Register `name` on `app`: an option per field of each of `configs`, then `extra`
    (plain Typer parameters such as --warehouse); calls `run(*configs, **extra)`."""
    params = [p for cls in configs for p in config_params(cls)] + list(extra)
    names = [p.name for p in params]
    assert len(names) == len(set(names)), f"{name}: an option is declared twice: {names}"

    def command(**values: Any) -> None:
        try:
            built = [build(cls, values) for cls in configs]
        except ConfigError as exc:
            fail(str(exc))
        run(*built, **{p.name: values[p.name] for p in extra})

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = name.replace("-", "_")
    command.__doc__ = help or inspect.getdoc(configs[0])
    app.command(name)(command)
