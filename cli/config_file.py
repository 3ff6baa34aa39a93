"""A .json/.yaml config file given in place of the command line: each value has its flag's type.

``HfArgumentParser.parse_dict`` passes a file's values to the dataclasses unconverted, so ``max_seq_length: abc``
would surface as a TypeError deep inside training; ``check_config_values`` names the key instead.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing


class ConfigValueError(ValueError):
    """A value of a .json/.yaml config file has the wrong type: the message names the key."""


def _fits(value, hint) -> bool:
    """Whether a value read from JSON/YAML can stand for a field annotated ``hint`` (lenient where HF converts)."""
    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin in (list, tuple):
        args = typing.get_args(hint)
        return isinstance(value, (list, tuple)) and (not args or all(_fits(v, args[0]) for v in value))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, (str, hint))
    return True  # an annotation this check does not know: leave it to the dataclass


def _number(text: str, hint):
    """``text`` as an int or float when the annotation takes one, else unchanged."""
    for kind in (int, float):
        if _fits(kind(1), hint):
            try:
                return kind(text)
            except ValueError:
                pass
    return text


def _describe(hint) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def check_config_values(settings: dict, dataclass_types) -> None:
    """Each key of a config file that names a flag has a value of the flag's type; raise naming the key.

    HfArgumentParser.parse_dict passes values to the dataclasses unconverted, so ``max_seq_length: abc`` would
    surface as a TypeError deep inside training; the caller prefixes the file name.
    """
    for dtype in dataclass_types:
        hints = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if not (f.init and f.name in settings):
                continue
            hint = hints.get(f.name, typing.Any)
            if isinstance(settings[f.name], str) and not _fits(settings[f.name], hint):
                settings[f.name] = _number(settings[f.name], hint)  # YAML 1.1 reads 2e-4 as a string
            if not _fits(settings[f.name], hint):
                raise ConfigValueError(f"key {f.name!r}: {settings[f.name]!r} is not a valid {_describe(hints[f.name])}")
