"""Encoding and decoding a durable job's call arguments, with fast paths.

The format is always the one :func:`~jobify_trio.serializers.encode_call_arguments`
writes; the fast paths only skip work whose result is known in advance:

* a call without arguments is encoded once per app (its bytes never change) and decoded
  by comparing bytes;
* with :class:`~jobify_trio.serializers.ExtendedJSONSerializer`, arguments that are all
  plain scalars (``str``, ``bool``, ``None``, ints within 64 bits, finite floats) are
  their own tagged-JSON tree, so they go straight to the serializer's JSON encoder (the
  C encoder :meth:`json.JSONEncoder.encode` would build on every call, with the same
  settings, is built once: :func:`_c_encoder`); without keyword arguments, each is
  written as that encoder writes it (ints and floats by ``repr``, text by the C escaping
  function) between the fixed text of the envelope, which is not built at all;
* with that serializer, stored bytes containing no ``"$`` (nor an escaped ``$``) can hold
  no tag, so they are decoded by the C JSON parser without the tag hook.

Anything else, and every error, goes through the general functions, so error messages and
results are the same with or without the fast paths (a test checks this).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Final

from ..serializers import (
    MESSAGE_VERSION,
    ExtendedJSONSerializer,
    JSONSerializer,
    Serializer,
    UnsafePickleSerializer,
    decode_call_arguments,
    encode_call_arguments,
)

__all__ = ["ArgumentCodec"]

_DETERMINISTIC: Final = (ExtendedJSONSerializer, JSONSerializer, UnsafePickleSerializer)
_INT_LIMIT: Final = 1 << 63
_ENCODER: Final = ExtendedJSONSerializer._encoder
_ESCAPED_DOLLAR: Final = b"\\u0024"


def _c_encoder() -> Callable[[Any], str]:
    """``_ENCODER.encode`` for a dict of scalars, without building json's C encoder on
    every call (what ``JSONEncoder.encode`` does; the plain method if there is none)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or _ENCODER.check_circular or not _ENCODER.ensure_ascii:
        return _ENCODER.encode
    encode = make(
        None, _ENCODER.default, json.encoder.encode_basestring_ascii, _ENCODER.indent,
        _ENCODER.key_separator, _ENCODER.item_separator, _ENCODER.sort_keys,
        _ENCODER.skipkeys, _ENCODER.allow_nan,
    )  # fmt: skip

    def encoded(envelope: Any) -> str:
        return "".join(encode(envelope, 0))

    return encoded


_ENCODE_SCALARS: Final = _c_encoder()


def _positional_frame() -> tuple[str, str, str] | None:
    """The text around positional scalars (no keyword arguments) and between them, as
    ``_ENCODER`` writes it; None if its settings are not the plain ones this assumes."""
    if _ENCODER.indent is not None or not _ENCODER.ensure_ascii:
        return None
    empty = _ENCODE_SCALARS({"v": MESSAGE_VERSION, "args": [], "kwargs": {}})
    head, found, tail = empty.partition("[]")
    return (head + "[", "]" + tail, _ENCODER.item_separator) if found else None


_POSITIONAL: Final = _positional_frame()
_ENCODE_TEXT: Final = json.encoder.encode_basestring_ascii


def _scalar_json(value: Any) -> str:
    """A value :func:`_scalar` accepts, as ``_ENCODER`` writes it."""
    tp = type(value)
    if tp is int:
        return int.__repr__(value)
    if tp is str:
        return _ENCODE_TEXT(value)
    if value is None:
        return "null"
    if tp is bool:
        return "true" if value else "false"
    return float.__repr__(value)  # finite (_scalar)


def _scalar(value: Any) -> bool:
    tp = type(value)
    if tp is str or tp is bool or value is None:
        return True
    if tp is int:
        return bool(-_INT_LIMIT < value < _INT_LIMIT)
    return tp is float and math.isfinite(value)


def _all_scalars(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    for value in args:
        if not _scalar(value):
            return False
    for key, value in kwargs.items():
        if type(key) is not str or key[:1] == "$" or not _scalar(value):
            return False
    return True


class ArgumentCodec:
    """``encode``/``decode`` of call arguments for one serializer (see the module docs)."""

    def __init__(self, serializer: Serializer) -> None:
        self.serializer = serializer
        self._tagged_json = type(serializer) is ExtendedJSONSerializer
        #: One positional scalar (a common call) is written without the checks and the
        #: join of the general scalar path below.
        self._one_scalar = self._tagged_json and _POSITIONAL is not None
        self._empty: bytes | None = None
        if type(serializer) in _DETERMINISTIC:
            self._empty = encode_call_arguments(serializer, task_name="", args=(), kwargs={})

    def encode(self, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        """Like :func:`~jobify_trio.serializers.encode_call_arguments` (same bytes)."""
        if not args and not kwargs and self._empty is not None:
            return self._empty
        if len(args) == 1 and not kwargs and self._one_scalar and _scalar(args[0]):
            head, tail, _ = _POSITIONAL  # type: ignore[misc]  # (not None: _one_scalar)
            return (head + _scalar_json(args[0]) + tail).encode("ascii")
        if self._tagged_json and _all_scalars(args, kwargs):
            if not kwargs and _POSITIONAL is not None:  # no envelope to build and walk
                head, tail, separator = _POSITIONAL
                return (head + separator.join(map(_scalar_json, args)) + tail).encode("ascii")
            envelope = {"v": MESSAGE_VERSION, "args": list(args), "kwargs": kwargs}
            return _ENCODE_SCALARS(envelope).encode("ascii")
        return encode_call_arguments(self.serializer, task_name=task_name, args=args, kwargs=kwargs)

    def decode(self, data: bytes, task_name: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Like :func:`~jobify_trio.serializers.decode_call_arguments` (same values)."""
        if data == self._empty:
            return (), {}
        if self._tagged_json and b'"$' not in data and _ESCAPED_DOLLAR not in data:
            plain = self._decode_plain(data)
            if plain is not None:
                return plain
        return decode_call_arguments(self.serializer, data, task_name=task_name)

    @staticmethod
    def _decode_plain(data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        try:
            message = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError):
            return None  # the general path reports it
        if type(message) is not dict or message.get("v") != MESSAGE_VERSION:
            return None
        args, kwargs = message.get("args"), message.get("kwargs")
        if type(args) is not list or type(kwargs) is not dict:
            return None
        return tuple(args), kwargs
