"""Signed webhooks from the REST bank (protocol A): signing (the simulator's
side) and verification (the API's side).

Each callback carries three headers::

    X-Bank-Timestamp: 1715750000                   Unix seconds, when it was sent
    X-Bank-Nonce:     9f1c0e...                    16-128 chars [A-Za-z0-9_-], new per send
    X-Bank-Signature: v1=<hex HMAC-SHA256>         several "v1=" values, comma-separated,
                                                   are allowed while a secret rotates

The signature is HMAC-SHA256 with the shared secret over the bytes
``timestamp + "." + nonce + "." + body``. A callback is accepted only if the
signature matches, the timestamp is within five minutes of our clock, and the
nonce was never accepted before (the nonce store remembers each nonce until
its timestamp is out of the window, so it stays bounded). A retried delivery
is signed again with a fresh nonce; the event's ``event_id`` stays the same,
so consumers deduplicate on that, and on the idempotency key.

The body is JSON::

    {"event_id": "evt_12", "type": "debit.updated" | "refund.updated",
     "idempotency_key": "...", "bank_ref": "FT...", "status": "ACSC",
     "reason_code": null, "reason": null, "amount": 500000, "currency": "VND",
     "occurred_at": "2024-05-15T03:04:05+00:00"}
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, Protocol

from bank_adapters.rest_bank import map_rest_status
from bank_adapters.types import BankResult
from bank_adapters.wire import (
    WEBHOOK_NONCE_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_SIGNATURE_SCHEME,
    WEBHOOK_TIMESTAMP_HEADER,
)
from domain.money import AMOUNT_VND_MAX

TIMESTAMP_TOLERANCE_SECONDS: Final = 300
WEBHOOK_BODY_BYTES_MAX: Final = 64 * 1024
NONCE_STORE_ENTRIES_MAX_DEFAULT: Final = 100_000
_NONCE_RE: Final = re.compile(r"[A-Za-z0-9_-]{16,128}", re.ASCII)
_TIMESTAMP_RE: Final = re.compile(r"\d{1,12}", re.ASCII)
_SIGNATURES_MAX: Final = 4

RejectCode = Literal[
    "body_too_large",
    "missing_header",
    "bad_timestamp",
    "stale_timestamp",
    "bad_nonce",
    "bad_signature",
    "malformed_body",
    "replayed_nonce",
]


class WebhookRejected(Exception):
    """A callback we must not act on. Answer it with 4xx (401 for
    signature/timestamp/nonce problems, 400 for a malformed body); nothing
    may change."""

    def __init__(self, code: RejectCode, reason: str) -> None:
        super().__init__(f"webhook rejected ({code}): {reason}")
        self.code: RejectCode = code
        self.reason = reason


class NonceStoreFullError(Exception):
    """The store cannot take another nonce without forgetting one that is
    still in the window (which would allow a replay). Answer 503 so the bank
    retries later."""


class NonceStore(Protocol):
    """Remembers accepted nonces until ``expires_at``. Implementations must
    be bounded and atomic per nonce (a PostgreSQL one: ``INSERT ... ON
    CONFLICT DO NOTHING`` and test the row count; delete expired rows)."""

    async def remember(self, nonce: str, *, now: datetime, expires_at: datetime) -> bool:
        """Record ``nonce``; False if it is already known (a replay)."""
        ...


class InMemoryNonceStore:
    """Bounded in-process nonce store (one API process, tests)."""

    def __init__(self, entries_max: int = NONCE_STORE_ENTRIES_MAX_DEFAULT) -> None:
        assert entries_max > 0
        self._entries_max = entries_max
        self._expiry: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    async def remember(self, nonce: str, *, now: datetime, expires_at: datetime) -> bool:
        while self._heap and self._heap[0][0] <= now:
            expired_at, old = heapq.heappop(self._heap)
            if self._expiry.get(old) == expired_at:
                del self._expiry[old]
        known = self._expiry.get(nonce)
        if known is not None and known > now:
            return False
        if len(self._expiry) >= self._entries_max:
            raise NonceStoreFullError(f"{self._entries_max} nonces still in their window")
        self._expiry[nonce] = expires_at
        heapq.heappush(self._heap, (expires_at, nonce))
        return True


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    event_id: str
    kind: Literal["debit", "refund"]
    idempotency_key: str
    bank_ref: str | None
    status: str
    reason_code: str | None
    reason: str | None
    amount_vnd: int
    occurred_at: datetime
    nonce: str

    @property
    def result(self) -> BankResult:
        """The bank's news as the shared result type."""
        return map_rest_status(self.status, self.bank_ref, self.reason_code, self.reason)


