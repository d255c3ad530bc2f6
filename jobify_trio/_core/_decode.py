"""Decoding the tagged JSON tree of :mod:`._codec`: :class:`TreeDecoder`.

A ``json`` ``object_hook`` that turns the tagged objects back into values. Decoding never
calls anything but a class that was first verified to be an Enum, dataclass, attrs class
or NamedTuple. Classes are found by walking module and class ``__dict__``s (no
``getattr``, so no descriptors or module ``__getattr__`` run). Pure, no I/O.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import re
import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Final
from zoneinfo import ZoneInfo

import attrs

from ._codec import MICROSECOND, lookup

__all__ = ["TreeDecoder"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_REF_RE: Final = re.compile(rf"({_NAME}):({_NAME})")


def _renamed(cls: type, module: str, qualname: str) -> bool:
    """True if ``module:qualname`` is imported and now names another class than ``cls``."""
    root = sys.modules.get(module)
    return root is not None and lookup(root, qualname) is not cls


def _expect(payload: Any, tp: type, tag: str) -> Any:
    if type(payload) is not tp:
        raise ValueError(f"malformed {tag}: expected a JSON {tp.__name__}, got {payload!r:.80}")
    return payload


def _clock_from(cls: type[datetime] | type[time], tag: str, payload: Any) -> Any:
    if type(payload) is str:
        return cls.fromisoformat(payload)
    text, zone, fold = _expect(payload, list, tag)
    value = cls.fromisoformat(_expect(text, str, tag))
    if value.tzinfo is not None:
        raise ValueError(f"malformed {tag}: {text!r:.40} has an offset")
    if type(zone) is int:
        value = value.replace(tzinfo=timezone(zone * MICROSECOND))
    elif zone is not None:
        value = value.replace(tzinfo=ZoneInfo(_expect(zone, str, tag)))
    return value.replace(fold=fold)


def _float_from(payload: Any) -> float:
    if payload not in ("nan", "inf", "-inf"):
        raise ValueError(f"malformed $float: {payload!r:.80}")
    return float(payload)


def _timedelta_from(payload: Any) -> timedelta:
    days, seconds, micros = (_expect(x, int, "$timedelta") for x in payload)
    return timedelta(days=days, seconds=seconds, microseconds=micros)


_SIMPLE: Final[dict[str, Callable[[Any], Any]]] = {
    "$tuple": lambda p: tuple(_expect(p, list, "$tuple")),
    "$set": lambda p: set(_expect(p, list, "$set")),
    "$frozenset": lambda p: frozenset(_expect(p, list, "$frozenset")),
    "$dict": lambda p: {k: v for k, v in _expect(p, list, "$dict")},  # noqa: C416
    "$bytes": lambda p: base64.b64decode(_expect(p, str, "$bytes"), validate=True),
    "$int": lambda p: int(_expect(p, str, "$int"), 16),
    "$float": _float_from,
    "$datetime": lambda p: _clock_from(datetime, "$datetime", p),
    "$time": lambda p: _clock_from(time, "$time", p),
    "$date": lambda p: date.fromisoformat(_expect(p, str, "$date")),
    "$timedelta": lambda p: _timedelta_from(_expect(p, list, "$timedelta")),
    "$decimal": lambda p: Decimal(_expect(p, str, "$decimal")),
    "$uuid": lambda p: uuid.UUID(_expect(p, str, "$uuid")),
}

_KINDS: Final[dict[str, tuple[str, Callable[[type], bool]]]] = {
    "$enum": ("an Enum", lambda c: issubclass(c, Enum)),
    "$dataclass": ("a dataclass", dataclasses.is_dataclass),
    "$attrs": ("an attrs class", attrs.has),
    "$namedtuple": (
        "a NamedTuple",
        lambda c: issubclass(c, tuple) and isinstance(getattr(c, "_fields", None), tuple),
    ),
}


class TreeDecoder:
    """``json`` object hook turning tagged objects back into values.

    ``import_modules``: whether a class reference may import a module that is not
    imported yet (importing runs that module's top-level code, nothing else).
    ``registered``: classes the user registered, by ``module:qualname``; they are found
    even if their module is no longer in ``sys.modules``, and a reference that now
    resolves to another class of that name is refused.
    """

    def __init__(
        self, *, import_modules: bool, registered: Mapping[str, type] | None = None
    ) -> None:
        self._import_modules = import_modules
        self._registered: Mapping[str, type] = registered or {}
        self._classes: dict[tuple[str, str], type] = {}
        self._fields: dict[type, dict[str, str | None]] = {}

    def __call__(self, obj: dict[str, Any]) -> Any:
        if len(obj) == 1:
            tag = next(iter(obj))
            if tag[:1] == "$":
                return self._tagged(tag, obj[tag])
            return obj
        for key in obj:
            if key[:1] == "$":
                raise ValueError(f"malformed object: tag {key!r:.40} appears alongside other keys")
        return obj

    def _tagged(self, tag: str, payload: Any) -> Any:
        simple = _SIMPLE.get(tag)
        if simple is not None:
            return simple(payload)
        if tag not in _KINDS:
            raise ValueError(f"unknown tag {tag!r:.40} (written by a newer jobify_trio?)")
        ref, body = _expect(payload, list, tag)
        cls = self.resolve(ref, tag)
        if tag == "$enum":
            return cls(body)
        return self._build(cls, ref, _expect(body, dict, tag))

    def resolve(self, ref: Any, tag: str) -> type:
        """The class named ``module:qualname``, verified to be of the kind ``tag`` names."""
        match = _REF_RE.fullmatch(ref) if type(ref) is str else None
        if match is None:
            raise ValueError(f"malformed class reference {ref!r:.80}")
        key = (tag, ref)
        cls = self._classes.get(key)
        if cls is None or _renamed(cls, match[1], match[2]):  # redefined since it was cached
            cls = self._classes[key] = self._find(ref, match[1], match[2], tag)
        return cls

    def _find(self, ref: str, module_name: str, qualname: str, tag: str) -> type:
        module = sys.modules.get(module_name)
        registered = self._registered.get(ref)
        if module is None and registered is None:
            if not self._import_modules:
                raise ValueError(
                    f"class {ref!r}: module {module_name!r} is not imported (stored data may "
                    "only name classes of imported modules or registered classes; see "
                    "ExtendedJSONSerializer(import_modules=True))"
                )
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise ValueError(f"class {ref!r}: cannot import {module_name!r}: {exc}") from exc
        obj = registered if module is None else lookup(module, qualname)
        if registered is not None and obj is not registered:
            raise ValueError(
                f"{ref!r} resolves to {obj!r}, not the registered class of that name "
                "(it was redefined or replaced); refusing to construct it"
            )
        kind, check = _KINDS[tag]
        if not isinstance(obj, type):
            raise ValueError(f"{ref!r} does not name a class (found {type(obj).__name__})")
        if not check(obj):
            raise ValueError(f"{ref!r} is not {kind}; refusing to construct it")
        return obj

    def _build(self, cls: type, ref: str, stored: dict[str, Any]) -> Any:
        known = self._fields.get(cls)
        if known is None:
            known = self._fields[cls] = _init_names(cls)
        kwargs: dict[str, Any] = {}
        late: list[tuple[str, Any]] = []
        for name, value in stored.items():
            if name not in known:
                raise ValueError(f"{ref}: stored field {name!r:.40} is not a field of the class")
            init_name = known[name]
            if init_name is None:
                late.append((name, value))
            else:
                kwargs[init_name] = value
        try:
            obj = cls(**kwargs)
        except Exception as exc:
            raise ValueError(f"cannot rebuild {ref} from its stored fields: {exc}") from exc
        for name, value in late:
            object.__setattr__(obj, name, value)
        return obj


def _init_names(cls: type) -> dict[str, str | None]:
    """Stored field name -> ``__init__`` keyword (``None`` for fields set after init)."""
    if dataclasses.is_dataclass(cls):
        return {f.name: f.name if f.init else None for f in dataclasses.fields(cls)}
    if attrs.has(cls):
        return {a.name: a.alias if a.init else None for a in attrs.fields(cls)}
    return {name: name for name in cls._fields}  # type: ignore[attr-defined]
