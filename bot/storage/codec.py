"""Turn domain dataclasses into JSON-ready dicts and back, driven by their type hints.

Both directions are compiled once per type into small converter plans (the stores decode
hundreds of rows per unit of work: the agent roster on every dispatch), so each value costs a
dict lookup and at most one call, not a walk over its type hint.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: exact, and sortable in queries (ISO strings are not)."""
    if moment.tzinfo is None:
        moment = moment.astimezone(UTC)  # naive means local time, as datetime.timestamp() has it
    return (moment - _EPOCH) // _MICRO

Converter = Callable[[Any], Any]

# -- encode: by the value's own type --------------------------------------------------------

_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})
_ENCODERS: dict[type, Converter] = {}


def encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        encoder = _ENCODERS[kind] = _encoder(kind)
    return encoder(value)


def _same(value: Any) -> Any:
    return value


def _encoder(kind: type) -> Converter:
    """The encoder of every value of exactly this type (the checks `encode` used to make on
    each value, in the same order: dataclass, enum, datetime, timedelta, dict, list/tuple)."""
    if dataclasses.is_dataclass(kind) and not issubclass(kind, type):
        names = tuple(f.name for f in dataclasses.fields(kind))

        def dataclass_(value: Any) -> Any:
            return {name: encode(getattr(value, name)) for name in names}
        return dataclass_
    if issubclass(kind, Enum):
        return _enum_value
    if issubclass(kind, datetime):
        return _isoformat
    if issubclass(kind, timedelta):
        return _total_seconds
    if issubclass(kind, dict):
        return _encode_dict
    if issubclass(kind, list | tuple):
        return _encode_list
    return _same


def _enum_value(value: Enum) -> Any:
    return value.value


def _isoformat(value: datetime) -> str:
    return value.isoformat()


def _total_seconds(value: timedelta) -> float:
    return value.total_seconds()


def _encode_dict(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(encode(k)): encode(v) for k, v in value.items()}


def _encode_list(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [encode(v) for v in value]


# -- decode: by the type hints of the target class ------------------------------------------

_HINTS: dict[type, dict[str, Any]] = {}
_PLANS: dict[type, tuple[tuple[str, Converter | None], ...]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def decode(cls: type[T], data: dict[str, Any]) -> T:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _plan(cls)
    kwargs: dict[str, Any] = {}
    for name, convert in plan:
        if name in data:
            value = data[name]
            kwargs[name] = value if convert is None or value is None else convert(value)
    return cls(**kwargs)


def _plan(cls: type) -> tuple[tuple[str, Converter | None], ...]:
    hints = _hints(cls)
    plan = tuple((f.name, _converter(hints[f.name]))
                 for f in dataclasses.fields(cls))
    _PLANS[cls] = plan
    return plan


def _converter(hint: Any) -> Converter | None:
    """How to turn a JSON value into a value of `hint`; None: it is one already. A converter
    never sees None: None decodes to None at every level."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _converter(inner[0]) if len(inner) == 1 else None
    if origin is list or origin is tuple:
        found = _converter(args[0])
        if found is None:
            return list if origin is list else tuple
        item: Converter = found
        if origin is list:
            return lambda value: [None if v is None else item(v) for v in value]
        return lambda value: tuple(None if v is None else item(v) for v in value)
    if origin is dict:
        key, val = _converter(args[0]), _converter(args[1])
        if key is None and val is None:
            return dict
        k = key or _same
        v = val or _same
        return lambda value: {None if a is None else k(a): None if b is None else v(b)
                              for a, b in value.items()}
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            nested: type = hint
            return lambda value: decode(nested, value)
        if issubclass(hint, Enum):
            return _enum_member(hint)
        if hint is datetime:
            return datetime.fromisoformat
        if hint is timedelta:
            return _seconds
    return None


def _enum_member(cls: type[Enum]) -> Converter:
    """`cls(value)` through the value-to-member map first (calling an Enum class is slow)."""
    members = cls._value2member_map_

    def member(value: Any) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):  # an alias, a _missing_ hook, or an error as cls has it
            return cls(value)
    return member


def _seconds(value: Any) -> timedelta:
    return timedelta(seconds=value)
