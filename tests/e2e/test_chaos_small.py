"""The chaos harness, small: 120 payments through a real ``reconciler dev``
with the worker and the API killed at seeded moments, duplicate clicks,
simulator faults and replayed bank webhooks; no invariant may break, and the
kills, restarts and replays must have happened (else the run proved
nothing)."""

from __future__ import annotations

from pathlib import Path

from bench.chaos import run
from bench.chaos_plan import SMALL_RUN_MODES

# Enough for both kills to land mid-traffic; the suite's 10-minute budget
# pays for each (200 took ~48 s with the replays, 120 takes less).
PAYMENTS = 120


def test_a_small_chaos_run_has_no_violation(tmp_path: Path) -> None:
    tally = run(
        payments=PAYMENTS,
        kinds=("worker", "api"),
        seed=18,
        concurrency=8,
        data_dir=tmp_path / "stack",
        fault_modes=SMALL_RUN_MODES,
    )
    assert tally.violations == []
    assert sorted(k.split(" ")[0] for k in tally.kills) == ["api", "worker"]
    assert all(not k.endswith("(0)") for k in tally.kills), tally.kills
    assert tally.restarts.get("worker", 0) >= 1
    assert tally.restarts.get("api", 0) >= 1
    assert tally.duplicates_sent == PAYMENTS // 5  # every fifth fine clicked twice
    # Three moments during the traffic and one after it, five callbacks
    # each, every one re-delivered (taken), then refused verbatim and stale.
    assert tally.webhooks.startswith("20 re-delivered"), tally.webhooks
    assert "20 verbatim replays refused; 20 stale ones refused" in tally.webhooks
    # These faults act after the debit, or before it with the saga asking
    # again, so every fine's one payment was debited and ends as a receipt or
    # a refund.
    assert tally.receipts + tally.refunds == PAYMENTS
