"""The API's parameter readers refuse hostile values with a 400 naming the
parameter, and read valid ones as before."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ledger.core.errors import ValidationError
from reconciler.api import params

HOSTILE = ["²", "１", "9" * 5000, "-1", "0x10", " 1", "1 ", "\x00", "1\x00", "+1", "1_0", "1.0"]


def _path(name: str, value: str) -> web.Request:
    return make_mocked_request("GET", "/x", match_info={name: value})


def _query(query: str) -> web.Request:
    return make_mocked_request("GET", f"/x?{query}")


@pytest.mark.parametrize("raw", HOSTILE)
def test_a_path_id_is_ascii_digits_only(raw: str) -> None:
    with pytest.raises(ValidationError) as caught:
        params.path_id(_path("dispute_id", raw), "dispute_id")
    assert caught.value.field == "dispute_id"
    assert "dispute_id" in str(caught.value)


@pytest.mark.parametrize("raw", HOSTILE)
def test_a_query_number_is_ascii_digits_only(raw: str) -> None:
    request = make_mocked_request("GET", "/x")
    # A query string cannot carry every hostile value unescaped; set it directly.
    request = request.clone(rel_url=request.rel_url.with_query({"limit": raw, "cursor": raw}))
    for read, name in (
        (lambda: params.page_limit(request, 500), "limit"),
        (lambda: params.cursor_before(request), "cursor"),
        (lambda: params.cursor_after(request), "cursor"),
    ):
        with pytest.raises(ValidationError) as caught:
            read()
        assert caught.value.field == name


def test_valid_numbers_read_as_before() -> None:
    assert params.path_id(_path("id", "0"), "id") == 0
    assert params.path_id(_path("id", "007"), "id") == 7
    assert params.path_id(_path("id", "9" * 18), "id") == 10**18 - 1
    request = _query("limit=500&cursor=1000000000000000000&after_id=3")
    assert params.page_limit(request, 500) == 500
    assert params.cursor_before(request) == 10**18
    assert params.query_after_id(request) == 3
    assert params.path_number(_path("number", "999999999"), "number", 1, 10**9 - 1) == 10**9 - 1


def test_absent_or_empty_is_the_default() -> None:
    for request in (_query(""), _query("limit=&cursor=")):
        assert params.page_limit(request, 100) == params.PAGE_SIZE_DEFAULT
        assert params.page_limit(request, 100, default=7) == 7
        assert params.cursor_before(request) is None
        assert params.cursor_after(request) == 0


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=0", "cursor"),
        ("cursor=1000000000000000001", "cursor"),
        ("cursor=99999999999999999999", "cursor"),
    ],
)
def test_numbers_out_of_bounds_are_refused(query: str, name: str) -> None:
    request = _query(query)
    with pytest.raises(ValidationError) as caught:
        params.page_limit(request, 500)
        params.cursor_before(request)
    assert caught.value.field == name


def test_an_id_longer_than_a_bigint_is_refused() -> None:
    with pytest.raises(ValidationError):
        params.path_id(_path("id", "1" + "0" * 18), "id")


@pytest.mark.parametrize(
    "value",
    [
        "20240101",
        "2024-W01-1",
        "２０２４-01-01",
        "2024-1-1",
        " 2024-01-01",
        "2024-01-01\x00",
        "2024-02-30",
        "1999-12-31",
        "2100-01-01",
        "0001-01-01",
        "9" * 5000,
        None,
        20240101,
    ],
)
def test_a_date_is_yyyy_mm_dd_in_a_sane_range(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        params.parse_date(value, "statement_date")
    assert caught.value.field == "statement_date"


def test_a_valid_date_reads_as_before() -> None:
    assert params.parse_date("2024-02-29", "d") == date(2024, 2, 29)
    assert params.parse_date("2000-01-01", "d") == params.DATE_MIN


@pytest.mark.parametrize("raw", ["１" * 32, "x" * 5000, "not-a-uuid", "\x00", ""])
def test_a_path_uuid_is_ascii(raw: str) -> None:
    with pytest.raises(ValidationError) as caught:
        params.path_uuid(_path("payment_id", raw), "payment_id", "a payment id")
    assert caught.value.field == "payment_id"


def test_a_valid_uuid_reads_in_its_usual_spellings() -> None:
    value = UUID("12345678-1234-5678-1234-567812345678")
    for raw in (str(value), value.hex, f"{{{value}}}", f"urn:uuid:{value}"):
        assert params.path_uuid(_path("payment_id", raw), "payment_id", "a payment id") == value
