"""The pure parts of the chaos harness (``bench/chaos.py``): the seeded kill
schedule, and the invariants checked over rows read from the simulators'
ground truth (``GET /debits``) and from the ledger. No I/O here, so a unit
test can feed them rows that break each invariant."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

KILL_KINDS: Final = ("worker", "api", "prober", "temporal", "postgres", "simulator", "all")
# A payment still in one of these once the faults cleared is "in doubt".
IN_DOUBT: Final = frozenset({"initiated", "verifying"})
# Nothing is killed in the first and last tenth of the traffic: the stack has
# to be up to take the first payments, and the last kill must leave it time
# to come back before the wait for settlement begins.
_FIRST, _LAST = 0.1, 0.9


class ChaosOptionError(ValueError):
    """A ``--kills`` value the harness cannot carry out."""


def parse_kills(text: str) -> tuple[str, ...]:
    """``worker,api`` → ``("worker", "api")``; an unknown kind is an error
    naming it and the known ones."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    for kind in kinds:
        if kind not in KILL_KINDS:
            raise ChaosOptionError(
                f"--kills: unknown kind {kind!r} (known: {', '.join(KILL_KINDS)})"
            )
    if len(set(kinds)) != len(kinds):
        raise ChaosOptionError(f"--kills: a kind is named twice in {text!r}")
    return kinds


@dataclass(frozen=True, slots=True)
class Kill:
    after_payments: int  # killed once this many payments were submitted
    kind: str


def kill_schedule(seed: int, kinds: Sequence[str], payments: int) -> list[Kill]:
    """One kill of each kind, at a seeded random moment between the first
    and last tenth of the traffic, in the order they fall (same seed, same
    schedule, so a failing run can be replayed)."""
    rng = random.Random(seed)
    low, high = int(payments * _FIRST), max(int(payments * _LAST), int(payments * _FIRST))
    kills = [Kill(rng.randint(low, high), kind) for kind in kinds]
    return sorted(kills, key=lambda k: (k.after_payments, k.kind))


def pids_for(kind: str, pids: Mapping[str, int | None], rng: random.Random) -> list[int]:
    """The pids dev.json names for a kill ``kind`` (``simulator``: one of
    them, chosen by the seeded ``rng``; ``all`` is handled by the caller)."""
    if kind == "simulator":
        sims = sorted(name for name in pids if name.startswith("sim-"))
        names = [rng.choice(sims)] if sims else []
    elif kind in ("worker", "api"):
        names = [n for n in pids if n == kind or n.startswith(f"{kind}-")]
    else:
        names = [kind] if kind in pids else []
    return [pid for name in names if (pid := pids[name]) is not None]


@dataclass(frozen=True, slots=True)
class Ledger:
    """What the ledger holds, as plain rows: payments (``debit_key``,
    ``status``, ``amount_vnd``, ``bank``), receipts (``debit_key``,
    ``series``, ``number``, and optionally the payment's ``bank`` and
    ``bank_ref``), the sum of every posting, and how many journal
    entries booked each bank debit as money in (``(bank, bank_ref)`` →
    entries of kind ``fine_payment`` or ``duplicate_payment``)."""

    payments: Sequence[Mapping[str, Any]]
    receipts: Sequence[Mapping[str, Any]]
    postings_sum: int
    booked: Mapping[tuple[str, str], int] = field(default_factory=dict)


def check_invariants(
    bank_rows: Mapping[str, Sequence[Mapping[str, Any]]], ledger: Ledger
) -> list[str]:
    """Every violation found, each a sentence naming the payment or debit.

    ``bank_rows``: per bank, its simulator's ``GET /debits`` rows."""
    violations: list[str] = []
    if ledger.postings_sum != 0:
        violations.append(
            f"the ledger does not balance: postings sum to {ledger.postings_sum} đồng"
        )
    violations += _receipt_numbers(ledger.receipts)
    violations += _bookings(bank_rows, ledger.booked)
    receipted: dict[str, int] = defaultdict(int)
    for row in ledger.receipts:
        receipted[row["debit_key"]] += 1
    payments = {p["debit_key"]: p for p in ledger.payments}
    # Receipts matched to debits by the bank's reference when the rows carry
    # it (the harness's do): when the bank booked one request twice, the
    # payment may settle on either booking (the first callback to arrive)
    # and the other is refunded; by our key alone both bookings look alike.
    by_ref: dict[tuple[str, str], int] | None = None
    if any("bank_ref" in r for r in ledger.receipts):
        by_ref = defaultdict(int)
        for row in ledger.receipts:
            by_ref[(row["bank"], row["bank_ref"])] += 1
    for bank, rows in sorted(bank_rows.items()):
        violations += _bank_against_ledger(bank, rows, payments, receipted, by_ref)
    for key, payment in sorted(payments.items()):
        if payment["status"] in IN_DOUBT:
            violations.append(f"payment {key} still in doubt ({payment['status']})")
        if receipted[key] > 1:
            violations.append(f"payment {key} has {receipted[key]} receipts")
        if receipted[key] and payment["status"] != "succeeded":
            violations.append(f"payment {key} has a receipt but is {payment['status']}")
    return violations


