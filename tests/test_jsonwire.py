"""The strict JSON reader: what JSON allows reads back unchanged; what it does not is a 400 naming where."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from pete_mcp.core import InputError, JsonInputError, loads_strict, parse_model

finite = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=25,
)


@given(value=finite)
def test_everything_json_allows_reads_back_unchanged(value: Any) -> None:
    assert loads_strict(json.dumps(value).encode()) == value


@pytest.mark.parametrize(
    ("raw", "message", "path"),
    [
        (b'{"temperature": NaN}', "NaN is not a JSON number at temperature.", "temperature"),
        (b'{"a": [1, -Infinity]}', "-Infinity is not a JSON number at a.1.", "a.1"),
        (b'{"t": 1e400}', "1e400 is too large for a finite number at t.", "t"),
        (b'{"seed": 9223372036854775808}', "the integer 9223372036854775808 does not fit in 64 bits at seed.", "seed"),
        # orjson, which reads bodies first, takes these as floats: the strict reader must not.
        (b'{"s": -9223372036854775809}', "the integer -9223372036854775809 does not fit in 64 bits at s.", "s"),
        (b'{"s": [18446744073709551616]}', "the integer 18446744073709551616 does not fit in 64 bits at s.0.", "s.0"),
        (b'{"s": 18446744073709551615}', "the integer 18446744073709551615 does not fit in 64 bits at s.", "s"),
        (b'{"m": ["\\ud800"]}', "a string at m.0 holds a lone UTF-16 surrogate (not text).", "m.0"),
        (b'{"x": "\xff"}', "the request body is not UTF-8 (invalid byte at offset 7).", ""),
    ],
)
def test_what_json_does_not_allow_is_refused_naming_the_field(raw: bytes, message: str, path: str) -> None:
    with pytest.raises(JsonInputError) as caught:
        loads_strict(raw)
    assert str(caught.value) == message
    assert caught.value.path == path
    assert caught.value.status == 400


def test_nesting_past_64_levels_is_refused_and_64_is_not() -> None:
    assert loads_strict(b"[" * 64 + b"]" * 64) is not None
    with pytest.raises(JsonInputError, match="nested deeper than 64 levels"):
        loads_strict(b"[" * 65 + b"]" * 65)
    with pytest.raises(JsonInputError, match="nested deeper than 64 levels"):
        loads_strict(b"[" * 200_000 + b"]" * 200_000)  # past the parser's own recursion limit


def test_a_body_with_a_bom_or_a_large_float_reads_as_the_standard_library_reads_it() -> None:
    assert loads_strict("\ufeff".encode() + b'{"a": 1}') == {"a": 1}
    assert loads_strict(b'{"f": 9.3e18, "g": -1e300, "i": -9223372036854775808}') == {
        "f": 9.3e18,
        "g": -1e300,
        "i": -(2**63),
    }


class Body(BaseModel):
    model: str
    max_tokens: int = 1


def test_parse_model_names_every_wrong_field() -> None:
    with pytest.raises(InputError) as caught:
        parse_model(Body, b'{"max_tokens": "many"}')
    assert str(caught.value) == (
        "invalid request: model: Field required; max_tokens: Input should be a valid integer, "
        "unable to parse string as an integer."
    )
