"""Replayed webhooks for the chaos harness (``bench/chaos.py``).

The REST bank's simulator keeps every callback it sent (``GET /webhooks`` on
its admin port: the body, not the signature, which it makes afresh for each
delivery). The harness takes a seeded sample of the delivered ones and, with
the bank's webhook secret (the dev stack's ``stack.json``), sends each to the
API again three ways (which ones: ``chaos_plan.pick_replays``, half the
latest delivered, whose payments are likeliest in flight):

- **re-delivered**: the same body, signed now with a new nonce, as the bank
  does when it retries. It must be taken idempotently (200, ``duplicate`` or
  ``delivered`` ...) and settle nothing twice: the invariants checked at the
  end (one receipt or one refund per debit, each bank debit booked at most
  once) catch it if it did;
- **verbatim**: the bytes and headers of that re-delivery sent once more,
  the original signature and nonce with them: refused, 401
  ``webhook_replayed_nonce``;
- **stale**: the body signed with a timestamp ten minutes old: refused, 401
  ``webhook_stale_timestamp``.

At moments during the traffic (payments in flight) and once after every
payment settled (the callbacks then are stale news).
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bank_adapters.webhooks import TIMESTAMP_TOLERANCE_SECONDS, sign_webhook
from bench.chaos_plan import REST_BANK, judge_replay, pick_replays
from bench.devstack_client import local_http

_STALE_SECONDS = 2 * TIMESTAMP_TOLERANCE_SECONDS
_TRIES = 30  # a re-delivery answered 503 (a part restarting) is sent again


@dataclass
class Replays:
    """What was replayed, and how the API answered."""

    redelivered: int = 0
    verbatim_refused: int = 0
    stale_refused: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        said = ", ".join(f"{k} {v}" for k, v in sorted(self.answers.items()))
        return (
            f"{self.redelivered} re-delivered ({said or 'none'}); "
            f"{self.verbatim_refused} verbatim replays refused; "
            f"{self.stale_refused} stale ones refused"
        )


def webhook_secret(data_dir: Path, bank: str = REST_BANK) -> bytes:
    """The bank's webhook secret, from the dev stack's ``stack.json``."""
    state = json.loads((data_dir / "stack.json").read_text())
    secret = state.get("webhook_secrets", {}).get(bank, "")
    if not secret:
        raise RuntimeError(f"stack.json holds no webhook secret for {bank}")
    return str(secret).encode()


def replay_some(
    info: dict[str, Any], secret: bytes, rng: random.Random, count: int, tally: Replays
) -> None:
    """Replay ``count`` of the REST bank's delivered callbacks, each three
    ways; the answers go into ``tally``."""
    status, answer = local_http(info["banks"][REST_BANK]["admin_url"] + "/webhooks", "GET")
    if status != 200:
        tally.violations.append(f"{REST_BANK}: GET /webhooks answered {status} {answer}")
        return
    url = f"{info['api_url']}/webhooks/{REST_BANK}"
    for row in pick_replays(answer["webhooks"], rng, count):
        # The simulator's own bytes: it sends json.dumps(payload, sort_keys=True).
        body = json.dumps(row["payload"], sort_keys=True).encode()
        headers = _signed(secret, body, int(time.time()))
        status, answer = _post_until_answered(url, body, headers)
        _judge(tally, "redelivery", status, answer)
        if status == 200:
            tally.answers[str(answer.get("status"))] += 1
        _judge(tally, "verbatim", *local_http(url, "POST", body, headers))
        stale = _signed(secret, body, int(time.time()) - _STALE_SECONDS)
        _judge(tally, "stale", *local_http(url, "POST", body, stale))


def _signed(secret: bytes, body: bytes, timestamp: int) -> dict[str, str]:
    return sign_webhook(secret, body, timestamp=timestamp, nonce=secrets.token_urlsafe(18))


def _post_until_answered(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """POST until an answer other than 503 or none (a refused delivery's
    nonce is released, so the same headers may be sent again)."""
    status, answer = 0, None
    for _ in range(_TRIES):
        status, answer = local_http(url, "POST", body, headers)
        if status not in (0, 502, 503):
            break
        time.sleep(1)
    return status, answer


def _judge(tally: Replays, kind: str, status: int, answer: Any) -> None:
    violation = judge_replay(kind, status, answer)
    if violation is not None:
        tally.violations.append(violation)
    elif kind == "redelivery":
        tally.redelivered += 1
    elif kind == "verbatim":
        tally.verbatim_refused += 1
    else:
        tally.stale_refused += 1
