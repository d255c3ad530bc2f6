"""The argument fast paths write the same bytes and read the same values as the general ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobify_trio._storage._arguments import ArgumentCodec
from jobify_trio.serializers import (
    ExtendedJSONSerializer,
    JSONSerializer,
    SerializationError,
    UnsafePickleSerializer,
    decode_call_arguments,
    encode_call_arguments,
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["$x", "a$", "\\u0024", '"$']),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
    ),
    max_leaves=6,
)
kwargs_st = st.dictionaries(st.sampled_from(["a", "b", "$c", "when"]), values, max_size=3)


def _same(codec: ArgumentCodec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    serializer = codec.serializer
    try:
        expected = encode_call_arguments(serializer, task_name="t", args=args, kwargs=kwargs)
    except TypeError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        with pytest.raises(TypeError) as info:
            codec.encode("t", args, kwargs)
        assert str(info.value) == message
        return
    assert codec.encode("t", args, kwargs) == expected
    general = decode_call_arguments(serializer, expected, task_name="t")
    assert repr(codec.decode(expected, "t")) == repr(general)  # repr: nan != nan


@given(args=st.lists(values, max_size=3).map(tuple), kwargs=kwargs_st)
def test_extended_json_fast_paths_match(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _same(ArgumentCodec(ExtendedJSONSerializer()), args, kwargs)


@given(arg=values)
def test_one_positional_argument_matches(arg: Any) -> None:
    """A call with one positional scalar has a path of its own."""
    _same(ArgumentCodec(ExtendedJSONSerializer()), (arg,), {})


@given(args=st.lists(scalars, max_size=3).map(tuple), kwargs=kwargs_st)
def test_other_serializers_match(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _same(ArgumentCodec(JSONSerializer()), args, kwargs)
    _same(ArgumentCodec(UnsafePickleSerializer()), args, kwargs)


def test_empty_call_is_the_general_encoding_and_decodes_to_a_fresh_dict() -> None:
    codec = ArgumentCodec(ExtendedJSONSerializer())
    data = codec.encode("t", (), {})
    assert data == encode_call_arguments(
        ExtendedJSONSerializer(), task_name="t", args=(), kwargs={}
    )
    first, second = codec.decode(data, "t"), codec.decode(data, "t")
    assert first == ((), {})
    assert first[1] is not second[1]


def test_tagged_values_take_the_general_path() -> None:
    codec = ArgumentCodec(ExtendedJSONSerializer())
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    data = codec.encode("t", (moment, (1, 2)), {"k": b"x"})
    assert codec.decode(data, "t") == ((moment, (1, 2)), {"k": b"x"})


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"v":2,"args":[],"kwargs":{}}',
        b'{"args":[]}',
        b'{"v":1,"args":1,"kwargs":{}}',
    ],
)
def test_bad_rows_raise_the_general_error(data: bytes) -> None:
    codec = ArgumentCodec(ExtendedJSONSerializer())
    with pytest.raises(SerializationError) as fast:
        codec.decode(data, "t")
    with pytest.raises(SerializationError) as general:
        decode_call_arguments(ExtendedJSONSerializer(), data, task_name="t")
    assert str(fast.value) == str(general.value)


@pytest.mark.parametrize("c_encoder", [True, False])
@given(args=st.lists(scalars, max_size=3).map(tuple), kwargs=kwargs_st)
def test_the_scalar_encoder_writes_what_json_encoder_encode_writes(
    c_encoder: bool, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Built once from json's C encoder, or ``JSONEncoder.encode`` itself without one."""
    import json

    from jobify_trio._storage import _arguments

    saved = json.encoder.c_make_encoder
    if not c_encoder:
        json.encoder.c_make_encoder = None
    try:
        encode = _arguments._c_encoder()
    finally:
        json.encoder.c_make_encoder = saved
    envelope = {"v": 1, "args": list(args), "kwargs": kwargs}
    try:
        expected = ExtendedJSONSerializer._encoder.encode(envelope)
    except ValueError:  # nan and infinities: the fast path never gets them
        return
    assert encode(envelope) == expected