def _bank_against_ledger(
    bank: str,
    rows: Sequence[Mapping[str, Any]],
    payments: Mapping[str, Mapping[str, Any]],
    receipted: Mapping[str, int],
    by_ref: Mapping[tuple[str, str], int] | None = None,
) -> list[str]:
    """Each of the bank's debits ends as exactly one receipt or one refund,
    and each payment the ledger settled on this bank has its debit."""
    out: list[str] = []
    by_id = {r["id"]: r for r in rows}
    refunded = {
        r["original_id"] for r in rows if r["kind"] == "refund" and r["status"] == "succeeded"
    }
    taken: set[str] = set()
    for row in rows:
        if row["kind"] != "debit" or row["status"] != "succeeded":
            continue
        key = row["idempotency_key"] if row["duplicate_of"] is None else None
        if by_ref is not None:
            receipts = by_ref.get((bank, row["bank_ref"]), 0)
        else:
            receipts = receipted.get(key, 0) if key else 0
        ends = receipts + (row["id"] in refunded)
        if ends != 1:
            what = f"{bank} debit {row['bank_ref']} (key {row['idempotency_key']})"
            out.append(
                f"{what} ends as {receipts} receipt(s) and {int(row['id'] in refunded)} refund(s)"
            )
        if key:
            taken.add(key)
            payment = payments.get(key)
            if payment is not None and payment["amount_vnd"] != row["amount_vnd"]:
                out.append(
                    f"{bank} debit {row['bank_ref']}: {row['amount_vnd']} đồng, ledger says {payment['amount_vnd']}"
                )
    for row in rows:
        if row["kind"] == "refund" and row["original_id"] not in by_id:
            out.append(f"{bank} refund {row['bank_ref']} of no debit")
    for key, payment in sorted(payments.items()):
        if payment["bank"] == bank and payment["status"] == "succeeded" and key not in taken:
            out.append(f"payment {key} settled on {bank} without a debit")
    return out


def _bookings(
    bank_rows: Mapping[str, Sequence[Mapping[str, Any]]], booked: Mapping[tuple[str, str], int]
) -> list[str]:
    """Each bank debit booked as money in at most once, and nothing booked
    that the bank did not debit: a callback or click taken twice that moved
    money twice shows here even when the receipts look right."""
    debited = {
        (bank, row["bank_ref"])
        for bank, rows in bank_rows.items()
        for row in rows
        if row["kind"] == "debit" and row["status"] == "succeeded"
    }
    out: list[str] = []
    for (bank, ref), count in sorted(booked.items()):
        if count > 1:
            out.append(f"{bank} debit {ref} booked {count} times in the ledger")
        if (bank, ref) not in debited:
            out.append(f"{bank} {ref} booked in the ledger but the bank debited no such thing")
    return out


def _receipt_numbers(receipts: Iterable[Mapping[str, Any]]) -> list[str]:
    """Receipt numbers unique and gapless (1..n) in each series."""
    series: dict[str, list[int]] = defaultdict(list)
    for row in receipts:
        series[row["series"]].append(row["number"])
    out: list[str] = []
    for name, numbers in sorted(series.items()):
        if len(set(numbers)) != len(numbers):
            out.append(f"series {name}: a receipt number is used twice")
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        if missing:
            out.append(f"series {name}: numbers missing {missing[:10]}")
    return out


@dataclass(frozen=True, slots=True)
class Tally:
    payments: int
    kills: Sequence[str]
    restarts: Mapping[str, int]
    receipts: int
    refunds: int
    duplicates_sent: int
    faults: Sequence[str]
    seconds: float
    violations: Sequence[str]
    seed: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average: mean, max
    webhooks: str = "none"


def table(t: Tally) -> str:
    """The end-of-run table (Markdown, printed and written to the docs)."""
    rows = [
        ("payments submitted", str(t.payments)),
        ("duplicate clicks (same Idempotency-Key)", str(t.duplicates_sent)),
        ("seed", str(t.seed)),
        ("simulator faults", ", ".join(t.faults) or "none"),
        ("replayed webhooks (REST bank)", t.webhooks),
        ("kills done", ", ".join(t.kills) or "none"),
        ("restarts seen", ", ".join(f"{k} {v}" for k, v in sorted(t.restarts.items())) or "none"),
        ("receipts", str(t.receipts)),
        ("refunds", str(t.refunds)),
        ("seconds", f"{t.seconds:.1f}"),
        ("load average (1 min) during the run, mean / max", f"{t.load[0]:.1f} / {t.load[1]:.1f}"),
        ("violations", str(len(t.violations))),
    ]
    lines = ["| what | value |", "| --- | --- |", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join(lines)
