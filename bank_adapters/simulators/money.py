"""What both simulated banks do with a money request: read its key and body,
answer a replay, decide on the payer's debit, and book it (a payer's debit, a
refund paid out of our account, a citizen's own transfer). Each protocol
module keeps its wire format and its own codes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from aiohttp import web

from bank_adapters.simulators.common import (
    CORE_KEY,
    SimCore,
    header_key,
    json_error,
    read_json_object,
    require_vnd,
)
from bank_adapters.simulators.faults import FaultMode
from bank_adapters.simulators.store import Account, Movement, NewMovement

MovementKind = Literal["debit", "refund", "transfer"]


@dataclass(frozen=True, slots=True)
class MoneyRequest:
    """A request that moves money: the core, the client's idempotency key
    (from the protocol's header) and the JSON body, in VND."""

    core: SimCore
    key: str
    body: dict[str, Any]

    @classmethod
    async def read(cls, request: web.Request, key_header: str) -> MoneyRequest:
        key = header_key(request, key_header)
        body = await read_json_object(request)
        require_vnd(body)
        return cls(request.app[CORE_KEY], key, body)


def request_hash(fields: dict[str, Any]) -> str:
    """What a replay is compared with: the same key with another hash is a conflict."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def replayed(
    core: SimCore,
    kind: str,
    key: str,
    request_hash: str,
    answer: Callable[[Movement], dict[str, Any]],
    conflict: tuple[str, str],
) -> web.Response | None:
    """The first answer again if ``key`` was seen with the same request; a
    422 with the bank's own ``conflict`` (code, message) if with another."""
    existing = core.store.by_dedupe(kind, key)
    if existing is None:
        return None
    if existing.request_hash != request_hash:
        raise json_error(422, *conflict)
    return web.json_response(answer(existing), status=200)


class Verdict(NamedTuple):
    """The bank's decision on a movement, in its own reason codes."""

    status: str
    reason_code: str | None = None
    reason: str | None = None
    settles_at: datetime | None = None


SUCCEEDED = Verdict("succeeded")


def payer_verdict(
    account: Account,
    amount_vnd: int,
    now: datetime,
    *,
    blocked: tuple[str, str],
    short_of_funds: tuple[str, str],
) -> Verdict:
    """A blocked account or a short balance declines (with the bank's
    (code, reason)); an account with a settle delay is booked later."""
    if account.blocked:
        return Verdict("declined", *blocked)
    if account.balance_vnd < amount_vnd:
        return Verdict("declined", *short_of_funds)
    if account.settle_delay_seconds > 0:
        return Verdict("pending", settles_at=now + timedelta(seconds=account.settle_delay_seconds))
    return SUCCEEDED


class Keys(NamedTuple):
    """How the bank finds a request again: the client's key (recorded), the
    key replays are matched on, and the hash a replay must repeat. A
    citizen's own transfer has none."""

    idempotency_key: str | None = None
    dedupe_key: str | None = None
    request_hash: str | None = None


class Content(NamedTuple):
    """A transfer's content as sent, and as the bank keeps it."""

    raw: str
    kept: str


def new_movement(
    kind: MovementKind,
    keys: Keys,
    counterparty: str,
    amount_vnd: int,
    content: Content,
    verdict: Verdict = SUCCEEDED,
    *,
    original_id: int | None = None,
) -> NewMovement:
    """A movement of our account: a refund pays ``counterparty``, a debit
    or a transfer is paid by them."""
    # Keys, Content and Verdict are NewMovement's columns in its order.
    direction = "D" if kind == "refund" else "C"
    columns = (*keys, amount_vnd, direction, counterparty, *content, *verdict)
    return NewMovement(kind, *columns, original_id=original_id)


def book_credit(core: SimCore, new: NewMovement, now: datetime) -> Movement:
    """Record money paid to us (in the caller's transaction): the payer's
    balance goes down unless the bank declined."""
    movement = core.store.insert(new, now)
    if new.status != "declined":
        core.store.add_balance(new.counterparty, -new.amount_vnd)
    return movement


def book_debit(core: SimCore, new: NewMovement, now: datetime) -> tuple[Movement, Movement | None]:
    """Record a payer's debit (in the caller's transaction) and, when the
    ``duplicate_debit`` fault fires on a success, the bank's bug: a second
    booking of the same debit, answered once."""
    movement = book_credit(core, new, now)
    if new.status != "succeeded" or core.fire(FaultMode.DUPLICATE_DEBIT) is None:
        return movement, None
    duplicate = replace(new, duplicate_of=movement.id, request_hash=None)
    return movement, book_credit(core, duplicate, now)


def book_refund(core: SimCore, new: NewMovement, now: datetime) -> Movement:
    """Record a refund (in the caller's transaction): the payee's balance
    goes up when it succeeded."""
    movement = core.store.insert(new, now)
    if new.status == "succeeded":
        core.store.add_balance(new.counterparty, new.amount_vnd)
    return movement