def signature(secret: bytes, timestamp: int, nonce: str, body: bytes) -> str:
    message = f"{timestamp}.{nonce}.".encode("ascii") + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_webhook(secret: bytes, body: bytes, *, timestamp: int, nonce: str) -> dict[str, str]:
    """The headers for one delivery of ``body``."""
    assert secret, "webhook secret is empty"
    assert _NONCE_RE.fullmatch(nonce), nonce
    return {
        WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        WEBHOOK_NONCE_HEADER: nonce,
        WEBHOOK_SIGNATURE_HEADER: (
            f"{WEBHOOK_SIGNATURE_SCHEME}={signature(secret, timestamp, nonce, body)}"
        ),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    # aiohttp's headers are case-insensitive, a plain dict is not.
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    if value is None:
        raise WebhookRejected("missing_header", f"header {name} missing")
    return value.strip()


def _check_signature(secret: bytes, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
    timestamp_text = _header(headers, WEBHOOK_TIMESTAMP_HEADER)
    if not _TIMESTAMP_RE.fullmatch(timestamp_text):
        raise WebhookRejected("bad_timestamp", f"{WEBHOOK_TIMESTAMP_HEADER} is not Unix seconds")
    nonce = _header(headers, WEBHOOK_NONCE_HEADER)
    if not _NONCE_RE.fullmatch(nonce):
        raise WebhookRejected("bad_nonce", f"{WEBHOOK_NONCE_HEADER} must be 16-128 [A-Za-z0-9_-]")
    timestamp = int(timestamp_text)
    expected = signature(secret, timestamp, nonce, body)
    offered = [
        part.strip().removeprefix(f"{WEBHOOK_SIGNATURE_SCHEME}=")
        for part in _header(headers, WEBHOOK_SIGNATURE_HEADER).split(",")[:_SIGNATURES_MAX]
        if part.strip().startswith(f"{WEBHOOK_SIGNATURE_SCHEME}=")
    ]
    # Compare against every offered value, without an early exit.
    matches = [
        hmac.compare_digest(expected.encode(), o.encode("ascii", "replace")) for o in offered
    ]
    if not any(matches):
        raise WebhookRejected("bad_signature", "signature does not match")
    return timestamp, nonce


def _str(body: dict[str, object], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 200:
        raise WebhookRejected("malformed_body", f"{name} must be a non-empty string")
    return value


def _event(body_bytes: bytes, nonce: str) -> WebhookEvent:
    try:
        body = json.loads(body_bytes)
    except (ValueError, RecursionError):
        raise WebhookRejected("malformed_body", "body is not JSON") from None
    if not isinstance(body, dict):
        raise WebhookRejected("malformed_body", "body is not a JSON object")
    kind: Literal["debit", "refund"]
    match body.get("type"):
        case "debit.updated":
            kind = "debit"
        case "refund.updated":
            kind = "refund"
        case _:
            raise WebhookRejected("malformed_body", "type must be debit.updated or refund.updated")
    amount = body.get("amount")
    if (
        not isinstance(amount, int)
        or isinstance(amount, bool)
        or not 0 < amount <= AMOUNT_VND_MAX
        or body.get("currency") != "VND"
    ):
        raise WebhookRejected("malformed_body", "amount must be whole đồng, currency VND")
    try:
        occurred_at = datetime.fromisoformat(str(_str(body, "occurred_at")))
    except ValueError:
        raise WebhookRejected("malformed_body", "occurred_at is not ISO 8601") from None
    if occurred_at.tzinfo is None:
        raise WebhookRejected("malformed_body", "occurred_at has no offset")
    return WebhookEvent(
        event_id=str(_str(body, "event_id")),
        kind=kind,
        idempotency_key=str(_str(body, "idempotency_key")),
        bank_ref=_str(body, "bank_ref", required=False),
        status=str(_str(body, "status")),
        reason_code=_str(body, "reason_code", required=False),
        reason=_str(body, "reason", required=False),
        amount_vnd=amount,
        occurred_at=occurred_at,
        nonce=nonce,
    )


async def verify_webhook(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    nonce_store: NonceStore,
) -> WebhookEvent:
    """Authenticate one callback and return its event.

    Raises ``WebhookRejected`` (answer 4xx, change nothing) or
    ``NonceStoreFullError`` (answer 503). The nonce is remembered only after
    everything else passed, so forged callbacks cannot fill the store.
    """
    if not secret:
        raise ValueError("the webhook secret of this bank is not configured")
    assert now.tzinfo is not None, "now must be timezone-aware"
    if len(body) > WEBHOOK_BODY_BYTES_MAX:
        raise WebhookRejected("body_too_large", f"body over {WEBHOOK_BODY_BYTES_MAX} bytes")
    timestamp, nonce = _check_signature(secret, headers, body)
    sent_at = now.timestamp()
    if abs(sent_at - timestamp) > TIMESTAMP_TOLERANCE_SECONDS:
        raise WebhookRejected(
            "stale_timestamp",
            f"timestamp is {int(sent_at - timestamp)} s from now, over "
            f"{TIMESTAMP_TOLERANCE_SECONDS} s",
        )
    event = _event(body, nonce)
    # Past this instant the timestamp check refuses the nonce anyway.
    expires_at = now + timedelta(seconds=timestamp + TIMESTAMP_TOLERANCE_SECONDS - sent_at + 1)
    if not await nonce_store.remember(nonce, now=now, expires_at=expires_at):
        raise WebhookRejected("replayed_nonce", "this nonce was already used")
    return event
