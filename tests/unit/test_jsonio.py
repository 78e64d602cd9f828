"""bot.jsonio: orjson where it agrees with the standard library, the standard library elsewhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import jsonio

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(json_values)
def test_what_it_writes_reads_back_the_same_through_either_library(value: object) -> None:
    text = jsonio.dumps(value)
    assert json.loads(text) == value
    assert jsonio.loads(text) == value
    assert jsonio.loads(text.encode()) == value


def test_compact_and_non_ascii_as_is() -> None:
    assert jsonio.dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'


class Colour(StrEnum):
    RED = "red"


class Size(IntEnum):
    BIG = 3


def test_what_orjson_would_write_its_own_way_is_written_as_json_does() -> None:
    moment = datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)
    with pytest.raises(TypeError):
        jsonio.dumps({"at": moment})  # refused, as json.dumps refuses it
    assert jsonio.dumps([Colour.RED, Size.BIG]) == '["red",3]'
    assert jsonio.dumps({1: "one", None: 0}) == '{"1":"one","null":0}'
    assert jsonio.dumps(2**70) == str(2**70)


def test_a_lone_surrogate_is_written_escaped_so_a_store_can_take_the_text() -> None:
    text = jsonio.dumps({"line": "a\udcffb"})
    text.encode("utf-8")  # SQLite and every socket need UTF-8: a raw surrogate cannot be
    assert jsonio.loads(text) == {"line": "a\udcffb"}


def test_reads_what_json_reads_and_refuses_what_it_refuses() -> None:
    assert jsonio.loads("12345678901234567890123") == 12345678901234567890123
    assert jsonio.loads(b"[-9223372036854775809]") == [-9223372036854775809]
    assert jsonio.loads('"\\ud800"') == "\ud800"
    assert jsonio.loads('"\ud800"') == "\ud800"  # the character itself, not its escape
    for bad in ("", "{", "[1,]", "{'a': 1}"):
        with pytest.raises(ValueError):
            jsonio.loads(bad)


@pytest.mark.parametrize("text", ["NaN", '{"x": Infinity}', "[-Infinity]", "1e400", "[-1e999]"])
def test_numbers_json_cannot_hold_are_refused_from_outside(text: str) -> None:
    """json.loads takes them, but nothing can write them back as JSON (orjson writes null):
    a body carrying one is refused, not changed on its way through the store."""
    with pytest.raises(ValueError):
        jsonio.loads(text, finite=True)
    jsonio.loads(text)  # a row written before (json.dumps wrote NaN) still reads
