"""Every bank status maps to one result, and only the ones that prove
nothing moved map to ``Declined``."""

from __future__ import annotations

import pytest

from bank_adapters.rest_bank import map_rest_status
from bank_adapters.types import Declined, OutcomeUnknown, Pending, Succeeded
from bank_adapters.vietqr_bank import map_iso8583
from bank_adapters.wire import Iso8583Response, RestStatus

REST_EXPECTED = {
    RestStatus.ACCEPTED_TECHNICAL: Pending,
    RestStatus.ACCEPTED_IN_PROCESS: Pending,
    RestStatus.PENDING: Pending,
    RestStatus.ACCEPTED_SETTLED: Succeeded,
    RestStatus.ACCEPTED_CREDITED: Succeeded,
    RestStatus.REJECTED: Declined,
}
ISO8583_EXPECTED = {
    Iso8583Response.APPROVED: Succeeded,
    Iso8583Response.IN_PROGRESS: Pending,
    Iso8583Response.DO_NOT_HONOR: Declined,
    Iso8583Response.INVALID_ACCOUNT: Declined,
    Iso8583Response.INSUFFICIENT_FUNDS: Declined,
    Iso8583Response.EXCEEDS_LIMIT: Declined,
    Iso8583Response.RESTRICTED_ACCOUNT: Declined,
    Iso8583Response.LATE_RESPONSE: OutcomeUnknown,
    Iso8583Response.ISSUER_UNAVAILABLE: OutcomeUnknown,
    Iso8583Response.DUPLICATE_TRANSMISSION: OutcomeUnknown,
    Iso8583Response.SYSTEM_MALFUNCTION: OutcomeUnknown,
}


def test_every_status_is_listed_here() -> None:
    # A new wire status must be classified on purpose, here and in the adapter.
    assert set(REST_EXPECTED) == set(RestStatus)
    assert set(ISO8583_EXPECTED) == set(Iso8583Response)


@pytest.mark.parametrize(("status", "expected"), REST_EXPECTED.items())
def test_rest_status(status: RestStatus, expected: type) -> None:
    assert isinstance(map_rest_status(status.value, "FT1", "AM04", "no money"), expected)


@pytest.mark.parametrize(("code", "expected"), ISO8583_EXPECTED.items())
def test_iso8583_code(code: Iso8583Response, expected: type) -> None:
    assert isinstance(map_iso8583(code.value, "QR1", "message"), expected)


def test_unknown_statuses_are_outcome_unknown_never_declined() -> None:
    assert isinstance(map_rest_status("ZZZZ", "FT1", None, None), OutcomeUnknown)
    assert isinstance(map_iso8583("99", "QR1", None), OutcomeUnknown)


def test_success_without_a_bank_reference_is_not_success() -> None:
    assert isinstance(map_rest_status("ACSC", None, None, None), OutcomeUnknown)
    assert isinstance(map_iso8583("00", None, None), OutcomeUnknown)
