"""Bank callbacks built by hand: a refund event (the kind the API notes
without Temporal) and the signed headers of one delivery."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from bank_adapters.webhooks import sign_webhook


def refund_event(**fields: Any) -> bytes:
    event = {
        "type": "refund.updated",
        "event_id": f"ev-{secrets.token_hex(4)}",
        "idempotency_key": "rf-123",
        "status": "succeeded",
        "amount": 1_000,
        "currency": "VND",
        "occurred_at": "2026-01-01T00:00:00+00:00",
        **fields,
    }
    return json.dumps(event).encode()


def signed_headers(secret: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
    headers = sign_webhook(secret, body, timestamp=int(time.time()), nonce=secrets.token_hex(12))
    return [(name.encode(), value.encode()) for name, value in headers.items()]
