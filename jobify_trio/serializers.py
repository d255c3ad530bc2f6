"""Serializers that turn job arguments into bytes for storage, and back.

A serializer has Jobify's two methods, ``dumpb(value) -> bytes`` and
``loadb(data) -> value``. Storage does not call them directly: it calls
:func:`encode_call_arguments` when a durable job is scheduled (a ``TypeError`` there
names the task and the argument) and :func:`decode_call_arguments` when it restores
one (a :class:`SerializationError` there names the task and what failed). Both wrap
the arguments in a versioned envelope ``{"v": 1, "args": [...], "kwargs": {...}}``.

The default, :class:`ExtendedJSONSerializer`, is safe to load: see
``docs/serialization.rst`` for its wire format and guarantees.
"""

from __future__ import annotations

import json
import math
import pickle
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any, Final, Protocol, runtime_checkable

from jobify_trio._core import _codec
from jobify_trio._core._decode import TreeDecoder
from jobify_trio.exceptions import BaseJobifyError

__all__ = [
    "MESSAGE_VERSION",
    "ExtendedJSONSerializer",
    "JSONSerializer",
    "SerializationError",
    "Serializer",
    "UnsafePickleSerializer",
    "decode_call_arguments",
    "encode_call_arguments",
]

#: Version of the envelope written by :func:`encode_call_arguments`.
MESSAGE_VERSION: Final = 1


class SerializationError(BaseJobifyError, ValueError):
    """Stored bytes could not be turned back into values; the message says what failed."""


@runtime_checkable
class Serializer(Protocol):
    """Turns a value into bytes and back (Jobify's interface).

    ``dumpb`` raises ``TypeError`` for a value it cannot store. ``loadb`` should raise
    :class:`SerializationError` for bytes it cannot read (other exceptions are wrapped
    by :func:`decode_call_arguments`). Subclass it or just provide the two methods.
    """

    @abstractmethod
    def dumpb(self, data: Any, /) -> bytes:
        """Serialize ``data`` to bytes; ``TypeError`` if it cannot be stored."""

    @abstractmethod
    def loadb(self, data: bytes, /) -> Any:
        """Deserialize bytes produced by :meth:`dumpb`."""


class JSONSerializer(Serializer):
    """Plain JSON (UTF-8), for rows a human or another program can read.

    Stores exactly ``None``, ``bool``, ``int``, finite ``float``, ``str``, ``list`` and
    ``dict`` with ``str`` keys, and raises ``TypeError`` for anything else -- including
    tuples and non-``str`` keys, which :func:`json.dumps` would silently turn into lists
    and strings.
    """

    _encoder: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

    def dumpb(self, data: Any, /) -> bytes:
        """Encode ``data`` as JSON; ``TypeError`` if it is not plain JSON."""
        _check(_check_plain_json, data)
        try:
            return self._encoder.encode(data).encode("utf-8")
        except (ValueError, UnicodeEncodeError) as exc:  # huge int, lone surrogate
            raise TypeError(f"cannot encode as JSON: {exc}") from exc

    def loadb(self, data: bytes, /) -> Any:
        """Decode JSON; :class:`SerializationError` if it is not valid plain JSON."""
        try:
            return json.loads(data, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise SerializationError(f"invalid JSON: {exc}") from exc


class ExtendedJSONSerializer(Serializer):
    """The default: tagged JSON that round-trips many Python types and is safe to load.

    Loading never unpickles and never calls anything except the constructor of a class
    that was verified to be an Enum, dataclass, attrs class or NamedTuple. Such a class is
    found (by ``module:qualname``) only among the classes in ``registry`` and in modules
    that are already imported, so stored data cannot make the app import a module.
    ``import_modules=True`` restores the old behaviour: a module named by stored data is
    imported if it is not yet (that runs its top-level code).

    ``registry`` (Jobify's argument): classes checked up front to be storable, and found
    by decoding even if their module is not imported; a stored reference that resolves to
    another class of the same name than the registered one is refused.
    """

    _encoder: Final = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=True, allow_nan=False, check_circular=False
    )

    def __init__(self, registry: Iterable[type] = (), *, import_modules: bool = False) -> None:
        registered: dict[str, type] = {}
        for tp in registry:
            _codec.check_class(tp)
            ref = _codec.registered_ref(tp)
            if ref is not None:
                registered[ref] = tp
        self._decoder = json.JSONDecoder(
            object_hook=TreeDecoder(import_modules=import_modules, registered=registered)
        )

    def dumpb(self, data: Any, /) -> bytes:
        """Encode ``data``; ``TypeError`` naming the type if something is not supported."""
        tree = _check(_codec.to_tree, data)
        return self._encoder.encode(tree).encode("ascii")

    def loadb(self, data: bytes, /) -> Any:
        """Decode bytes from :meth:`dumpb`; :class:`SerializationError` says what failed."""
        try:
            return self._decoder.decode(data.decode("utf-8"))
        except Exception as exc:
            raise SerializationError(f"cannot decode stored value: {exc}") from exc


