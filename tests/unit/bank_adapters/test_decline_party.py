"""Whose doing a decline is, for the payment SLO: the payer's own account
codes of both protocols are the citizen's, any other the bank's, a refused
request ours; and the party travels to the workflow's outcome."""

from __future__ import annotations

import pytest

from bank_adapters.http import HttpReply, money_result
from bank_adapters.rest_bank import map_rest_status
from bank_adapters.types import Declined, Succeeded
from bank_adapters.vietqr_bank import map_iso8583
from bank_adapters.wire import decline_party
from workflows.payment.activities import to_outcome


@pytest.mark.parametrize("code", ["AM04", "AC06", "AC01", "14", "51", "61", "62"])
def test_the_payers_own_account_is_the_citizens(code: str) -> None:
    assert decline_party(code) == "citizen"


@pytest.mark.parametrize("code", ["05", "NOOR", "AM09", "", "XYZ"])
def test_any_other_decline_is_the_banks(code: str) -> None:
    assert decline_party(code) == "bank"


def test_adapters_tag_their_declines() -> None:
    assert map_iso8583("51", None, "insufficient") == Declined("insufficient", "51", "citizen")
    assert map_iso8583("05", None, "do not honor") == Declined("do not honor", "05", "bank")
    rest = map_rest_status("RJCT", None, "AC06", "blocked")
    assert rest == Declined("blocked", "AC06", "citizen")


def test_a_refused_request_is_ours() -> None:
    reply = HttpReply(400, b'{"error": {"code": "invalid_request"}}', "application/json")
    result = money_result(reply, lambda r: Succeeded("x"))
    assert isinstance(result, Declined)
    assert result.party == "ours"


def test_the_party_reaches_the_workflow() -> None:
    assert to_outcome(Declined("no funds", "51", "citizen")).party == "citizen"
