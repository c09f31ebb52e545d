"""The console's single-item actions, pure parts: the reason of a form and
how a refusal is said, in both languages."""

from __future__ import annotations

import pytest

from ledger.core.errors import ConflictError, NotFoundError, ValidationError
from ledger.reconciliation.discrepancies import DiscrepancyClosedError
from reconciler.api.problems import ApiError
from reconciler.console.finance_actions import DECIDERS, explain, form_reason
from reconciler.console.texts import TEXTS


def test_a_reason_is_required_bounded_and_printable() -> None:
    assert form_reason({"reason": "  chuyển nhầm\ncần hoàn\t(đã gọi)  "}) == (
        "chuyển nhầm\ncần hoàn\t(đã gọi)"
    )
    for reason, key in (
        ("", "reason_missing"),
        (" \n ", "reason_missing"),
        ("x" * 2001, "reason_too_long"),
        ("a\x07b", "reason_bad_char"),
        ("a\u202eb", "reason_bad_char"),
        ("a\u200bb", "reason_bad_char"),
    ):
        with pytest.raises(ValidationError) as err:
            form_reason({"reason": reason})
        assert (err.value.field, str(err.value)) == ("reason", f"reason: {key}")
    with pytest.raises(ValidationError):
        form_reason({})


@pytest.mark.parametrize(
    ("error", "status", "vi", "en"),
    [
        (
            ValidationError("reason", "reason_too_long"),
            400,
            "Chưa thực hiện: Lý do: dài quá 2.000 ký tự. Không có gì được thay đổi.",
            "Not done: Reason: is longer than 2,000 characters. Nothing was changed.",
        ),
        (
            ValidationError("payee_account", "is not the statement's"),
            400,
            "Tài khoản nhận tiền hoàn: is not the statement's",
            "Account to refund: is not the statement's",
        ),
        (NotFoundError("no fine 9/QĐ"), 404, "không tìm thấy (no fine 9/QĐ)", "not found"),
        (
            DiscrepancyClosedError("discrepancy 7 is already dismissed"),
            409,
            "không cho phép (discrepancy 7 is already dismissed)",
            "does not allow it",
        ),
        (ConflictError("x"), 409, "Không có gì được thay đổi", "Nothing was changed"),
        (ApiError(503, "temporal_unavailable", "down"), 503, "không sẵn sàng", "unavailable"),
    ],
)
def test_a_refusal_is_said_in_the_readers_language(
    error: Exception, status: int, vi: str, en: str
) -> None:
    assert isinstance(error, (ValidationError, NotFoundError, ConflictError, ApiError))
    said_vi, said_en = explain(error, TEXTS["vi"]), explain(error, TEXTS["en"])
    assert said_vi[0] == said_en[0] == status
    assert vi in said_vi[1]
    assert en in said_en[1]


def test_who_may_decide_is_the_permission_table() -> None:
    assert DECIDERS == "admin, approver"
