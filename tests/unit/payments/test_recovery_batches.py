"""How the link recovery groups the debits the bank confirmed into booking
batches (``settle_batches``): bounded, one receipt series each, every
debit exactly once, in a deterministic order."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from ledger.payments import InDoubt
from workflows.payment.recovery_activities import settle_batches

AT = datetime(2026, 12, 4, tzinfo=UTC)


def _confirmed(units: list[str]) -> list[tuple[InDoubt, str]]:
    return [
        (InDoubt(uuid4(), "hnbank", f"k{i}", "verifying", AT, unit), f"B-{i}")
        for i, unit in enumerate(units)
    ]


def test_batches_are_bounded_one_series_each_and_cover_every_debit_once() -> None:
    confirmed = _confirmed(["U2", "U1", "U2", "U1", "U2", "U2", "U3"])
    unit_of = {p.payment_id: p.issuing_unit for p, _ in confirmed}

    batches = settle_batches(confirmed, size=2)

    assert all(1 <= len(b) <= 2 for b in batches)
    assert all(len({unit_of[pid] for pid, _ in b}) == 1 for b in batches)
    flat = [item for b in batches for item in b]
    assert sorted(flat) == sorted((p.payment_id, ref) for p, ref in confirmed)
    # By unit, then in the order given (the oldest payment first).
    assert [unit_of[pid] for pid, _ in flat] == ["U1", "U1", "U2", "U2", "U2", "U2", "U3"]
    assert [ref for _, ref in flat if ref in ("B-0", "B-2", "B-4", "B-5")] == [
        "B-0",
        "B-2",
        "B-4",
        "B-5",
    ]
    assert settle_batches(confirmed, size=2) == batches


def test_nothing_confirmed_is_no_batch() -> None:
    assert settle_batches([], size=50) == []


@pytest.mark.parametrize("size", [0, -1])
def test_a_batch_size_below_one_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="batch size"):
        settle_batches(_confirmed(["U1"]), size=size)
