"""Protocol B: a VietQR-transfer bank.

The money model. The citizen pays a fine by transferring to our collection
account at this bank; we cannot debit them. ``initiate_debit`` builds the
VietQR payload for that transfer (our account, the amount, and a content of
our payment reference followed by the decision number) and posts it to the
bank's QR-payment endpoint, which stands for the citizen's banking app
scanning the QR and confirming. That endpoint is idempotent on the transfer
content (which carries our reference, derived from the idempotency key), so
a retried send never pays twice; the same content with another amount or
account is refused (422).

There are no webhooks. ``get_status`` finds the payment in the bank's
transaction history of our account by our payment reference, which survives
the bank's stripping of diacritics and punctuation and its truncation,
because it is letters and digits and comes first (see ``text``). Refunds are
outgoing transfers from our account, idempotent on ``X-Request-ID`` (our
refund key). Statements are MT940 or CSV.

Endpoints::

    POST /v1/qr-payments          {payload, payer_account}
    POST /v1/transfers            X-Request-ID; {to_account, amount, currency, content}
    GET  /v1/transfers/{request_id}
    GET  /v1/transactions?from=&to=&page_size=&page_token=
    GET  /v1/statements/{YYYY-MM-DD}?format=mt940|csv
    GET  /v1/health

Answers carry ISO 8583 response codes (``wire.Iso8583Response``), mapped
exhaustively; HTTP statuses are mapped as for the REST bank.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from bank_adapters.base import AdapterOptions, HttpAdapter
from bank_adapters.breaker import CircuitBreaker
from bank_adapters.http import (
    HttpReply,
    NoAnswerError,
    error_code,
    json_object,
    money_result,
    optional_str,
)
from bank_adapters.statements import parse_statement
from bank_adapters.text import find_payment_references, payment_reference, qr_transfer_content
from bank_adapters.types import (
    BankResult,
    DebitRequest,
    Declined,
    InvalidRequestError,
    NotFound,
    OutcomeUnknown,
    Pending,
    RefundRequest,
    Statement,
    StatementFormat,
    StatusResult,
    Succeeded,
)
from bank_adapters.vietqr_payload import VietQRTransfer, build_vietqr_payload
from bank_adapters.wire import (
    QR_PAYMENTS_PATH,
    REQUEST_ID_HEADER,
    TRANSACTIONS_PATH,
    TRANSFERS_PATH,
    VIETQR_STATEMENTS_PATH,
    Iso8583Response,
    decline_party,
)

PROTOCOL: Final = "vietqr"
_HISTORY_SLACK: Final = timedelta(minutes=5)


def map_iso8583(code: str, transaction_id: str | None, message: str | None) -> BankResult:
    """The one place a VietQR bank response code becomes a result."""
    try:
        known = Iso8583Response(code)
    except ValueError:
        return OutcomeUnknown(f"unknown response code {code!r:.10}")
    match known:
        case Iso8583Response.APPROVED:
            if transaction_id is None:
                return OutcomeUnknown("approved without a transaction id")
            return Succeeded(transaction_id)
        case Iso8583Response.IN_PROGRESS:
            return Pending(transaction_id)
        case (
            Iso8583Response.DO_NOT_HONOR
            | Iso8583Response.INVALID_ACCOUNT
            | Iso8583Response.INSUFFICIENT_FUNDS
            | Iso8583Response.EXCEEDS_LIMIT
            | Iso8583Response.RESTRICTED_ACCOUNT
        ):
            return Declined(message or f"declined by the bank ({code})", code, decline_party(code))
        case (
            Iso8583Response.LATE_RESPONSE
            | Iso8583Response.ISSUER_UNAVAILABLE
            | Iso8583Response.DUPLICATE_TRANSMISSION
            | Iso8583Response.SYSTEM_MALFUNCTION
        ):
            # The switch could not say whether the transfer went through.
            return OutcomeUnknown(f"bank answered {code}: {message or ''}".strip())


def _body_result(reply: HttpReply) -> BankResult:
    body = json_object(reply.body)
    if body is None:
        return OutcomeUnknown(f"HTTP {reply.status} with a body that is not a JSON object")
    code = body.get("response_code")
    if not isinstance(code, str):
        return OutcomeUnknown("answer without a response code")
    return map_iso8583(
        code, optional_str(body.get("transaction_id")), optional_str(body.get("message"))
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


HistoryScan = Callable[[frozenset[str]], Awaitable[dict[str, StatusResult]]]
# Every scan reads the same recent pages again; a booked transfer's content
# never changes, so its references are worked out once (pure, bounded).
_CONTENT_CACHE_MAX: Final = 16_384


@functools.lru_cache(maxsize=_CONTENT_CACHE_MAX)
def _references_in(content: str) -> frozenset[str]:
    return frozenset(find_payment_references(content))


class HistorySearches:
    """Status checks that run at the same time share history scans (when a
    link comes back, hundreds of payments ask at once, and each scan reads
    the same pages). A check joins the next scan to *start*, never one under
    way, so its answer is at least as fresh as its question; each scan looks
    for every reference waiting for it and stops when all are found. The
    scan's errors (``NotSentError``, ``NoAnswerError``) reach every check of
    that scan."""

    def __init__(self, scan: HistoryScan) -> None:
        self._scan = scan
        self._waiting: dict[str, list[asyncio.Future[StatusResult]]] = {}
        self._runner: asyncio.Task[None] | None = None

    async def find(self, reference: str) -> StatusResult:
        answer: asyncio.Future[StatusResult] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(reference, []).append(answer)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="vietqr-history")
        return await answer

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                results = await self._scan(frozenset(batch))
            except BaseException as exc:
                error = exc if isinstance(exc, Exception) else NoAnswerError("scan cancelled")
                for answers in batch.values():
                    for answer in answers:
                        if not answer.done():
                            answer.set_exception(error)
                if not isinstance(exc, Exception):
                    raise
                continue
            for reference, answers in batch.items():
                for answer in answers:
                    if not answer.done():
                        answer.set_result(results[reference])


class VietQRBankAdapter(HttpAdapter):
    """Adapter for protocol B. See the module docstring."""

    def __init__(
        self,
        bank_id: str,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        account_number: str,
        bank_bin: str,
        options: AdapterOptions | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if (options or AdapterOptions()).statement_format is StatementFormat.CAMT053:
            raise ValueError("a VietQR bank gives statements as MT940 or CSV")
        super().__init__(bank_id, base_url, session, options=options, breaker=breaker)
        self._account_number = account_number
        self._bank_bin = bank_bin
        self._clock = clock
        self._history = HistorySearches(self._find_in_history)
        # Fail at wiring time, not at the first payment.
        build_vietqr_payload(VietQRTransfer(bank_bin, account_number, 1, ""))

    @property
    def protocol(self) -> str:
        return PROTOCOL

    def qr_payload(self, request: DebitRequest) -> str:
        """The VietQR string for this debit (also what a portal would show)."""
        content = qr_transfer_content(
            payment_reference(request.idempotency_key), request.decision_number
        )
        limit = self._options.qr_content_length_max
        transfer = VietQRTransfer(
            self._bank_bin, self._account_number, request.amount_vnd, content[:limit].rstrip()
        )
        return build_vietqr_payload(transfer, content_length_max=limit)

    async def initiate_debit(self, request: DebitRequest) -> BankResult:
        body = {"payload": self.qr_payload(request), "payer_account": request.payer_account}
        # The bank deduplicates on the content; the key travels only as a trace.
        return await self._post_money(
            "initiate_debit", QR_PAYMENTS_PATH, request.idempotency_key, body
        )

    async def refund(self, request: RefundRequest) -> BankResult:
        if request.payee_account is None:
            raise InvalidRequestError("a VietQR refund needs payee_account")
        original = (
            payment_reference(request.original_idempotency_key)
            if request.original_idempotency_key is not None
            else str(request.original_bank_ref)
        )
        body = {
            "to_account": request.payee_account,
            "amount": request.amount_vnd,
            "currency": "VND",
            "content": f"HOAN TIEN {original}",
        }
        return await self._post_money("refund", TRANSFERS_PATH, request.idempotency_key, body)

    async def _post_money(
        self, operation: str, path: str, key: str, body: dict[str, Any]
    ) -> BankResult:
        return await self._http.exchange(
            operation,
            "POST",
            path,
            lambda r: money_result(r, _body_result),
            headers={REQUEST_ID_HEADER: key},
            json_body=body,
        )

    async def get_status(self, idempotency_key: str) -> StatusResult:
        reference = payment_reference(idempotency_key)
        return await self._http.call("get_status", lambda: self._history.find(reference))

    async def _find_in_history(self, references: frozenset[str]) -> dict[str, StatusResult]:
        """Each reference's answer from one pass over the history."""
        now = self._clock()
        params = {
            "from": (now - timedelta(days=self._options.history_lookback_days)).isoformat(),
            "to": (now + _HISTORY_SLACK).isoformat(),
            "page_size": str(self._options.history_page_size),
        }
        found: dict[str, StatusResult] = {}
        for _ in range(self._options.history_pages_max):
            page = await self._history_page(params)
            if isinstance(page, OutcomeUnknown):
                return dict.fromkeys(references, page)
            transactions, next_token = page
            for transaction in transactions:
                content = transaction.get("content")
                if transaction.get("direction") != "C" or not isinstance(content, str):
                    continue
                for reference in references & _references_in(content):
                    if reference not in found:
                        bank_ref = optional_str(transaction.get("transaction_id"))
                        found[reference] = (
                            Succeeded(bank_ref)
                            if bank_ref is not None
                            else OutcomeUnknown("history entry without a transaction id")
                        )
            if len(found) == len(references):
                return found
            if next_token is None:
                return {
                    r: found.get(r) or NotFound(f"no transfer with reference {r} in the history")
                    for r in references
                }
            params["page_token"] = next_token
        unknown = OutcomeUnknown(
            f"history longer than {self._options.history_pages_max} pages; not searched to the end"
        )
        return {r: found.get(r, unknown) for r in references}

    async def _history_page(
        self, params: dict[str, str]
    ) -> tuple[list[dict[str, Any]], str | None] | OutcomeUnknown:
        with self._http.measured("history") as measure:
            reply = await self._http.request("GET", TRANSACTIONS_PATH, params=params)
            body = json_object(reply.body) if reply.status == 200 else None
            transactions = body.get("transactions") if body is not None else None
            next_token = body.get("next_page_token") if body is not None else None
            if (
                body is None
                or not isinstance(transactions, list)
                or not all(isinstance(t, dict) for t in transactions)
                or not (next_token is None or isinstance(next_token, str))
            ):
                measure.outcome = "outcome_unknown"
                return OutcomeUnknown(f"history answered HTTP {reply.status} without a page")
            measure.outcome = "ok"
            return transactions, next_token

    async def get_refund_status(self, idempotency_key: str) -> StatusResult:
        def read(reply: HttpReply) -> StatusResult:
            if reply.status == 200:
                return _body_result(reply)
            if reply.status == 404 and error_code(reply.body) == "not_found":
                return NotFound(f"the bank has no transfer {idempotency_key}")
            return OutcomeUnknown(f"HTTP {reply.status}")

        return await self._http.exchange(
            "get_status", "GET", f"{TRANSFERS_PATH}/{quote(idempotency_key, safe='')}", read
        )

    async def fetch_statement(self, statement_date: date) -> Statement:
        fmt, limits = self._options.statement_format, self._options.statement_limits
        return await self._http.statement(
            statement_date,
            f"{VIETQR_STATEMENTS_PATH}/{statement_date.isoformat()}",
            lambda data: parse_statement(data, fmt, limits=limits),
            bytes_max=limits.bytes_max,
            params={"format": fmt.value},
        )
