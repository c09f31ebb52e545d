"""The strict JSON reader refuses every hostile body with a 400 naming the
field (a ``ValidationError``), never another exception (a 500)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.errors import ValidationError
from reconciler.api.bodies import JSON_DEPTH_MAX, parse_json


def refused(raw: bytes | str) -> ValidationError:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    with pytest.raises(ValidationError) as caught:
        parse_json(data)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        ("[" * 10_000 + "]" * 10_000, "body", "nested deeper"),
        ("[" * (JSON_DEPTH_MAX + 1) + "]" * (JSON_DEPTH_MAX + 1), "body", "nested deeper"),
        ('{"a":' * 40 + "1" + "}" * 40, "body", "nested deeper"),
        ('{"amount_vnd": ' + "9" * 5000 + "}", "body", "more than 20 digits"),
        ('{"amount_vnd": -' + "9" * 21 + "}", "body", "more than 20 digits"),
        ('{"x": 1e999}', "body", "too long or too large"),
        ('{"x": NaN}', "body", "NaN"),
        ('{"x": -Infinity}', "body", "-Infinity"),
        ('{"bank": "a", "bank": "b"}', "bank", "twice"),
        ('{"violator_name": "A\\u0000"}', "violator_name", "U+0000"),
        ('{"violator_name": "A\\ud800"}', "violator_name", "U+D800"),
        ('{"plate": "\\u202e54.321-A92"}', "plate", "U+202E"),
        ('{"plate": "29A\\u200b"}', "plate", "U+200B"),
        ('{"plate": "29A\\nX"}', "plate", "U+000A"),
        ('{"items": [{"name": "\\u2066"}]}', "items[0].name", "U+2066"),
        ('{"\\u0000": 1}', "body", "key"),
        ('{"' + "k" * 101 + '": 1}', "body", "key longer"),
        (b'{"a": "\xff"}', "body", "not UTF-8"),
        ("{", "body", "not valid JSON"),
    ],
)
def test_hostile_json_is_refused_naming_the_field(raw: str | bytes, field: str, says: str) -> None:
    error = refused(raw)
    assert error.field == field
    assert says in str(error)


def test_what_a_person_types_is_read() -> None:
    body = {
        "reason": "Khách hàng gọi điện:\n\tđã chuyển khoản hai lần",
        "violator_name": "Nguyễn Văn Đức",
        "amount_vnd": 10**20 - 1,
        "nested": [[[[1]]]],
    }
    assert parse_json(json.dumps(body).encode()) == body
    deepest = "[" * JSON_DEPTH_MAX + "]" * JSON_DEPTH_MAX
    assert parse_json(deepest.encode()) is not None


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), json_like.map(lambda v: json.dumps(v).encode())))
def test_any_body_is_read_or_refused_never_crashes(raw: bytes) -> None:
    try:
        value: Any = parse_json(raw)
    except ValidationError:
        return
    json.dumps(value)  # what was read is plain JSON again
