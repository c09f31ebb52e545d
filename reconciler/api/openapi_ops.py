"""OpenAPI paths and schemas of the operators' views behind the console's
operator pages (``reconciler.api.operator_views``): bank link health, the
in-doubt queue and "re-check now" (``reconciler.api.openapi``)."""

from __future__ import annotations

from typing import Any

from ledger.in_doubt import IN_DOUBT_LIMIT_MAX
from ledger.payments.model import PaymentStatus
from reconciler.api.openapi_parts import (
    BOOL,
    COUNT,
    INT,
    MOMENT,
    NSTR,
    STR,
    UUID,
    Schema,
    array,
    limit,
    listing,
    nullable,
    obj,
    operation,
    path,
    payment_cursor,
    query,
    ref,
)

# The statuses of a payment whose outcome is not known yet (``ledger.in_doubt``).
IN_DOUBT_STATUSES = [PaymentStatus.INITIATED.value, PaymentStatus.VERIFYING.value]
_SHARE: Schema = {"type": "number", "minimum": 0, "maximum": 1}


def schemas() -> dict[str, Schema]:
    return {
        "BankHealth": obj(
            {
                "bank": STR,
                "up": BOOL,
                "down_since": nullable(MOMENT),
                "uptime_24h": _SHARE,
                "uptime_7d": _SHARE,
                "outages_7d": array(ref("Outage")),
                "last_probe": nullable(
                    obj(
                        {
                            "probed_at": MOMENT,
                            "ok": BOOL,
                            "latency_ms": COUNT,
                            "cause": STR,
                        }
                    )
                ),
            }
        ),
        "InDoubtPayment": obj(
            {
                "payment_id": UUID,
                "decision_number": STR,
                "issuing_unit": STR,
                "bank": STR,
                "amount_vnd": INT,
                "status": {"enum": IN_DOUBT_STATUSES},
                "created_at": MOMENT,
                "verifying_since": nullable(MOMENT),
                "age_seconds": COUNT,
                "attempts": COUNT,
                "last_answer": NSTR,
                "last_answer_detail": NSTR,
                "last_answer_at": nullable(MOMENT),
            }
        ),
    }


def paths(banks: list[str]) -> dict[str, dict[str, Any]]:
    """Bank link health, the in-doubt queue and its re-check."""
    hourly = array(obj({"at": MOMENT, "count": COUNT}))
    # Only a verifying payment is re-checked (one still being sent is a 409).
    rechecked = obj(
        {"payment_id": UUID, "status": {"const": "verifying"}, "recheck": {"const": "requested"}}
    )
    return {
        "/api/v1/banks/health": {
            "get": operation(
                "Each bank's link: up or down now, uptime, outages, in-doubt per hour",
                "ops:read",
                {
                    200: (
                        "every configured bank, and the last 24 h hour by hour",
                        obj({"banks": array(ref("BankHealth")), "in_doubt_hourly": hourly}),
                    )
                },
                tag="operations",
                description=(
                    "Up: no open outage. Uptime over 24 h and 7 d is a share (0..1) from "
                    "the outage records; `outages_7d` lists the last week's; "
                    "`in_doubt_hourly` counts the payments in doubt at each hour of the "
                    "last 24 h."
                ),
            )
        },
        "/api/v1/payments/in-doubt": {
            "get": listing(
                "The in-doubt queue: payments whose outcome is not known yet, oldest first",
                "payments:read",
                ("payments", ref("InDoubtPayment")),
                tag="operations",
                params=(
                    query("bank", {"enum": banks}, "only this bank's"),
                    payment_cursor(),
                    limit(IN_DOUBT_LIMIT_MAX),
                ),
                description=(
                    "Unit scoped (a unit-scoped caller sees only their units' payments). "
                    "Each with its age, the status checks the saga made (`attempts`) and "
                    "the bank's last answer."
                ),
            )
        },
        "/api/v1/payments/{payment_id}/recheck": {
            "post": operation(
                "Re-check now: the payment's workflow asks the bank at once (audited)",
                "ops:write",
                {202: ("the workflow was woken", rechecked)},
                tag="operations",
                params=(path("payment_id", UUID, "the payment's id"),),
                errors=(409,),
                description=(
                    "A signal that only wakes the payment's verifying loop: it moves no "
                    "money, and repeating it is harmless. 404: no such payment (or one "
                    "outside the caller's units); 409: its outcome is known "
                    "(`not_in_doubt`), it is still being sent (`not_verifying`) or it has "
                    "no running workflow yet (`no_workflow`); 503: Temporal is "
                    "unreachable."
                ),
            )
        },
    }
