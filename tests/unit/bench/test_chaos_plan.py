"""The chaos harness's plan: every simulator fault mode is used, on a bank
that accepts it, at seeded moments inside the traffic; a replayed webhook's
answer is judged strictly."""

from __future__ import annotations

import random

import pytest

from bank_adapters.simulators.faults import FaultMode, parse_fault
from bench.chaos_plan import (
    QR_BANK,
    REST_BANK,
    SMALL_RUN_MODES,
    describe,
    fault_schedule,
    judge_replay,
    pick_replays,
    replay_moments,
)


def test_every_fault_mode_is_planned_and_each_spec_is_one_the_simulator_takes() -> None:
    steps = fault_schedule(1, 10_000)
    on = [s for s in steps if s.spec is not None]
    assert {s.spec["mode"] for s in on if s.spec} == {m.value for m in FaultMode}
    for step in on:
        assert step.spec is not None
        parse_fault(dict(step.spec))  # raises on a body the simulator refuses


def test_the_webhook_faults_go_to_the_bank_that_sends_webhooks() -> None:
    webhook_faults = [
        step
        for step in fault_schedule(1, 10_000)
        if step.spec and step.spec["mode"] in ("duplicate_debit", "late_webhook")
    ]
    assert webhook_faults  # a schedule without them would check nothing
    assert {step.bank for step in webhook_faults} == {REST_BANK}


def test_faults_go_on_inside_the_middle_half_and_are_cleared_at_its_end() -> None:
    steps = fault_schedule(3, 1000)
    assert steps == fault_schedule(3, 1000)
    assert steps != fault_schedule(4, 1000)
    assert [s.after_payments for s in steps] == sorted(s.after_payments for s in steps)
    assert all(250 <= s.after_payments < 750 for s in steps if s.spec is not None)
    cleared = [s for s in steps if s.spec is None]
    assert sorted(s.bank for s in cleared) == sorted([REST_BANK, QR_BANK])
    assert steps[-2:] == cleared
    assert all(s.after_payments == 750 for s in cleared)
    timed = [s for s in steps if s.spec and "seconds" in s.spec]
    assert sorted((s.bank, s.spec["mode"]) for s in timed if s.spec) == sorted(
        (bank, mode) for bank in (REST_BANK, QR_BANK) for mode in ("flap", "link_down")
    )


def test_describe_names_bank_mode_probability_and_duration() -> None:
    steps = [s for s in fault_schedule(1, 1000) if s.spec is not None]
    texts = {describe(s) for s in steps}
    assert "sgbank http_500 p=0.03 after_debit" in texts
    assert "sgbank link_down p=1 3 s" in texts


def test_replays_happen_while_payments_are_in_flight() -> None:
    assert replay_moments(1000) == [400, 600, 800]
    assert replay_moments(2) == [1]


@pytest.mark.parametrize(
    ("kind", "status", "answer", "ok"),
    [
        ("redelivery", 200, {"status": "duplicate"}, True),
        ("redelivery", 200, {"status": "delivered"}, True),
        ("redelivery", 200, {"status": "settled again"}, False),
        ("redelivery", 401, '{"error": "webhook_replayed_nonce"}', False),
        ("redelivery", 503, "busy", False),
        ("verbatim", 401, '{"error": {"code": "webhook_replayed_nonce"}}', True),
        ("verbatim", 200, {"status": "duplicate"}, False),
        ("verbatim", 401, '{"error": {"code": "webhook_bad_signature"}}', False),
        ("stale", 401, '{"error": {"code": "webhook_stale_timestamp"}}', True),
        ("stale", 200, {"status": "duplicate"}, False),
    ],
)
def test_a_replay_answer_is_judged(kind: str, status: int, answer: object, ok: bool) -> None:
    violation = judge_replay(kind, status, answer)
    assert (violation is None) is ok, violation


def test_the_small_run_keeps_its_modes_and_still_clears_them() -> None:
    steps = fault_schedule(1, 200, SMALL_RUN_MODES)
    assert {s.spec["mode"] for s in steps if s.spec} == SMALL_RUN_MODES
    assert sorted(s.bank for s in steps if s.spec is None) == sorted([REST_BANK, QR_BANK])


def test_replays_are_half_the_latest_delivered_and_half_a_seeded_sample() -> None:
    rows = [{"id": i, "delivered_at": float(i)} for i in range(100)]
    rows += [{"id": 100 + i, "delivered_at": None} for i in range(5)]
    picked = pick_replays(rows, random.Random(1), 10)
    ids = [r["id"] for r in picked]
    assert ids[:5] == [95, 96, 97, 98, 99]
    assert len(set(ids)) == 10
    assert all(i < 95 for i in ids[5:])
    assert ids == [r["id"] for r in pick_replays(rows, random.Random(1), 10)]
    assert len(pick_replays(rows[:3], random.Random(1), 10)) == 3
    assert pick_replays(rows[100:], random.Random(1), 10) == []
