"""Activity JSON to botbuilder.schema models and back, exactly as msrest does it, only faster.

``Activity().deserialize(body)`` and ``activity.serialize()`` (msrest) walk every one of the ~40
attributes of an activity with generic per-attribute machinery (a copied descriptor, key
extractors, key transformers, a fresh (De)Serializer with a dict of all model classes per call):
about 130 µs in and 95 µs out per activity, a third of what /api/messages spends in Python.

Here each model class of ``botbuilder.schema`` gets a plan, made once from its own
``_attribute_map``, and a conversion handles only what it can do exactly as msrest would: JSON
values of the declared type (a ``str`` where msrest expects ``str``, a JSON object for a model,
an ISO date through msrest's own parser...). Anything else (a number where a string belongs,
an unknown model subclass, an odd value in a card) makes the fast path give up and the caller
uses msrest itself, so results and errors are always msrest's; tests/unit/test_wire.py holds
the two to equality on generated activities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from botbuilder.schema import Activity
from msrest.serialization import Deserializer, Model, Serializer

# The model classes msrest resolves type names against when it (de)serializes an Activity.
_MODELS: dict[str, type] = dict(Activity._infer_class_models())
# msrest itself (untyped): for the odd value inside an "object", and for dates.
_serialize_object = cast(Callable[..., Any], Serializer(_MODELS).serialize_object)  # type: ignore[no-untyped-call]
_read_iso = cast(Callable[[str], Any], Deserializer.deserialize_iso)
_write_iso = cast(Callable[[Any], Any], Serializer.serialize_iso)
_PLAIN_SCALARS = (str, int, float, bool)


class _Unsure(Exception):
    """The fast path cannot promise msrest's result here: use msrest."""


@dataclass(frozen=True, slots=True)
class _Field:
    attr: str
    key: str
    kind: str  # str, int, bool, iso, object, model, models, strs, model_map
    model: type | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    cls: type
    fields: tuple[_Field, ...]
    keys: frozenset[str]


_BASIC = {"str": "str", "int": "int", "bool": "bool", "iso-8601": "iso", "object": "object",
          "[str]": "strs"}


def _plan(cls: Any) -> _Plan | None:
    """The plan of a model class, or None when msrest does something here we do not copy."""
    if (getattr(cls, "_validation", None) or cls.__dict__.get("_subtype_map")
            or hasattr(cls, "_xml_map")):
        return None
    fields: list[_Field] = []
    for attr, desc in cls._attribute_map.items():
        key, kind = desc["key"], desc["type"]
        if not key or "." in key or "\\" in key or attr == "additional_properties":
            return None  # flattened keys, explicit additional properties
        if kind in _BASIC:
            fields.append(_Field(attr, key, _BASIC[kind]))
            continue
        inner = kind.strip("[]{}")
        model = _MODELS.get(inner)
        if not isinstance(model, type) or not issubclass(model, Model):
            return None  # an enum or a type we do not know
        shape = {inner: "model", f"[{inner}]": "models", f"{{{inner}}}": "model_map"}.get(kind)
        if shape is None:
            return None
        fields.append(_Field(attr, key, shape, model))
    return _Plan(cls, tuple(fields), frozenset(f.key for f in fields))


_PLANS: dict[type, _Plan] = {}
for _cls in _MODELS.values():
    if isinstance(_cls, type) and issubclass(_cls, Model):
        _found = _plan(_cls)
        if _found is not None:
            _PLANS[_cls] = _found
# A plan may name a model without a plan of its own (then the fast path gives up there).


# -- JSON to models -----------------------------------------------------------------------------

def _read_object(value: Any) -> Any:
    """msrest's deserialize_object for JSON values: a deep copy."""
    kind = type(value)
    if kind is dict:
        return {key: _read_object(item) for key, item in value.items()}
    if kind is list:
        return [_read_object(item) for item in value]
    if value is None or kind in _PLAIN_SCALARS:
        return value
    raise _Unsure


