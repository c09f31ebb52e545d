"""Webhook signing and verification: window, nonce replay, tampering."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank_adapters.types import Declined, Pending, Succeeded
from bank_adapters.webhooks import (
    InMemoryNonceStore,
    NonceStoreFullError,
    WebhookRejected,
    sign_webhook,
    verify_webhook,
)
from tests.unit.bank_adapters.strategies import FUZZ

SECRET = b"s3cret"
NOW = datetime(2024, 5, 15, 3, 0, tzinfo=UTC)
NONCE = "n" * 24


def _body(**changes: object) -> bytes:
    event = {
        "event_id": "evt_1",
        "type": "debit.updated",
        "idempotency_key": "pay-1",
        "bank_ref": "FT1",
        "status": "ACSC",
        "reason_code": None,
        "reason": None,
        "amount": 500_000,
        "currency": "VND",
        "occurred_at": "2024-05-15T02:59:00+00:00",
        **changes,
    }
    return json.dumps(event).encode()


def _signed(body: bytes, *, at: datetime = NOW, nonce: str = NONCE) -> dict[str, str]:
    return sign_webhook(SECRET, body, timestamp=int(at.timestamp()), nonce=nonce)


async def test_a_good_callback_is_accepted_once() -> None:
    store = InMemoryNonceStore()
    body = _body()
    event = await verify_webhook(SECRET, _signed(body), body, NOW, store)
    assert event.result == Succeeded("FT1")
    assert (event.kind, event.idempotency_key, event.amount_vnd) == ("debit", "pay-1", 500_000)
    with pytest.raises(WebhookRejected) as caught:
        await verify_webhook(SECRET, _signed(body), body, NOW, store)
    assert caught.value.code == "replayed_nonce"


async def test_header_names_are_case_insensitive_and_statuses_map() -> None:
    body = _body(status="RJCT", reason_code="AM04", reason="insufficient funds", bank_ref=None)
    headers = {k.lower(): v for k, v in _signed(body).items()}
    event = await verify_webhook(SECRET, headers, body, NOW, InMemoryNonceStore())
    assert event.result == Declined("insufficient funds", "AM04", "citizen")
    body = _body(status="ACSP", type="refund.updated")
    event = await verify_webhook(SECRET, _signed(body), body, NOW, InMemoryNonceStore())
    assert (event.kind, event.result) == ("refund", Pending("FT1"))


@pytest.mark.parametrize(
    ("skew", "accepted"),
    [
        (timedelta(seconds=-299), True),
        (timedelta(seconds=299), True),
        (timedelta(seconds=-301), False),
        (timedelta(seconds=301), False),
    ],
)
async def test_five_minute_window(skew: timedelta, accepted: bool) -> None:
    body = _body()
    headers = _signed(body, at=NOW + skew)
    if accepted:
        await verify_webhook(SECRET, headers, body, NOW, InMemoryNonceStore())
    else:
        with pytest.raises(WebhookRejected) as caught:
            await verify_webhook(SECRET, headers, body, NOW, InMemoryNonceStore())
        assert caught.value.code == "stale_timestamp"


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "X-Bank-Signature"}, "missing_header"),
        (lambda h: {**h, "X-Bank-Signature": "v1=" + "0" * 64}, "bad_signature"),
        (lambda h: {**h, "X-Bank-Timestamp": "soon"}, "bad_timestamp"),
        (lambda h: {**h, "X-Bank-Nonce": "short"}, "bad_nonce"),
        (lambda h: {**h, "X-Bank-Nonce": "m" * 24}, "bad_signature"),
    ],
)
async def test_bad_headers_are_rejected(mangle: object, code: str) -> None:
    body = _body()
    headers = mangle(_signed(body))  # type: ignore[operator]
    store = InMemoryNonceStore()
    with pytest.raises(WebhookRejected) as caught:
        await verify_webhook(SECRET, headers, body, NOW, store)
    assert caught.value.code == code
    assert len(store) == 0  # nothing remembered for a rejected callback


async def test_rotated_secrets_may_offer_two_signatures() -> None:
    body = _body()
    headers = _signed(body)
    headers["X-Bank-Signature"] = "v1=" + "0" * 64 + "," + headers["X-Bank-Signature"]
    store = InMemoryNonceStore()
    event = await verify_webhook(SECRET, headers, body, NOW, store)
    assert event.result == Succeeded("FT1")
    assert (event.idempotency_key, event.amount_vnd) == ("pay-1", 500_000)
    assert len(store) == 1


async def test_two_signatures_none_of_them_right_are_rejected() -> None:
    body = _body()
    headers = _signed(body)
    headers["X-Bank-Signature"] = "v1=" + "0" * 64 + ",v1=" + "1" * 64
    store = InMemoryNonceStore()
    with pytest.raises(WebhookRejected) as caught:
        await verify_webhook(SECRET, headers, body, NOW, store)
    assert caught.value.code == "bad_signature"
    assert len(store) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        _body(amount=1.5),
        _body(amount=True),
        _body(currency="USD"),
        _body(type="payment.created"),
        _body(occurred_at="yesterday"),
        _body(occurred_at="2024-05-15T02:59:00"),
        _body(idempotency_key=""),
    ],
)
async def test_signed_but_malformed_bodies_are_rejected(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as caught:
        await verify_webhook(SECRET, _signed(body), body, NOW, InMemoryNonceStore())
    assert caught.value.code == "malformed_body"


async def test_oversized_body_is_rejected_before_anything_else() -> None:
    body = b" " * (64 * 1024 + 1)
    with pytest.raises(WebhookRejected) as caught:
        await verify_webhook(SECRET, {}, body, NOW, InMemoryNonceStore())
    assert caught.value.code == "body_too_large"


async def test_nonce_store_is_bounded_and_forgets_expired_nonces() -> None:
    store = InMemoryNonceStore(entries_max=2)
    later = NOW + timedelta(minutes=5)
    assert await store.remember("a" * 16, now=NOW, expires_at=later)
    assert await store.remember("b" * 16, now=NOW, expires_at=later)
    with pytest.raises(NonceStoreFullError):
        await store.remember("c" * 16, now=NOW, expires_at=later)
    assert not await store.remember("a" * 16, now=NOW, expires_at=later)
    after = later + timedelta(seconds=1)
    assert await store.remember("c" * 16, now=after, expires_at=after + timedelta(minutes=5))
    assert await store.remember("a" * 16, now=after, expires_at=after + timedelta(minutes=5))
    assert len(store) == 2


@FUZZ
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
async def test_any_changed_byte_breaks_the_signature(position: int, flip: int) -> None:
    body = _body()
    headers = _signed(body)
    position %= len(body)
    tampered = body[:position] + bytes([body[position] ^ flip]) + body[position + 1 :]
    with pytest.raises(WebhookRejected) as caught:
        await verify_webhook(SECRET, headers, tampered, NOW, InMemoryNonceStore())
    assert caught.value.code == "bad_signature"


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-Bank-Timestamp", "X-Bank-Nonce", "X-Bank-Signature", "Other"]),
        st.text(max_size=80),
    ),
    body=st.binary(max_size=300),
)
async def test_random_callbacks_only_raise_rejections(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(WebhookRejected):
        await verify_webhook(SECRET, headers, body, NOW, InMemoryNonceStore())
