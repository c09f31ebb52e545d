"""The simulator's durable state: one SQLite file.

Everything the bank did is a row in ``movements`` (debits, refunds,
citizens' own transfers, declined attempts too), committed before the
answer is sent, so a restart or a kill -9 loses nothing the client could
have heard about. WAL with ``synchronous=NORMAL`` survives a process crash
(not a power cut, which a simulator need not survive).

Calls are synchronous and short; the simulator runs them on its event loop
between awaits, which also makes each handler's read-modify-write atomic
(one writer, no await inside a transaction).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

DEFAULT_BALANCE_VND: Final = 10**12
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS accounts (
    account TEXT PRIMARY KEY,
    balance_vnd INTEGER NOT NULL,
    blocked INTEGER NOT NULL DEFAULT 0,
    settle_delay_seconds REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS movements (
    id INTEGER PRIMARY KEY,
    bank_ref TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('debit', 'refund', 'transfer')),
    idempotency_key TEXT,
    dedupe_key TEXT,
    request_hash TEXT,
    amount_vnd INTEGER NOT NULL CHECK (amount_vnd > 0),
    direction TEXT NOT NULL CHECK (direction IN ('C', 'D')),
    counterparty TEXT NOT NULL,
    content_raw TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'declined', 'pending')),
    reason_code TEXT,
    reason TEXT,
    created_at TEXT NOT NULL,
    booked_at TEXT,
    settles_at TEXT,
    duplicate_of INTEGER REFERENCES movements(id),
    original_id INTEGER REFERENCES movements(id)
);
CREATE UNIQUE INDEX IF NOT EXISTS movements_dedupe
    ON movements(kind, dedupe_key) WHERE dedupe_key IS NOT NULL AND duplicate_of IS NULL;
CREATE INDEX IF NOT EXISTS movements_booked ON movements(booked_at);
CREATE INDEX IF NOT EXISTS movements_pending ON movements(settles_at) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY,
    movement_id INTEGER NOT NULL REFERENCES movements(id),
    payload TEXT NOT NULL,
    due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at REAL,
    failed INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS webhooks_due
    ON webhooks(due_at) WHERE delivered_at IS NULL AND failed = 0;
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY,
    mode TEXT NOT NULL,
    probability REAL NOT NULL,
    created_at REAL NOT NULL,
    until REAL,
    params TEXT NOT NULL
);
"""


def iso(moment: datetime) -> str:
    assert moment.tzinfo is not None
    # Fixed width, so that text order is time order in SQL comparisons.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Account:
    account: str
    balance_vnd: int
    blocked: bool
    settle_delay_seconds: float


@dataclass(frozen=True, slots=True)
class NewMovement:
    kind: str
    idempotency_key: str | None
    dedupe_key: str | None
    request_hash: str | None
    amount_vnd: int
    direction: str
    counterparty: str
    content_raw: str
    content: str
    status: str
    reason_code: str | None = None
    reason: str | None = None
    settles_at: datetime | None = None
    duplicate_of: int | None = None
    original_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Movement(NewMovement):
    """A movement as stored: what was asked, plus the bank's id, reference
    and times."""

    id: int
    bank_ref: str
    created_at: datetime
    booked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bank_ref": self.bank_ref,
            "kind": self.kind,
            "idempotency_key": self.idempotency_key,
            "amount_vnd": self.amount_vnd,
            "direction": self.direction,
            "counterparty": self.counterparty,
            "content_raw": self.content_raw,
            "content": self.content,
            "status": self.status,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "booked_at": self.booked_at.isoformat() if self.booked_at else None,
            "duplicate_of": self.duplicate_of,
            "original_id": self.original_id,
        }


@dataclass(frozen=True, slots=True)
class WebhookRow:
    id: int
    payload: str
    attempts: int


@dataclass(frozen=True, slots=True)
class FaultRow:
    id: int
    mode: str
    probability: float
    created_at: float
    until: float | None
    params: dict[str, Any]


_NEW_FIELDS: Final = tuple(f.name for f in fields(NewMovement))
_MOVEMENT_FIELDS: Final = tuple(f.name for f in fields(Movement))
_TIME_FIELDS: Final = ("created_at", "booked_at", "settles_at")
_INSERT_MOVEMENT: Final = (
    "INSERT INTO movements (id, bank_ref, kind, idempotency_key, dedupe_key, request_hash,"
    " amount_vnd, direction, counterparty, content_raw, content, status, reason_code,"
    " reason, created_at, booked_at, settles_at, duplicate_of, original_id)"
    " VALUES (:id, :bank_ref, :kind, :idempotency_key, :dedupe_key, :request_hash,"
    " :amount_vnd, :direction, :counterparty, :content_raw, :content, :status, :reason_code,"
    " :reason, :created_at, :booked_at, :settles_at, :duplicate_of, :original_id)"
)


