"""The chaos harness, small: 200 payments through a real ``reconciler dev``
with the worker and the API killed at seeded moments, duplicate clicks and
simulator faults; no invariant may break, and the kills and restarts must
have happened (else the run proved nothing)."""

from __future__ import annotations

from pathlib import Path

from bench.chaos import run


def test_a_small_chaos_run_has_no_violation(tmp_path: Path) -> None:
    tally = run(
        payments=200, kinds=("worker", "api"), seed=18, concurrency=8, data_dir=tmp_path / "stack"
    )
    assert tally.violations == []
    assert sorted(k.split(" ")[0] for k in tally.kills) == ["api", "worker"]
    assert all(not k.endswith("(0)") for k in tally.kills), tally.kills
    assert tally.restarts.get("worker", 0) >= 1
    assert tally.restarts.get("api", 0) >= 1
    assert tally.duplicates_sent == 40
    # The faults act after the debit, so every fine's one payment was
    # debited and ends as a receipt or a refund.
    assert tally.receipts + tally.refunds == 200