class UnsafePickleSerializer(Serializer):
    """Pickle. **UNSAFE**: loading runs arbitrary code chosen by whoever wrote the bytes.

    Use it only when every writer of your job store is trusted as much as your own code
    (anyone who can modify the database can then run code in your workers), and only if
    you need types the JSON serializers cannot store. Pickled rows also break when the
    pickled classes are renamed or moved. Prefer :class:`ExtendedJSONSerializer`.
    """

    def dumpb(self, data: Any, /) -> bytes:
        """Pickle ``data`` (protocol 5); ``TypeError`` if it cannot be pickled."""
        try:
            return pickle.dumps(data, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(f"cannot pickle: {exc}") from exc

    def loadb(self, data: bytes, /) -> Any:
        """Unpickle ``data``. Runs whatever code the bytes ask for."""
        try:
            return pickle.loads(data)  # the whole point of this class
        except Exception as exc:
            raise SerializationError(f"cannot unpickle stored value: {exc}") from exc


def _check(function: Any, data: Any) -> Any:
    try:
        return function(data)
    except RecursionError:
        raise TypeError("value nests too deeply or contains a reference cycle") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not plain JSON")


# ---------------------------------------------------------------- call arguments


def encode_call_arguments(
    serializer: Serializer, *, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> bytes:
    """Serialize a task call's arguments in the versioned envelope.

    Raises ``TypeError`` naming the task, the argument (position or keyword), its type,
    and where inside it the unsupported value is, e.g. ``task 'app:send': argument
    'when' of type list cannot be stored: at when[2]: cannot encode a value of type
    socket.socket; ...``. Any exception from ``serializer.dumpb`` is reported this way.
    """
    envelope = {"v": MESSAGE_VERSION, "args": list(args), "kwargs": dict(kwargs)}
    try:
        return serializer.dumpb(envelope)
    except Exception as exc:
        raise _explain(serializer, task_name, args, kwargs, exc) from exc


def decode_call_arguments(
    serializer: Serializer, data: bytes, *, task_name: str
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` from bytes written by :func:`encode_call_arguments`.

    Raises :class:`SerializationError` naming the task and what failed: unreadable
    bytes, a missing or unknown class, or an envelope version this release cannot read.
    """
    try:
        message = serializer.loadb(data)
    except Exception as exc:
        version = _sniff_version(data)
        if version is not None and version != MESSAGE_VERSION:
            raise _version_error(task_name, version) from exc
        raise SerializationError(
            f"task {task_name!r}: stored arguments cannot be decoded: {exc}"
        ) from exc
    if not isinstance(message, dict) or "v" not in message:
        raise SerializationError(f"task {task_name!r}: stored arguments have no envelope")
    if message["v"] != MESSAGE_VERSION:
        raise _version_error(task_name, message["v"])
    args, kwargs = message.get("args"), message.get("kwargs")
    if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
        raise SerializationError(f"task {task_name!r}: stored envelope is malformed")
    if not all(isinstance(key, str) for key in kwargs):
        raise SerializationError(f"task {task_name!r}: stored keyword names are not strings")
    return tuple(args), kwargs


def _version_error(task_name: str, version: object) -> SerializationError:
    return SerializationError(
        f"task {task_name!r}: stored arguments use message format version {version!r:.40}; "
        f"this jobify_trio reads version {MESSAGE_VERSION}"
    )


def _sniff_version(data: bytes) -> object:
    """The ``v`` of a JSON envelope, read without decoding its contents (error path only)."""
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return message.get("v") if isinstance(message, dict) else None


def _explain(
    serializer: Serializer,
    task_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    exc: Exception,
) -> TypeError:
    named = [(f"positional argument {i}", f"args[{i}]", v) for i, v in enumerate(args)]
    named += [(f"argument {k!r}", k, v) for k, v in kwargs.items()]
    for label, path, value in named:
        error = _dump_error(serializer, value)
        if error is not None:
            where, culprit_error = _locate(serializer, value, path, error)
            return TypeError(
                f"task {task_name!r}: {label} of type {_codec.type_name(type(value))} "
                f"cannot be stored: {where}{culprit_error}"
            )
    return TypeError(f"task {task_name!r}: arguments cannot be stored: {exc}")


def _locate(
    serializer: Serializer, value: Any, path: str, error: Exception
) -> tuple[str, Exception]:
    """Descend to the innermost value that still fails; ``("at path: ", its error)``."""
    start, seen = path, {id(value)}
    while True:
        for label, child in _codec.children(value):
            child_error = _dump_error(serializer, child) if id(child) not in seen else None
            if child_error is not None:
                path, value, error = path + label, child, child_error
                seen.add(id(child))
                break
        else:
            return ("" if path == start else f"at {path}: "), error


def _dump_error(serializer: Serializer, value: Any) -> Exception | None:
    try:
        serializer.dumpb(value)
    except Exception as exc:
        return exc
    return None


def _check_plain_json(value: Any) -> None:
    """``TypeError`` unless ``value`` is exactly JSON: it must round-trip unchanged."""
    tp = type(value)
    if tp is str or tp is int or tp is bool or value is None:
        return
    if tp is float:
        if not math.isfinite(value):
            raise TypeError(f"float {value!r} is not valid JSON")
    elif tp is list:
        for item in value:
            _check_plain_json(item)
    elif tp is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(
                    f"dict key {key!r:.60} is a {_codec.type_name(type(key))}, not a str"
                )
            _check_plain_json(item)
    else:
        raise TypeError(
            f"a value of type {_codec.type_name(tp)} is not plain JSON (JSONSerializer stores only "
            "None, bool, int, float, str, list and dict with str keys; "
            "use ExtendedJSONSerializer for more types)"
        )
