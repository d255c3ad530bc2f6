"""The tagged JSON tree used by :class:`~jobify_trio.serializers.ExtendedJSONSerializer`.

Pure functions, no I/O. ``to_tree`` turns a Python value into a JSON-compatible tree;
:class:`~._decode.TreeDecoder` is a ``json`` ``object_hook`` that turns the tagged objects
back into values. A tagged object is a JSON object with exactly one key, and that key
starts with ``$``. The encoder never writes a plain object with a ``$`` key: a dict whose
keys are not all ``$``-free strings is written as ``{"$dict": [[key, value], ...]}``, so a
user dict can never be mistaken for a tag. The wire format is described in
``docs/serialization.rst``; change both together.

Decoding never calls anything but a class that was first verified to be an Enum,
dataclass, attrs class or NamedTuple. Classes are found by walking module and class
``__dict__``s (no ``getattr``, so no descriptors or module ``__getattr__`` run).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import sys
import types
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Final
from zoneinfo import ZoneInfo

import attrs

Encoder = Callable[[Any], Any]

#: Ints with more bits than this are written as hex (``int``/``str`` conversion of
#: decimal digits is capped by ``sys.set_int_max_str_digits``; hex is not).
_BIG_INT: Final = 1 << 1024
MICROSECOND: Final = timedelta(microseconds=1)
_COMPACT: Final = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=True, allow_nan=False, check_circular=False
)
SUPPORTED: Final = (
    "None, bool, int, float, str, bytes, list, tuple, dict, set, frozenset, datetime, date, "
    "time, timedelta, Decimal, UUID, and module-level Enums, dataclasses, attrs classes "
    "and NamedTuples"
)


def type_name(tp: type) -> str:
    """``int`` for builtins, ``module.Qualname`` otherwise."""
    if tp.__module__ == "builtins":
        return tp.__qualname__
    return f"{tp.__module__}.{tp.__qualname__}"


# ---------------------------------------------------------------- encoding


def to_tree(value: Any) -> Any:
    """Encode ``value`` as a JSON-compatible tree; ``TypeError`` if not supported."""
    tp = type(value)
    if tp is str or tp is bool or value is None:
        return value
    if tp is int:
        return value if -_BIG_INT < value < _BIG_INT else {"$int": format(value, "x")}
    encoder = _ENCODERS.get(tp)
    if encoder is None:
        encoder = _ENCODERS[tp] = _encoder_for(tp)
    return encoder(value)


def check_class(tp: type) -> None:
    """``TypeError`` unless instances of ``tp`` (a user class) can be encoded."""
    if tp not in _ENCODERS and tp not in (int, str, bool, type(None)):
        _ENCODERS[tp] = _encoder_for(tp)


def _float(value: float) -> Any:
    return value if math.isfinite(value) else {"$float": repr(value)}


def _dict(value: dict[Any, Any]) -> Any:
    out = {}
    for key, item in value.items():
        if type(key) is not str or key[:1] == "$":
            return {"$dict": [[to_tree(k), to_tree(v)] for k, v in value.items()]}
        out[key] = to_tree(item)
    return out


def _sorted_items(value: set[Any] | frozenset[Any]) -> list[Any]:
    # Set order depends on PYTHONHASHSEED; sort by the encoding so bytes are stable.
    return sorted((to_tree(item) for item in value), key=_COMPACT.encode)


def _clock(tag: str, value: datetime | time) -> Any:
    tz = value.tzinfo
    if tz is not None and type(tz) is not timezone and not _is_zone(tz):
        if isinstance(value, time):
            raise TypeError(f"cannot encode a time with tzinfo of type {type_name(type(tz))}")
        offset = value.utcoffset()  # another tzinfo: keep the instant as a fixed offset
        tz = None if offset is None else timezone(offset)
        value = value.replace(tzinfo=tz)
    if isinstance(tz, timezone):
        zone: str | int | None = tz.utcoffset(None) // MICROSECOND
    else:
        zone = tz.key if isinstance(tz, ZoneInfo) else None
    # isoformat() is exact except for fold and sub-second offsets (3.11 misreads those)
    if value.fold == 0 and (zone is None or (type(zone) is int and zone % 1_000_000 == 0)):
        return {tag: value.isoformat()}
    return {tag: [value.replace(tzinfo=None).isoformat(), zone, value.fold]}


def _is_zone(tz: object) -> bool:
    return isinstance(tz, ZoneInfo) and tz.key is not None


_ENCODERS: dict[type, Encoder] = {
    float: _float,
    list: lambda v: [to_tree(x) for x in v],
    tuple: lambda v: {"$tuple": [to_tree(x) for x in v]},
    dict: _dict,
    set: lambda v: {"$set": _sorted_items(v)},
    frozenset: lambda v: {"$frozenset": _sorted_items(v)},
    bytes: lambda v: {"$bytes": base64.b64encode(v).decode("ascii")},
    datetime: lambda v: _clock("$datetime", v),
    time: lambda v: _clock("$time", v),
    date: lambda v: {"$date": v.isoformat()},
    timedelta: lambda v: {"$timedelta": [v.days, v.seconds, v.microseconds]},
    Decimal: lambda v: {"$decimal": str(v)},
    uuid.UUID: lambda v: {"$uuid": str(v)},
}


def _encoder_for(tp: type) -> Encoder:
    """Build (once per class) the encoder for an Enum/dataclass/attrs/NamedTuple class."""
    if issubclass(tp, Enum):
        ref = class_ref(tp)
        return lambda v: {"$enum": [_same_class(tp, ref), to_tree(v.value)]}
    names = _field_names(tp)
    if names is None:
        hint = ""
        base = next((b for b in _ENCODERS if issubclass(tp, b)), None)
        if base is not None:
            hint = f" (a subclass of {type_name(base)}: convert it to a plain {type_name(base)})"
        raise TypeError(
            f"cannot encode a value of type {type_name(tp)}{hint}; supported: {SUPPORTED}"
        )
    tag, fields = names
    ref = class_ref(tp)
    return lambda v: {tag: [_same_class(tp, ref), {n: to_tree(getattr(v, n)) for n in fields}]}


def _same_class(tp: type, ref: str) -> str:
    """``ref`` if it still names ``tp``: a class redefined under its name since ``tp`` was
    first encoded would be rebuilt as the other class (``TypeError``)."""
    module, _, qualname = ref.partition(":")
    if lookup(sys.modules.get(module), qualname) is not tp:
        raise TypeError(
            f"cannot encode {module}.{qualname}: that name now refers to another class "
            "(the class was redefined or replaced since)"
        )
    return ref


def registered_ref(tp: type) -> str | None:
    """``module:qualname`` of a user class (Enum, dataclass, attrs, NamedTuple) in a registry."""
    if isinstance(tp, type) and (issubclass(tp, Enum) or _field_names(tp) is not None):
        return class_ref(tp)
    return None


def _field_names(tp: type) -> tuple[str, tuple[str, ...]] | None:
    if dataclasses.is_dataclass(tp):
        _reject_required_initvar(tp)
        return "$dataclass", tuple(f.name for f in dataclasses.fields(tp))
    if attrs.has(tp):
        return "$attrs", tuple(a.name for a in attrs.fields(tp))
    if issubclass(tp, tuple) and isinstance(getattr(tp, "_fields", None), tuple):
        return "$namedtuple", tuple(tp._fields)  # type: ignore[attr-defined]
    return None


def _reject_required_initvar(tp: type) -> None:
    for field in getattr(tp, "__dataclass_fields__", {}).values():
        is_initvar = isinstance(field.type, dataclasses.InitVar) or (
            isinstance(field.type, str) and "InitVar" in field.type
        )
        required = field.default is dataclasses.MISSING
        if is_initvar and required and field.default_factory is dataclasses.MISSING:
            raise TypeError(
                f"cannot encode {type_name(tp)}: its InitVar {field.name!r} is not stored"
            )


def class_ref(tp: type) -> str:
    """``module:qualname`` of a class that can be found again by that name."""
    module, qualname = tp.__module__, tp.__qualname__
    if "<locals>" in qualname:
        raise TypeError(
            f"cannot encode {module}.{qualname}: it is defined inside a function; "
            "only classes importable as module:qualname can be stored"
        )
    if lookup(sys.modules.get(module), qualname) is not tp:
        raise TypeError(f"cannot encode {module}.{qualname}: it is not importable by that name")
    return f"{module}:{qualname}"


def lookup(root: object, qualname: str) -> object:
    """Walk ``a.b.c`` through module/class ``__dict__``s only; ``None`` if absent."""
    obj = root
    for part in qualname.split("."):
        if not isinstance(obj, (type, types.ModuleType)):
            return None
        obj = vars(obj).get(part)
    return obj


def children(value: Any) -> Iterator[tuple[str, Any]]:
    """(path label, child) pairs of a container; used to point at a bad nested value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield f" key {key!r:.60}", key
            yield f"[{key!r:.60}]", item
    elif isinstance(value, (list, tuple)) and not hasattr(type(value), "_fields"):
        for index, item in enumerate(value):
            yield f"[{index}]", item
    elif isinstance(value, (set, frozenset)):
        for item in value:
            yield f" element {item!r:.60}", item
    elif not isinstance(value, type) and (names := _field_names(type(value))) is not None:
        for name in names[1]:
            yield f".{name}", getattr(value, name)
