"""Tests for jobify_trio.serializers (pure; no trio).

The fixture classes below live at module level so that they are importable as
``test_serializers:Name`` (pytest puts tests/ on sys.path; tests/ is not a package).
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import json
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from enum import Enum, Flag
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobify_trio.exceptions import BaseJobifyError
from jobify_trio.serializers import (
    MESSAGE_VERSION,
    ExtendedJSONSerializer,
    JSONSerializer,
    SerializationError,
    Serializer,
    UnsafePickleSerializer,
    decode_call_arguments,
    encode_call_arguments,
)

# ---------------------------------------------------------------- fixture types


class Color(Enum):
    RED = 1
    GREEN = "green"
    PAIR = (1, "x")


class Perm(Flag):
    R = 1
    W = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: Any
    y: Any = None
    kind: str = dataclasses.field(init=False, default="point")


@dataclasses.dataclass
class Node:
    value: Any
    children: list[Any] = dataclasses.field(default_factory=list)


class Pair(NamedTuple):
    left: Any
    right: Any


@attrs.frozen
class Box:
    _content: Any
    label: Any = None


@attrs.define
class Counter:
    start: Any
    seen: int = attrs.field(init=False, default=0)


@dataclasses.dataclass
class NeedsInitVar:
    x: int
    secret: dataclasses.InitVar[int]


class Plus3(tzinfo):
    """A tzinfo that is neither ``timezone`` nor ``ZoneInfo``."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=3)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "+03"


CALLS: list[object] = []


def trap(*args: object, **kwargs: object) -> None:
    """Stands in for a dangerous callable a tampered row might name."""
    CALLS.append((args, kwargs))


class NotAllowed:
    def __init__(self, *args: object, **kwargs: object) -> None:
        CALLS.append((args, kwargs))


EXT = ExtendedJSONSerializer()

# ---------------------------------------------------------------- strategies

ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]).map(ZoneInfo)
OFFSETS = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(timezone)
TZS = st.none() | st.just(UTC) | OFFSETS | ZONES

HASHABLE_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.builds(lambda bits, low: (1 << bits) + low, st.integers(1000, 20000), st.integers())
    | st.floats(allow_nan=False)
    | st.text()
    | st.text().map(lambda s: "$" + s)
    | st.binary()
    | st.datetimes(timezones=TZS)
    | st.dates()
    | st.times(timezones=st.none() | OFFSETS | ZONES)
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.sampled_from(Color)
    | st.sampled_from([Perm.R, Perm.W, Perm.R | Perm.W, Perm(0)])
)
HASHABLES = st.recursive(
    HASHABLE_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3).map(tuple)
        | st.frozensets(inner, max_size=3)
        | st.builds(Point, inner, inner)
        | st.builds(Pair, inner, inner)
        | st.builds(Box, inner, inner)
    ),
    max_leaves=6,
)
LEAVES = HASHABLES | st.floats() | st.decimals()  # adds nan, inf and Decimal NaN/sNaN


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(HASHABLES, inner, max_size=4)
        | st.dictionaries(st.text(), inner, max_size=4)
        | st.sets(HASHABLES, max_size=4)
        | st.frozensets(HASHABLES, max_size=4)
        | st.builds(Point, inner, inner)
        | st.builds(Node, inner, st.lists(inner, max_size=2))
        | st.builds(Pair, inner, inner)
        | st.builds(Box, inner, inner)
        | st.builds(Counter, inner)
    )


VALUES = st.recursive(LEAVES, _containers, max_leaves=25)


# ---------------------------------------------------------------- exact equality


def _tz_id(tz: Any) -> object:
    if isinstance(tz, ZoneInfo):
        return tz.key
    return None if tz is None else tz.utcoffset(None)


