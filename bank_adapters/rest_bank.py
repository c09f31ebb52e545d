"""Protocol A: a REST/JSON account-debit bank.

Amounts are integer đồng in ``amount`` with ``currency: "VND"``. Idempotency
is the bank's: every POST carries our key in ``Idempotency-Key``; the same
key with the same body returns the first answer, with another body 422.
Statuses are ISO 20022 codes (``wire.RestStatus``); the bank also calls our
webhook (signed, see ``webhooks``) when a debit or refund reaches a final
status. Statements are camt.053 XML.

Endpoints::

    POST /v1/debits                 {amount, currency, debtor_account, reference, description}
    GET  /v1/debits/{key}           404 {"error": {"code": "not_found"}} if unknown
    POST /v1/refunds                {amount, currency, original_idempotency_key |
                                     original_debit_id, reason}
    GET  /v1/refunds/{key}
    GET  /v1/statements/{YYYY-MM-DD}   camt.053 of our collection account
    GET  /v1/health

Answer → result: 2xx with a known status → that status, mapped exhaustively;
400/401/403/413/415 → ``Declined`` (the bank refused the request, nothing
moved); every other status, 5xx included, or an unreadable 2xx body →
``OutcomeUnknown``; no connection → ``LinkDown``.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from bank_adapters.base import AdapterOptions, HttpAdapter
from bank_adapters.breaker import CircuitBreaker
from bank_adapters.http import HttpReply, error_code, json_object, money_result, optional_str
from bank_adapters.statements.camt053 import parse_camt053
from bank_adapters.types import (
    BankResult,
    DebitRequest,
    Declined,
    NotFound,
    OutcomeUnknown,
    Pending,
    RefundRequest,
    Statement,
    StatusResult,
    Succeeded,
)
from bank_adapters.wire import (
    IDEMPOTENCY_KEY_HEADER,
    REST_DEBITS_PATH,
    REST_REFUNDS_PATH,
    REST_STATEMENTS_PATH,
    RestStatus,
    decline_party,
)

PROTOCOL: Final = "rest"


def map_rest_status(
    status: str, bank_ref: str | None, reason_code: str | None, reason: str | None
) -> BankResult:
    """The one place a REST bank status becomes a result (also used for
    webhooks). An unknown status is ``OutcomeUnknown``: the bank said
    something we do not understand, so money may have moved."""
    try:
        known = RestStatus(status)
    except ValueError:
        return OutcomeUnknown(f"unknown bank status {status!r:.40}")
    match known:
        case RestStatus.ACCEPTED_SETTLED | RestStatus.ACCEPTED_CREDITED:
            if bank_ref is None:
                return OutcomeUnknown(f"status {status} without a bank reference")
            return Succeeded(bank_ref)
        case RestStatus.ACCEPTED_TECHNICAL | RestStatus.ACCEPTED_IN_PROCESS | RestStatus.PENDING:
            return Pending(bank_ref)
        case RestStatus.REJECTED:
            code = reason_code or ""
            return Declined(reason or "rejected by the bank", code, decline_party(code))


def _result_from_body(reply: HttpReply, key: str, ref_field: str) -> BankResult:
    body = json_object(reply.body)
    if body is None:
        return OutcomeUnknown(f"HTTP {reply.status} with a body that is not a JSON object")
    if body.get("idempotency_key") != key:
        return OutcomeUnknown("the bank answered for another idempotency key")
    status = body.get("status")
    if not isinstance(status, str):
        return OutcomeUnknown("answer without a status")
    return map_rest_status(
        status,
        optional_str(body.get(ref_field)),
        optional_str(body.get("reason_code")),
        optional_str(body.get("reason")),
    )


def _status_result(reply: HttpReply, key: str, ref_field: str) -> StatusResult:
    if reply.status == 200:
        return _result_from_body(reply, key, ref_field)
    if reply.status == 404 and error_code(reply.body) == "not_found":
        return NotFound(f"the bank has no record of {key}")
    return OutcomeUnknown(f"HTTP {reply.status} ({error_code(reply.body) or 'no error code'})")


class RestBankAdapter(HttpAdapter):
    """Adapter for protocol A. See the module docstring."""

    def __init__(
        self,
        bank_id: str,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        options: AdapterOptions | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        super().__init__(bank_id, base_url, session, options=options, breaker=breaker)

    @property
    def protocol(self) -> str:
        return PROTOCOL

    async def initiate_debit(self, request: DebitRequest) -> BankResult:
        body = {
            "amount": request.amount_vnd,
            "currency": "VND",
            "debtor_account": request.payer_account,
            "reference": request.decision_number,
            "description": request.description,
        }
        return await self._post_money(
            "initiate_debit", REST_DEBITS_PATH, request.idempotency_key, body, "debit_id"
        )

    async def refund(self, request: RefundRequest) -> BankResult:
        body: dict[str, Any] = {
            "amount": request.amount_vnd,
            "currency": "VND",
            "reason": request.reason,
        }
        if request.original_idempotency_key is not None:
            body["original_idempotency_key"] = request.original_idempotency_key
        if request.original_bank_ref is not None:
            body["original_debit_id"] = request.original_bank_ref
        return await self._post_money(
            "refund", REST_REFUNDS_PATH, request.idempotency_key, body, "refund_id"
        )

    async def get_status(self, idempotency_key: str) -> StatusResult:
        return await self._get_status(REST_DEBITS_PATH, idempotency_key, "debit_id")

    async def get_refund_status(self, idempotency_key: str) -> StatusResult:
        return await self._get_status(REST_REFUNDS_PATH, idempotency_key, "refund_id")

    async def _post_money(
        self, operation: str, path: str, key: str, body: dict[str, Any], ref_field: str
    ) -> BankResult:
        return await self._http.exchange(
            operation,
            "POST",
            path,
            lambda reply: money_result(reply, lambda r: _result_from_body(r, key, ref_field)),
            headers={IDEMPOTENCY_KEY_HEADER: key},
            json_body=body,
        )

    async def _get_status(self, path: str, key: str, ref_field: str) -> StatusResult:
        return await self._http.exchange(
            "get_status",
            "GET",
            f"{path}/{quote(key, safe='')}",
            lambda reply: _status_result(reply, key, ref_field),
        )

    async def fetch_statement(self, statement_date: date) -> Statement:
        limits = self._options.statement_limits
        return await self._http.statement(
            statement_date,
            f"{REST_STATEMENTS_PATH}/{statement_date.isoformat()}",
            lambda data: parse_camt053(data, limits=limits),
            bytes_max=limits.bytes_max,
        )


__all__ = ["PROTOCOL", "RestBankAdapter", "map_rest_status"]
