"""The chaos harness's plan (``bench/chaos.py``), pure so a unit test can
read it: which simulator fault goes on which bank and when, and how a
replayed webhook's answer is judged. No I/O here.

Every mode of ``bank_adapters.simulators.faults.FaultMode`` is used:

- the steady ones (a probability per request) are switched on for the middle
  half of the traffic, each on the bank where the product can see its
  effect: ``duplicate_debit`` and ``late_webhook`` on the REST bank, whose
  webhooks tell of a second booking (the VietQR bank has no webhooks; its
  second booking would only show in a statement, which the harness does not
  reconcile);
- the timed ones (``link_down``, ``flap``) go on at seeded moments inside
  that half, for a few seconds each, once per bank;
- the statement modes change only the statements the banks serve: they are
  on to show they do not leak into the payment path, and act on nothing
  else here (the harness runs no reconciliation).

The dice inside the simulators are their own (not seeded by the harness):
the same seed gives the same plan, kills and payments, not the same
individual fault hits.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

REST_BANK: Final = "sgbank"
QR_BANK: Final = "hnbank"

# (bank, POST /faults body), on from a quarter to three quarters of the traffic.
STEADY_FAULTS: Final[tuple[tuple[str, dict[str, Any]], ...]] = (
    (REST_BANK, {"mode": "latency", "latency_ms": 200, "probability": 0.2}),
    (REST_BANK, {"mode": "http_500", "after_debit": True, "probability": 0.03}),
    (REST_BANK, {"mode": "http_500", "after_debit": False, "probability": 0.03}),
    (REST_BANK, {"mode": "duplicate_debit", "probability": 0.02}),
    (REST_BANK, {"mode": "late_webhook", "delay_seconds": 3.0, "probability": 0.3}),
    (REST_BANK, {"mode": "malformed", "probability": 0.02}),
    (QR_BANK, {"mode": "lost_response", "probability": 0.05}),
    (QR_BANK, {"mode": "timeout_after_debit", "hang_seconds": 2.0, "probability": 0.05}),
    (QR_BANK, {"mode": "malformed", "probability": 0.03}),
    (QR_BANK, {"mode": "latency", "latency_ms": 100, "probability": 0.1}),
    (REST_BANK, {"mode": "statement_extra_lines", "count": 2, "probability": 1.0}),
    (QR_BANK, {"mode": "statement_missing_lines", "probability": 0.05}),
)
# Switched on once per bank at a seeded moment, ending by themselves.
TIMED_FAULTS: Final[tuple[dict[str, Any], ...]] = (
    {"mode": "link_down", "seconds": 3.0, "probability": 1.0},
    {"mode": "flap", "period_seconds": 0.5, "seconds": 6.0, "probability": 0.5},
)
_STEADY_FROM, _STEADY_TO = 0.25, 0.75


@dataclass(frozen=True, slots=True)
class FaultStep:
    after_payments: int  # applied once this many payments were submitted
    bank: str
    spec: Mapping[str, Any] | None  # None: clear every fault of the bank


# The faults of the small run in the test suite (the ones that leave a debit
# made and its answer lost or late); the timed ones would add their seconds.
SMALL_RUN_MODES: Final = frozenset({"latency", "http_500", "lost_response", "timeout_after_debit"})


def fault_schedule(
    seed: int, payments: int, modes: frozenset[str] | None = None
) -> list[FaultStep]:
    """When each fault goes on (and when all are cleared), in order; the
    same seed gives the same schedule. ``modes``: only these (all if None)."""
    rng = random.Random(f"faults:{seed}")
    low, high = int(payments * _STEADY_FROM), int(payments * _STEADY_TO)
    steps = [FaultStep(low, bank, spec) for bank, spec in STEADY_FAULTS]
    for bank in (REST_BANK, QR_BANK):
        for spec in TIMED_FAULTS:
            steps.append(FaultStep(rng.randint(low, max(low, high - 1)), bank, spec))
    if modes is not None:
        steps = [s for s in steps if s.spec is None or s.spec["mode"] in modes]
    steps += [FaultStep(high, bank, None) for bank in (REST_BANK, QR_BANK)]
    return sorted(steps, key=lambda s: (s.after_payments, s.spec is None))


def describe(step: FaultStep) -> str:
    """``sgbank http_500 p=0.03 after_debit`` (for the table)."""
    assert step.spec is not None
    spec = step.spec
    extra = [k for k in ("after_debit",) if spec.get(k)]
    timed = f" {spec['seconds']:g} s" if "seconds" in spec else ""
    return " ".join([step.bank, spec["mode"], f"p={spec['probability']:g}{timed}", *extra])


# -- replayed webhooks ---------------------------------------------------------

# What the API may answer a re-delivery of a callback it already took (a new
# signature and nonce, the same event): nothing may be settled again.
REDELIVERY_ANSWERS: Final = frozenset(
    {"delivered", "duplicate", "external debit", "noted", "ignored: unknown payment"}
)


def judge_replay(kind: str, status: int, answer: Any) -> str | None:
    """A violation when the API's answer to a replayed callback is not one
    it may give; ``kind``: ``redelivery`` (new nonce: taken, idempotently),
    ``verbatim`` (same bytes, same signature: refused as a replay) or
    ``stale`` (a timestamp out of the window: refused)."""
    if kind == "redelivery":
        said = answer.get("status") if isinstance(answer, dict) else None
        if status == 200 and said in REDELIVERY_ANSWERS:
            return None
        return f"a re-delivered webhook was answered {status} {str(answer)[:200]}"
    want = {"verbatim": "webhook_replayed_nonce", "stale": "webhook_stale_timestamp"}[kind]
    if status == 401 and want in str(answer):
        return None
    return f"a {kind} webhook replay was answered {status} {str(answer)[:200]} (want 401 {want})"


def replay_moments(payments: int) -> list[int]:
    """When, during the traffic, delivered webhooks are replayed (after the
    faults began, while payments are still in flight)."""
    return sorted({max(1, int(payments * f)) for f in (0.4, 0.6, 0.8)})


def pick_replays(
    rows: Sequence[Mapping[str, Any]], rng: random.Random, count: int
) -> list[Mapping[str, Any]]:
    """Which of a simulator's webhook rows to replay: up to ``count`` of the
    delivered ones, half the latest delivered (their payments most likely
    still in flight, where a second settlement could slip in) and half a
    seeded sample of the rest (long settled: stale news)."""
    delivered = sorted(
        (r for r in rows if r["delivered_at"] is not None), key=lambda r: r["delivered_at"]
    )
    recent = delivered[len(delivered) - count // 2 :] if count // 2 else []
    older = delivered[: len(delivered) - len(recent)]
    return recent + rng.sample(older, min(count - len(recent), len(older)))


def replay_sample_size(payments: int) -> int:
    """How many delivered webhooks are replayed at each moment."""
    return max(5, min(100, payments // 200))
