"""Double-entry postings: balanced, immutable, idempotent journal entries.

``post_entry`` runs inside the caller's transaction (unit of work: the caller
commits), so a payment's status change and its journal entry commit together.
Balance is checked here (a programmer error, raised before any SQL) and again
by the database at commit (deferred constraint trigger), which also catches
raw SQL that bypasses this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.keys import SUSPENSE_ACCOUNT
from domain.money import AMOUNT_VND_MAX
from ledger.core import tables as t
from ledger.core.errors import IdempotencyConflictError, UnbalancedEntryError, UnknownAccountError

MAX_POSTINGS_PER_ENTRY: Final = 20
MAX_ABS_AMOUNT_VND: Final = AMOUNT_VND_MAX


class AccountKind(StrEnum):
    """``accounts.kind`` (a CHECK constraint of migration 0001 lists the same)."""

    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    REVENUE = "revenue"
    EXPENSE = "expense"


class SystemAccount(StrEnum):
    """The accounts migration 0001 creates; each bank's clearing account is
    created at start-up (``ensure_bank_accounts``)."""

    FINES_REVENUE = "fines-revenue"
    REFUNDS_PAYABLE = "refunds-payable"
    # Reconciliation books to it as well: its code lives in ``domain.keys``.
    SUSPENSE = SUSPENSE_ACCOUNT


ACCOUNT_KINDS: Final = tuple(kind.value for kind in AccountKind)


@dataclass(frozen=True)
class Posting:
    account_code: str
    amount_vnd: int  # positive debits the account, negative credits it


@dataclass(frozen=True)
class EntryRequest:
    idempotency_key: str
    kind: str
    postings: tuple[Posting, ...]
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reverses_entry_id: int | None = None

    def content_hash(self) -> str:
        """What makes two requests with one key 'the same': kind, postings and
        what they reverse. Description and metadata are commentary."""
        lines = sorted((p.account_code, p.amount_vnd) for p in self.postings)
        body = json.dumps(
            {"kind": self.kind, "postings": lines, "reverses": self.reverses_entry_id},
            separators=(",", ":"),
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class PostedEntry:
    entry_id: int
    created: bool  # False when an identical earlier entry was returned


def validate_entry(request: EntryRequest) -> None:
    """Raise ``UnbalancedEntryError`` / ``ValueError`` for a malformed entry."""
    if not 1 <= len(request.idempotency_key) <= 200:
        raise ValueError("idempotency_key must be 1..200 characters")
    if not 2 <= len(request.postings) <= MAX_POSTINGS_PER_ENTRY:
        raise UnbalancedEntryError(
            f"an entry needs 2..{MAX_POSTINGS_PER_ENTRY} postings, got {len(request.postings)}"
        )
    for posting in request.postings:
        # bool is an int subclass; refuse it like any non-integer amount.
        if type(posting.amount_vnd) is not int:
            raise UnbalancedEntryError(f"amount of {posting.account_code} is not an integer")
        if posting.amount_vnd == 0 or abs(posting.amount_vnd) > MAX_ABS_AMOUNT_VND:
            raise UnbalancedEntryError(
                f"amount of {posting.account_code} must be non-zero and at most "
                f"{MAX_ABS_AMOUNT_VND} in absolute value"
            )
    total = sum(p.amount_vnd for p in request.postings)
    if total != 0:
        raise UnbalancedEntryError(f"postings sum to {total}, not 0")


# One round trip: the entry and its postings. An existing key inserts nothing
# (the CTE's INSERT returns no row) and the caller compares content.
_POST_ENTRY = text(
    """
    WITH entry AS (
        INSERT INTO journal_entries
            (idempotency_key, kind, description, content_hash, reverses_entry_id, metadata)
        VALUES (:key, :kind, :description, :hash, :reverses, CAST(:metadata AS jsonb))
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
    ), lines AS (
        INSERT INTO postings (entry_id, account_id, amount_vnd)
        SELECT entry.id, a.id, v.amount
          FROM entry,
               unnest(CAST(:codes AS text[]), CAST(:amounts AS bigint[])) AS v(code, amount)
          JOIN accounts a ON a.code = v.code
         -- lock order: by account, so concurrent entries never deadlock
         ORDER BY a.id
        RETURNING 1
    )
    SELECT (SELECT id FROM entry) AS entry_id, (SELECT count(*) FROM lines) AS lines
    """
)


async def post_entry(conn: AsyncConnection, request: EntryRequest) -> PostedEntry:
    """Post a balanced entry, or return the identical one posted before."""
    validate_entry(request)
    digest = request.content_hash()
    codes = [p.account_code for p in request.postings]
    row = (
        await conn.execute(
            _POST_ENTRY,
            {
                "key": request.idempotency_key,
                "kind": request.kind,
                "description": request.description,
                "hash": digest,
                "reverses": request.reverses_entry_id,
                "metadata": json.dumps(dict(request.metadata), ensure_ascii=False, default=str),
                "codes": codes,
                "amounts": [p.amount_vnd for p in request.postings],
            },
        )
    ).one()
    if row.entry_id is None:
        return await _existing_entry(conn, request.idempotency_key, digest)
    if row.lines != len(request.postings):
        await _raise_unknown_accounts(conn, codes)
    return PostedEntry(entry_id=int(row.entry_id), created=True)


# Entries posted by one ``post_entries`` at most.
POST_MANY_MAX: Final = 1_000
_INSERT_ENTRIES = text(
    """
    INSERT INTO journal_entries
        (idempotency_key, kind, description, content_hash, reverses_entry_id, metadata)
    SELECT v.key, v.kind, v.description, v.hash, v.reverses, v.metadata
      FROM unnest(CAST(:keys AS text[]), CAST(:kinds AS text[]), CAST(:descriptions AS text[]),
                  CAST(:hashes AS text[]), CAST(:reverses AS bigint[]),
                  CAST(:metadata AS jsonb[]))
           WITH ORDINALITY AS v(key, kind, description, hash, reverses, metadata, ord)
     ORDER BY v.ord
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, idempotency_key
    """
)
# The postings of many entries in one statement. Each row's trigger adds it
# to its account's balance shard (entry id mod 16) and holds that row until
# commit: inserted in (account, shard) order, the order every single entry
# takes its (account, shard) rows in too (``_POST_ENTRY``: one shard per
# entry, accounts in id order), so a batch and single entries never wait on
# each other in a cycle.
_INSERT_POSTINGS = text(
    """
    WITH lines AS (
        INSERT INTO postings (entry_id, account_id, amount_vnd)
        SELECT v.entry_id, a.id, v.amount
          FROM unnest(CAST(:entry_ids AS bigint[]), CAST(:codes AS text[]),
                      CAST(:amounts AS bigint[])) AS v(entry_id, code, amount)
          JOIN accounts a ON a.code = v.code
         ORDER BY a.id, v.entry_id % 16, v.entry_id
        RETURNING 1
    )
    SELECT count(*) FROM lines
    """
)


async def post_entries(
    conn: AsyncConnection, requests: Sequence[EntryRequest]
) -> list[PostedEntry]:
    """``post_entry`` for many entries, in three statements whatever their
    number: the entries (in order, so their ids follow it), then all their
    postings. An entry whose key was used before is returned as it was (or
    ``IdempotencyConflictError`` when it differs), as ``post_entry`` does.
    Every request is checked before anything is written."""
    if not 1 <= len(requests) <= POST_MANY_MAX:
        raise ValueError(f"post 1..{POST_MANY_MAX} entries at once, not {len(requests)}")
    for request in requests:
        validate_entry(request)
    keys = [r.idempotency_key for r in requests]
    if len(set(keys)) != len(keys):
        raise ValueError("two entries of one batch share an idempotency key")
    digests = [r.content_hash() for r in requests]
    rows = (
        await conn.execute(
            _INSERT_ENTRIES,
            {
                "keys": keys,
                "kinds": [r.kind for r in requests],
                "descriptions": [r.description for r in requests],
                "hashes": digests,
                "reverses": [r.reverses_entry_id for r in requests],
                "metadata": [
                    json.dumps(dict(r.metadata), ensure_ascii=False, default=str) for r in requests
                ],
            },
        )
    ).all()
    created = {str(row.idempotency_key): int(row.id) for row in rows}
    entry_ids: list[int] = []
    codes: list[str] = []
    amounts: list[int] = []
    for request in requests:
        entry_id = created.get(request.idempotency_key)
        if entry_id is None:
            continue
        for posting in request.postings:
            entry_ids.append(entry_id)
            codes.append(posting.account_code)
            amounts.append(posting.amount_vnd)
    if entry_ids:
        params = {"entry_ids": entry_ids, "codes": codes, "amounts": amounts}
        lines = (await conn.execute(_INSERT_POSTINGS, params)).scalar_one()
        if lines != len(entry_ids):
            await _raise_unknown_accounts(conn, codes)
    posted: list[PostedEntry] = []
    for request, digest in zip(requests, digests, strict=True):
        entry_id = created.get(request.idempotency_key)
        if entry_id is None:
            posted.append(await _existing_entry(conn, request.idempotency_key, digest))
        else:
            posted.append(PostedEntry(entry_id=entry_id, created=True))
    return posted


async def _raise_unknown_accounts(conn: AsyncConnection, codes: Sequence[str]) -> None:
    known = set(
        (await conn.execute(select(t.accounts.c.code).where(t.accounts.c.code.in_(list(codes)))))
        .scalars()
        .all()
    )
    missing = sorted(set(codes) - known)
    raise UnknownAccountError(f"unknown account(s): {', '.join(missing)}")


async def _existing_entry(conn: AsyncConnection, key: str, digest: str) -> PostedEntry:
    row = (
        await conn.execute(
            select(t.journal_entries.c.id, t.journal_entries.c.content_hash).where(
                t.journal_entries.c.idempotency_key == key
            )
        )
    ).one()
    if row.content_hash != digest:
        raise IdempotencyConflictError(
            f"journal entry key {key!r} was already used for a different entry"
        )
    return PostedEntry(entry_id=int(row.id), created=False)


async def reverse_entry(
    conn: AsyncConnection, entry_id: int, idempotency_key: str, description: str = ""
) -> PostedEntry:
    """Post the mirror image of ``entry_id`` (corrections never edit postings)."""
    rows = (
        await conn.execute(
            select(t.accounts.c.code, t.postings.c.amount_vnd)
            .join(t.accounts, t.accounts.c.id == t.postings.c.account_id)
            .where(t.postings.c.entry_id == entry_id)
            .order_by(t.postings.c.id)
        )
    ).all()
    if not rows:
        raise UnknownAccountError(f"journal entry {entry_id} does not exist")
    return await post_entry(
        conn,
        EntryRequest(
            idempotency_key=idempotency_key,
            kind="reversal",
            description=description or f"reversal of entry {entry_id}",
            postings=tuple(Posting(r.code, -int(r.amount_vnd)) for r in rows),
            reverses_entry_id=entry_id,
        ),
    )


async def ensure_account(conn: AsyncConnection, code: str, name: str, kind: str) -> int:
    """Create the account if missing; return its id."""
    if kind not in ACCOUNT_KINDS:
        raise ValueError(f"account kind must be one of {ACCOUNT_KINDS}, got {kind!r}")
    await conn.execute(
        insert(t.accounts)
        .values(code=code, name=name, kind=kind)
        .on_conflict_do_nothing(index_elements=[t.accounts.c.code])
    )
    account_id = (
        await conn.execute(select(t.accounts.c.id).where(t.accounts.c.code == code))
    ).scalar_one()
    return int(account_id)


async def balances(conn: AsyncConnection, codes: Sequence[str] | None = None) -> dict[str, int]:
    """Cached balance of each account (kept by a trigger on postings)."""
    shards = t.account_balance_shards
    query = (
        select(t.accounts.c.code, func.coalesce(func.sum(shards.c.balance_vnd), 0).label("total"))
        .select_from(t.accounts.outerjoin(shards, shards.c.account_id == t.accounts.c.id))
        .group_by(t.accounts.c.code)
    )
    if codes is not None:
        query = query.where(t.accounts.c.code.in_(list(codes)))
    return {r.code: int(r.total) for r in (await conn.execute(query)).all()}


async def posting_sums(conn: AsyncConnection) -> dict[str, int]:
    """Balance of each account recomputed from its postings (the audit view)."""
    rows = (
        await conn.execute(
            text(
                "SELECT a.code, coalesce(sum(p.amount_vnd), 0) AS total FROM accounts a "
                "LEFT JOIN postings p ON p.account_id = a.id GROUP BY a.code"
            )
        )
    ).all()
    return {r.code: int(r.total) for r in rows}


def bank_clearing_account(bank: str) -> str:
    return f"bank:{bank}:clearing"


async def ensure_bank_accounts(conn: AsyncConnection, banks: Sequence[str]) -> None:
    """The clearing account of every configured bank (run at start-up)."""
    for bank in banks:
        await ensure_account(
            conn, bank_clearing_account(bank), f"Clearing at {bank}", AccountKind.ASSET
        )