def _movement(row: sqlite3.Row) -> Movement:
    values = {name: row[name] for name in _MOVEMENT_FIELDS}
    for name in _TIME_FIELDS:
        values[name] = from_iso(values[name]) if values[name] else None
    return Movement(**values)


class SimStore:
    def __init__(
        self, path: Path, *, bank_ref_prefix: str = "FT", movement_id_start: int = 1
    ) -> None:
        assert len(bank_ref_prefix) == 2, bank_ref_prefix
        self._movement_id_start = movement_id_start
        path.parent.mkdir(parents=True, exist_ok=True)
        self._prefix = bank_ref_prefix
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- accounts ---------------------------------------------------------------

    def account(self, account: str) -> Account:
        row = self._db.execute("SELECT * FROM accounts WHERE account = ?", (account,)).fetchone()
        if row is None:
            return Account(account, DEFAULT_BALANCE_VND, False, 0.0)
        return Account(
            row["account"], row["balance_vnd"], bool(row["blocked"]), row["settle_delay_seconds"]
        )

    def put_account(self, account: Account) -> None:
        self._db.execute(
            "INSERT INTO accounts (account, balance_vnd, blocked, settle_delay_seconds)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (account) DO UPDATE SET"
            " balance_vnd = excluded.balance_vnd, blocked = excluded.blocked,"
            " settle_delay_seconds = excluded.settle_delay_seconds",
            (
                account.account,
                account.balance_vnd,
                int(account.blocked),
                account.settle_delay_seconds,
            ),
        )

    def add_balance(self, account: str, delta_vnd: int) -> None:
        current = self.account(account)
        self.put_account(
            Account(
                account,
                current.balance_vnd + delta_vnd,
                current.blocked,
                current.settle_delay_seconds,
            )
        )

    # --- movements --------------------------------------------------------------

    def insert(self, new: NewMovement, now: datetime) -> Movement:
        next_id = self._db.execute(
            "SELECT max(COALESCE(MAX(id), 0) + 1, ?) FROM movements", (self._movement_id_start,)
        ).fetchone()[0]
        # Like Vietnamese core banking refs: prefix, date, sequence (16 chars,
        # the MT940 bank reference limit).
        bank_ref = f"{self._prefix}{now:%y%m%d}{next_id % 10**8:08d}"
        booked_at = iso(now) if new.status == "succeeded" else None
        values = {name: getattr(new, name) for name in _NEW_FIELDS}
        self._db.execute(
            _INSERT_MOVEMENT,
            {
                **values,
                "id": next_id,
                "bank_ref": bank_ref,
                "created_at": iso(now),
                "booked_at": booked_at,
                "settles_at": iso(new.settles_at) if new.settles_at else None,
            },
        )
        movement = self.movement(next_id)
        assert movement is not None
        return movement

    def movement(self, movement_id: int) -> Movement | None:
        row = self._db.execute("SELECT * FROM movements WHERE id = ?", (movement_id,)).fetchone()
        return _movement(row) if row is not None else None

    def by_dedupe(self, kind: str, dedupe_key: str) -> Movement | None:
        row = self._db.execute(
            "SELECT * FROM movements WHERE kind = ? AND dedupe_key = ? AND duplicate_of IS NULL",
            (kind, dedupe_key),
        ).fetchone()
        return _movement(row) if row is not None else None

    def by_bank_ref(self, bank_ref: str) -> Movement | None:
        row = self._db.execute("SELECT * FROM movements WHERE bank_ref = ?", (bank_ref,)).fetchone()
        return _movement(row) if row is not None else None

    def refunded_vnd(self, original_id: int) -> int:
        row = self._db.execute(
            "SELECT COALESCE(SUM(amount_vnd), 0) FROM movements"
            " WHERE kind = 'refund' AND original_id = ? AND status != 'declined'",
            (original_id,),
        ).fetchone()
        return int(row[0])

    def all_movements(self, limit: int) -> list[Movement]:
        rows = self._db.execute("SELECT * FROM movements ORDER BY id LIMIT ?", (limit,))
        return [_movement(row) for row in rows]

    def booked_between(
        self, start: datetime, end: datetime, *, after_id: int = 0, limit: int = 1_000_000
    ) -> list[Movement]:
        rows = self._db.execute(
            "SELECT * FROM movements WHERE status = 'succeeded' AND booked_at >= ?"
            " AND booked_at < ? AND id > ? ORDER BY id LIMIT ?",
            (iso(start), iso(end), after_id, limit),
        )
        return [_movement(row) for row in rows]

    def balance_before(self, moment: datetime) -> int:
        """Our collection account's booked balance just before ``moment``."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(CASE direction WHEN 'C' THEN amount_vnd ELSE -amount_vnd END), 0)"
            " FROM movements WHERE status = 'succeeded' AND booked_at < ?",
            (iso(moment),),
        ).fetchone()
        return int(row[0])

    def due_settlements(self, now: datetime) -> list[Movement]:
        rows = self._db.execute(
            "SELECT * FROM movements WHERE status = 'pending' AND settles_at <= ? ORDER BY id",
            (iso(now),),
        )
        return [_movement(row) for row in rows]

    def settle(self, movement_id: int) -> Movement:
        """Book a pending movement at the moment it was due."""
        self._db.execute(
            "UPDATE movements SET status = 'succeeded', booked_at = settles_at"
            " WHERE id = ? AND status = 'pending'",
            (movement_id,),
        )
        movement = self.movement(movement_id)
        assert movement is not None
        return movement

    # --- webhooks ---------------------------------------------------------------

    def enqueue_webhook(self, movement_id: int, payload: dict[str, Any], due_at: float) -> None:
        self._db.execute(
            "INSERT INTO webhooks (movement_id, payload, due_at) VALUES (?, ?, ?)",
            (movement_id, json.dumps(payload, sort_keys=True), due_at),
        )

    def due_webhooks(self, now: float, limit: int) -> list[WebhookRow]:
        rows = self._db.execute(
            "SELECT id, payload, attempts FROM webhooks WHERE delivered_at IS NULL AND failed = 0"
            " AND due_at <= ? ORDER BY due_at, id LIMIT ?",
            (now, limit),
        )
        return [WebhookRow(row["id"], row["payload"], row["attempts"]) for row in rows]

    def webhook_delivered(self, webhook_id: int, now: float) -> None:
        self._db.execute(
            "UPDATE webhooks SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
            (now, webhook_id),
        )

    def webhook_failed(
        self, webhook_id: int, error: str, next_due_at: float, *, give_up: bool
    ) -> None:
        self._db.execute(
            "UPDATE webhooks SET attempts = attempts + 1, last_error = ?, due_at = ?, failed = ?"
            " WHERE id = ?",
            (error[:500], next_due_at, int(give_up), webhook_id),
        )

    def webhooks(self, limit: int) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM webhooks ORDER BY id LIMIT ?", (limit,))
        return [
            {
                "id": row["id"],
                "movement_id": row["movement_id"],
                "payload": json.loads(row["payload"]),
                "due_at": row["due_at"],
                "attempts": row["attempts"],
                "delivered_at": row["delivered_at"],
                "failed": bool(row["failed"]),
                "last_error": row["last_error"],
            }
            for row in rows
        ]

    # --- faults -----------------------------------------------------------------

    def add_fault(
        self,
        mode: str,
        probability: float,
        created_at: float,
        until: float | None,
        params: dict[str, Any],
    ) -> FaultRow:
        cursor = self._db.execute(
            "INSERT INTO faults (mode, probability, created_at, until, params)"
            " VALUES (?, ?, ?, ?, ?)",
            (mode, probability, created_at, until, json.dumps(params, sort_keys=True)),
        )
        assert cursor.lastrowid is not None
        return FaultRow(cursor.lastrowid, mode, probability, created_at, until, params)

    def faults(self) -> list[FaultRow]:
        rows = self._db.execute("SELECT * FROM faults ORDER BY id")
        return [
            FaultRow(
                row["id"],
                row["mode"],
                row["probability"],
                row["created_at"],
                row["until"],
                json.loads(row["params"]),
            )
            for row in rows
        ]

    def delete_faults(self, fault_id: int | None = None) -> int:
        if fault_id is None:
            return self._db.execute("DELETE FROM faults").rowcount
        return self._db.execute("DELETE FROM faults WHERE id = ?", (fault_id,)).rowcount

    def delete_expired_faults(self, now: float) -> None:
        self._db.execute("DELETE FROM faults WHERE until IS NOT NULL AND until <= ?", (now,))