def same(a: Any, b: Any) -> bool:
    """Equal *and* of the same types all the way down (``1 == True`` does not count)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)  # tells -0.0 from 0.0; nan matches nan
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, (datetime, time)):
        same_zone = _tz_id(a.tzinfo) == _tz_id(b.tzinfo)
        return a.isoformat() == b.isoformat() and a.fold == b.fold and same_zone
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        pairs = zip(a.items(), b.items(), strict=False)
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in pairs
        )
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if attrs.has(type(a)):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(type(a)))
    if isinstance(a, Enum):
        return a is b
    return bool(a == b)


def test_same_is_strict() -> None:
    assert same([1, (2.0, {"a": Color.RED})], [1, (2.0, {"a": Color.RED})])
    assert not same(1, True)
    assert not same((1,), [1])
    assert not same(0.0, -0.0)
    assert not same(Decimal("1.0"), Decimal("1.00"))
    assert not same({1: "a", 2: "b"}, {2: "b", 1: "a"})  # insertion order is kept too
    assert not same(Point(1), Point(2))


# ---------------------------------------------------------------- round trips


@given(VALUES)
def test_extended_json_round_trips_every_supported_type(value: Any) -> None:
    data = EXT.dumpb(value)
    back = EXT.loadb(data)
    assert same(back, value)
    assert EXT.dumpb(back) == data  # stable: decoding then re-encoding gives the same bytes
    json.loads(data, parse_constant=pytest.fail)  # standard JSON: no NaN/Infinity tokens
    assert data.isascii()


@given(
    st.lists(VALUES, max_size=4).map(tuple),
    st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), VALUES, max_size=4),
)
def test_call_arguments_round_trip(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    data = encode_call_arguments(EXT, task_name="m:f", args=args, kwargs=kwargs)
    back_args, back_kwargs = decode_call_arguments(EXT, data, task_name="m:f")
    assert same(back_args, args)
    assert same(back_kwargs, kwargs)


def test_specific_values_round_trip() -> None:
    paris = ZoneInfo("Europe/Paris")
    values = [
        10**5000,
        -(10**5000),
        datetime(2024, 10, 27, 2, 30, tzinfo=paris, fold=1),  # ambiguous hour, second pass
        datetime(2024, 3, 31, 2, 30, tzinfo=paris),  # imaginary hour
        datetime(2024, 1, 1, 12, 0),  # naive
        datetime(2024, 1, 1, fold=1),
        time(23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-3, seconds=7))),
        timedelta(days=999999999, seconds=86399, microseconds=999999),  # exact, not a float
        Decimal("-0E-30"),
        Decimal("sNaN"),
        Perm.R | Perm.W,
        Counter(start=[1]),
    ]
    for value in values:
        assert same(EXT.loadb(EXT.dumpb(value)), value), value


def test_non_init_fields_are_restored() -> None:
    counter = Counter(start=1)
    counter.seen = 5
    assert EXT.loadb(EXT.dumpb(counter)).seen == 5


def test_other_tzinfo_is_kept_as_its_fixed_offset() -> None:
    value = datetime(2024, 1, 1, tzinfo=Plus3())
    back = EXT.loadb(EXT.dumpb(value))
    assert back == value
    assert back.utcoffset() == timedelta(hours=3)


# ---------------------------------------------------------------- wire format


def test_wire_format_is_the_documented_one() -> None:
    value = {"a": (1, b"\x00"), 2: {Color.RED}, "n": float("nan")}
    data = encode_call_arguments(EXT, task_name="m:f", args=(value,), kwargs={"k": None})
    assert data == (
        b'{"v":1,"args":[{"$dict":[["a",{"$tuple":[1,{"$bytes":"AA=="}]}],'
        b'[2,{"$set":[{"$enum":["test_serializers:Color",1]}]}],'
        b'["n",{"$float":"nan"}]]}],"kwargs":{"k":null}}'
    )
    assert MESSAGE_VERSION == 1


def test_set_encoding_does_not_depend_on_hash_seed() -> None:
    code = "from jobify_trio.serializers import *; print(ExtendedJSONSerializer().dumpb(%s))"
    value = "{frozenset({'a', 'b', 'c', 'd'}), 'e', 'f', ('g', 'h')}"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code % value],
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(Path.cwd())},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


# ---------------------------------------------------------------- tag collisions


@pytest.mark.parametrize(
    "value",
    [
        {"$tuple": [1, 2]},
        {"$dataclass": ["os:system", {"command": "true"}]},
        {"$dict": []},
        {"$": 1, "x": 2},
        [{"$set": []}],
        {"plain": {"$float": "nan"}},
    ],
)
def test_user_dict_with_tag_keys_stays_a_dict(value: Any) -> None:
    assert same(EXT.loadb(EXT.dumpb(value)), value)


@given(st.dictionaries(st.text().map(lambda s: "$" + s), VALUES, max_size=3))
def test_any_dollar_keyed_dict_round_trips(value: dict[str, Any]) -> None:
    assert same(EXT.loadb(EXT.dumpb(value)), value)


@pytest.mark.parametrize(
    "data",
    [
        b'{"$tuple":[1],"x":2}',
        b'{"$nope":1}',
        b'{"$tuple":"abc"}',
        b'{"$float":"1.5"}',
        b'{"$bytes":"!!"}',
        b'{"$timedelta":[1,2]}',
        b'{"$set":[[1]]}',
        b'{"$datetime":["2024-01-01T00:00:00","../../etc/passwd",0]}',
        b'{"$enum":["test_serializers:Color",99]}',
        b"[1,",
        b"\xff",
    ],
)
def test_malformed_payloads_raise_serialization_error(data: bytes) -> None:
    with pytest.raises(SerializationError):
        EXT.loadb(data)


# ---------------------------------------------------------------- safety on load


@pytest.mark.parametrize(
    ("tag", "ref", "message"),
    [
        ("$dataclass", "test_serializers:trap", "does not name a class"),
        ("$dataclass", "test_serializers:NotAllowed", "is not a dataclass"),
        ("$attrs", "test_serializers:NotAllowed", "is not an attrs class"),
        ("$namedtuple", "test_serializers:NotAllowed", "is not a NamedTuple"),
        ("$enum", "test_serializers:NotAllowed", "is not an Enum"),
        ("$dataclass", "os:system", "does not name a class"),
        ("$enum", "builtins:eval", "does not name a class"),
        ("$dataclass", "subprocess:Popen", "is not a dataclass"),
        ("$dataclass", "test_serializers:trap.__globals__", "does not name a class"),
        ("$dataclass", "os:system()", "malformed class reference"),
        ("$dataclass", "test_serializers.<locals>:X", "malformed class reference"),
    ],
)
def test_tampered_class_reference_is_rejected_without_calling_it(
    tag: str, ref: str, message: str
) -> None:
    CALLS.clear()
    payload = {tag: [ref, {"command": "echo pwned"} if tag != "$enum" else "echo pwned"]}
    data = json.dumps({"v": 1, "args": [payload], "kwargs": {}}).encode()
    with pytest.raises(SerializationError, match=message) as info:
        decode_call_arguments(EXT, data, task_name="m:f")
    assert "task 'm:f'" in str(info.value)
    assert CALLS == []


def _fresh_module(tmp_path: Path, monkeypatch: Any, name: str) -> Any:
    (tmp_path / f"{name}.py").write_text(
        "import dataclasses\n@dataclasses.dataclass\nclass Thing:\n    x: int\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


def test_stored_data_cannot_import_a_module_by_default(tmp_path: Path, monkeypatch: Any) -> None:
    module = _fresh_module(tmp_path, monkeypatch, "jt_fresh_module")
    data = EXT.dumpb(module.Thing(3))
    monkeypatch.delitem(sys.modules, "jt_fresh_module")
    for serializer in (EXT, ExtendedJSONSerializer(), ExtendedJSONSerializer(import_modules=False)):
        with pytest.raises(SerializationError, match="is not imported"):
            serializer.loadb(data)
        assert "jt_fresh_module" not in sys.modules
    back = ExtendedJSONSerializer(import_modules=True).loadb(data)  # the explicit opt-in
    assert "jt_fresh_module" in sys.modules
    assert type(back).__qualname__ == "Thing"
    assert back.x == 3


def test_a_registered_class_decodes_without_its_module_imported(
    tmp_path: Path, monkeypatch: Any
) -> None:
    module = _fresh_module(tmp_path, monkeypatch, "jt_registered_module")
    serializer = ExtendedJSONSerializer([module.Thing])
    data = serializer.dumpb(module.Thing(4))
    monkeypatch.delitem(sys.modules, "jt_registered_module")
    back = serializer.loadb(data)
    assert type(back) is module.Thing
    assert "jt_registered_module" not in sys.modules


def test_decoding_refuses_a_reference_that_resolves_to_another_class_than_the_registered(
    tmp_path: Path, monkeypatch: Any
) -> None:
    module = _fresh_module(tmp_path, monkeypatch, "jt_redefined_module")
    serializer = ExtendedJSONSerializer([module.Thing])
    data = serializer.dumpb(module.Thing(5))
    CALLS.clear()

    @dataclasses.dataclass
    class Impostor:
        x: int

        def __post_init__(self) -> None:
            CALLS.append("impostor")

    Impostor.__module__, Impostor.__qualname__ = module.__name__, "Thing"
    monkeypatch.setattr(module, "Thing", Impostor)
    with pytest.raises(SerializationError, match="not the registered class"):
        serializer.loadb(data)
    assert CALLS == []


def test_encoding_refuses_a_class_whose_name_now_resolves_to_another_class(
    tmp_path: Path, monkeypatch: Any
) -> None:
    module = _fresh_module(tmp_path, monkeypatch, "jt_renamed_module")
    old = module.Thing
    assert EXT.loadb(EXT.dumpb(old(1))) == old(1)  # encoded once: its encoder is cached
    redefined = dataclasses.make_dataclass("Thing", ["x"])
    redefined.__module__ = module.__name__
    monkeypatch.setattr(module, "Thing", redefined)
    with pytest.raises(TypeError, match=r"jt_renamed_module\.Thing: that name now refers"):
        EXT.dumpb(old(2))
    fresh = dataclasses.make_dataclass("Thing", ["x"])  # never encoded before
    fresh.__module__ = module.__name__
    with pytest.raises(TypeError, match=r"jt_renamed_module\.Thing: it is not importable"):
        EXT.dumpb(fresh(3))
    assert EXT.loadb(EXT.dumpb(redefined(4))) == redefined(4)


# ---------------------------------------------------------------- encode errors


def test_local_classes_are_rejected_at_encode_time() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    class LocalEnum(Enum):
        A = 1

    class LocalPair(NamedTuple):
        a: int

    for value in (Local(1), LocalEnum.A, LocalPair(1), [Box(Local(1))]):
        with pytest.raises(TypeError, match="defined inside a function"):
            EXT.dumpb(value)
    with pytest.raises(TypeError, match=r"task 'm:f': argument 'item'.*defined inside"):
        encode_call_arguments(EXT, task_name="m:f", args=(), kwargs={"item": Local(1)})
    with pytest.raises(TypeError, match="defined inside a function"):
        ExtendedJSONSerializer([Local])


def test_class_not_importable_by_its_name_is_rejected() -> None:
    made = dataclasses.make_dataclass("Made", ["x"])
    made.__module__ = __name__  # claims this module, which has no attribute Made
    with pytest.raises(TypeError, match=r"serializers\.Made: it is not importable"):
        EXT.dumpb(made(1))


@pytest.mark.parametrize(
    "value",
    [
        object(),
        collections.OrderedDict(a=1),
        bytearray(b"x"),
        1j,
        lambda: None,
        NeedsInitVar(1, 2),
        time(1, tzinfo=Plus3()),
    ],
)
def test_unsupported_values_raise_type_error(value: Any) -> None:
    with pytest.raises(TypeError, match="cannot encode"):
        EXT.dumpb(value)


def test_reference_cycle_raises_type_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="reference cycle"):
        EXT.dumpb(loop)
    with pytest.raises(TypeError, match=r"task 'm:f': positional argument 0 of type list"):
        encode_call_arguments(EXT, task_name="m:f", args=(loop,), kwargs={})


def test_type_error_names_task_argument_type_and_path() -> None:
    with socket.socket() as sock:
        with pytest.raises(TypeError) as info:
            encode_call_arguments(EXT, task_name="mod:f", args=(1,), kwargs={"when": sock})
        assert str(info.value).startswith(
            "task 'mod:f': argument 'when' of type socket.socket cannot be stored: "
        )
        with pytest.raises(TypeError) as info:
            encode_call_arguments(
                EXT, task_name="mod:f", args=("a", [1, {"k": Pair(1, sock)}]), kwargs={}
            )
        assert str(info.value).startswith(
            "task 'mod:f': positional argument 1 of type list cannot be stored: "
            "at args[1][1]['k'].right: cannot encode a value of type socket.socket"
        )


def test_type_error_for_other_serializers() -> None:
    with pytest.raises(TypeError, match=r"task 'm:f': argument 'x' of type tuple .*not plain JSON"):
        encode_call_arguments(JSONSerializer(), task_name="m:f", args=(), kwargs={"x": (1,)})
    with pytest.raises(TypeError, match=r"task 'm:f': positional argument 0 of type function"):
        encode_call_arguments(
            UnsafePickleSerializer(), task_name="m:f", args=(lambda: 1,), kwargs={}
        )


# ---------------------------------------------------------------- envelope and versions


def test_unknown_version_is_named() -> None:
    for data in (b'{"v":2,"args":[],"kwargs":{}}', b'{"v":7,"args":[{"$new-tag":1}],"kwargs":{}}'):
        with pytest.raises(
            SerializationError, match=r"task 'm:f'.*version (2|7); .*reads version 1"
        ):
            decode_call_arguments(EXT, data, task_name="m:f")


@pytest.mark.parametrize(
    "data",
    [b"[1]", b'{"args":[],"kwargs":{}}', b'{"v":1,"args":{},"kwargs":{}}', b'{"v":1,"args":[]}'],
)
def test_malformed_envelope(data: bytes) -> None:
    with pytest.raises(SerializationError, match="task 'm:f'"):
        decode_call_arguments(EXT, data, task_name="m:f")


def test_class_changed_since_storage() -> None:
    stored = (
        b'{"v":1,"args":[{"$dataclass":["test_serializers:Point",{"x":1,"gone":2}]}],"kwargs":{}}'
    )
    with pytest.raises(SerializationError, match="'gone' is not a field"):
        decode_call_arguments(EXT, stored, task_name="m:f")
    stored = b'{"v":1,"args":[{"$dataclass":["test_serializers:Point",{"y":1}]}],"kwargs":{}}'
    with pytest.raises(SerializationError, match="cannot rebuild test_serializers:Point"):
        decode_call_arguments(EXT, stored, task_name="m:f")
    missing = b'{"v":1,"args":[{"$enum":["test_serializers:Gone",1]}],"kwargs":{}}'
    with pytest.raises(SerializationError, match="does not name a class"):
        decode_call_arguments(EXT, missing, task_name="m:f")


# ---------------------------------------------------------------- other serializers

PLAIN_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(PLAIN_JSON)
def test_json_serializer_round_trips_plain_json(value: Any) -> None:
    data = JSONSerializer().dumpb(value)
    assert same(JSONSerializer().loadb(data), value)
    assert same(json.loads(data), value)


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1: "a"},
        float("nan"),
        float("inf"),
        b"x",
        Color.RED,
        {1},
        datetime(2024, 1, 1),
        [{"a": (1,)}],
    ],
)
def test_json_serializer_rejects_what_would_not_round_trip(value: Any) -> None:
    with pytest.raises(TypeError):
        JSONSerializer().dumpb(value)


def test_json_serializer_load_errors() -> None:
    for data in (b"NaN", b"{", b"\xff"):
        with pytest.raises(SerializationError):
            JSONSerializer().loadb(data)


def test_pickle_serializer_round_trips_and_wraps_errors() -> None:
    pickled = UnsafePickleSerializer()
    data = encode_call_arguments(pickled, task_name="t", args=(1j,), kwargs={"p": Point(1)})
    assert decode_call_arguments(pickled, data, task_name="t") == ((1j,), {"p": Point(1)})
    with pytest.raises(SerializationError, match="task 't'"):
        decode_call_arguments(pickled, b"not a pickle", task_name="t")
    assert "UNSAFE" in (UnsafePickleSerializer.__doc__ or "")


class Reversed:
    """A structural serializer that does not subclass Serializer."""

    def dumpb(self, data: Any, /) -> bytes:
        return JSONSerializer().dumpb(data)[::-1]

    def loadb(self, data: bytes, /) -> Any:
        if not data:
            raise KeyError("empty")
        return JSONSerializer().loadb(data[::-1])


def test_custom_serializer_plugs_in() -> None:
    custom = Reversed()
    assert isinstance(custom, Serializer)
    for serializer in (EXT, JSONSerializer(), UnsafePickleSerializer()):
        assert isinstance(serializer, Serializer)
    data = encode_call_arguments(custom, task_name="t", args=(1, "a"), kwargs={"b": [2]})
    assert decode_call_arguments(custom, data, task_name="t") == ((1, "a"), {"b": [2]})
    with pytest.raises(SerializationError, match="task 't': stored arguments cannot be decoded"):
        decode_call_arguments(custom, b"", task_name="t")


def test_error_class() -> None:
    assert issubclass(SerializationError, BaseJobifyError)
    assert issubclass(SerializationError, ValueError)


def test_registry_is_checked_up_front() -> None:
    ExtendedJSONSerializer([Point, Color, Pair, Box, int])
    with pytest.raises(TypeError, match="cannot encode"):
        ExtendedJSONSerializer([socket.socket])


def test_uuid_and_bytes_subclass_free_paths() -> None:
    value = {"id": uuid.UUID(int=5), "d": date(1, 1, 1), "raw": b"\x00" * 3}
    assert same(EXT.loadb(EXT.dumpb(value)), value)