def _read_model(cls: type | None, data: Any) -> Any:
    plan = _PLANS.get(cls) if cls is not None else None
    if plan is None or type(data) is not dict:
        raise _Unsure
    kwargs: dict[str, Any] = {}
    for field in plan.fields:
        value = data.get(field.key)
        if value is not None:
            value = _read(field, value)
        kwargs[field.attr] = value
    obj = plan.cls(**kwargs)
    if not plan.keys.issuperset(data):
        obj.additional_properties = {key: data[key] for key in data.keys() - plan.keys}
    return obj


_EXACT: dict[str, type] = {"str": str, "bool": bool, "int": int}  # kinds taken as they are


def _strs(value: Any) -> bool:
    return type(value) is list and all(item is None or type(item) is str for item in value)


def _read(field: _Field, value: Any) -> Any:
    kind = field.kind
    if type(value) is _EXACT.get(kind):
        return value
    if kind == "model":
        return _read_model(field.model, value)
    elif kind == "object":
        return _read_object(value)
    elif kind == "iso":
        if type(value) is str:
            try:
                return _read_iso(value)
            except Exception:
                raise _Unsure from None
    elif kind == "models":
        if type(value) is list:
            return [None if item is None else _read_model(field.model, item) for item in value]
    elif kind == "strs":
        if _strs(value):
            return list(value)
    elif kind == "model_map" and type(value) is dict:
        return {key: None if item is None else _read_model(field.model, item)
                for key, item in value.items()}
    raise _Unsure


def read_activity(body: dict[str, Any]) -> Activity:
    """``Activity().deserialize(body)``: the same object, and the same errors."""
    try:
        activity: Activity = _read_model(Activity, body)
    except Exception:  # _Unsure, or anything msrest may see differently: let msrest decide
        activity = Activity().deserialize(body)
    return activity


# -- models to JSON -----------------------------------------------------------------------------

def _write_object(value: Any) -> Any:
    """msrest's serialize_object: plain JSON values are copied, anything else goes to msrest."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Unsure
            out[key] = _write_object(item)
        return out
    if kind is list:
        return [_write_object(item) for item in value]
    if value is None or kind in _PLAIN_SCALARS:
        return value
    try:  # e.g. a StrEnum in a card: msrest writes str(value); a model: its JSON
        return _serialize_object(value, is_xml=False)
    except Exception:
        raise _Unsure from None


def _write_model(obj: Any) -> dict[str, Any]:
    plan = _PLANS.get(type(obj))
    if plan is None:
        raise _Unsure
    out: dict[str, Any] = {}
    for field in plan.fields:
        value = getattr(obj, field.attr)
        if value is not None:
            out[field.key] = _write(field, value)
    return out


def _write(field: _Field, value: Any) -> Any:
    kind = field.kind
    if type(value) is _EXACT.get(kind):
        return value
    if kind == "str":
        if isinstance(value, Enum):  # MessageFactory's ActivityTypes.message: msrest's .value
            return value.value
    elif kind == "model":
        return _write_model(value)
    elif kind == "object":
        return _write_object(value)
    elif kind == "iso":
        try:
            return _write_iso(value)
        except Exception:
            raise _Unsure from None
    elif kind == "models":
        if type(value) is list:
            return [None if item is None else _write_model(item) for item in value]
    elif kind == "strs":
        if _strs(value):
            return list(value)
    elif kind == "model_map" and type(value) is dict and all(type(k) is str for k in value):
        return {key: None if item is None else _write_model(item) for key, item in value.items()}
    raise _Unsure


def write_activity(activity: Activity) -> dict[str, Any]:
    """``activity.serialize()``: the same JSON, and the same errors."""
    try:
        return _write_model(activity)
    except Exception:  # _Unsure, or anything msrest may see differently: let msrest decide
        body: dict[str, Any] = activity.serialize()
        return body
