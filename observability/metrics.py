"""Every Prometheus metric of the service, defined once.

Names are in base units with ``_total`` / ``_seconds`` suffixes. Label values
are bounded: ``bank`` is a configured bank id, ``operation`` and ``outcome``
are members of small closed sets (see the ``*_VALUES`` tuples below).

Metrics live in the process-wide default registry, like every
prometheus-client program; each process (API, worker, prober) exposes it on
``/metrics``.
"""

from __future__ import annotations

import re
from typing import Final

from prometheus_client import Counter, Gauge, Histogram

# Closed label sets. Recording code must use one of these values.
BANK_OPERATIONS: Final = (
    "initiate_debit",
    "get_status",
    "refund",
    "fetch_statement",
    "health",
    "history",
)
BANK_OUTCOMES: Final = (
    "succeeded",
    "declined",
    "pending",
    "outcome_unknown",
    "link_down",
    "not_found",
    "ok",
    "error",
    "circuit_open",
)
PAYMENT_OUTCOMES: Final = ("succeeded", "declined", "refunded", "verifying")
# Who a finished payment's outcome is down to: ``ok`` (it succeeded),
# ``citizen`` (the payer's own account: insufficient funds, blocked, wrong
# account; a citizen's second payment of a paid fine refunded), ``bank`` (the
# bank's error or unavailability, a debit the bank booked twice) or ``ours``
# (the bank refused a request we sent). The payment SLO leaves ``citizen`` out.
PAYMENT_REASONS: Final = ("ok", "citizen", "bank", "ours")
# What became of a bank webhook (reconciler/api/webhooks.py).
WEBHOOK_RESULTS: Final = (
    "accepted",
    "unknown_bank",
    "bad_signature",
    "stale",
    "replayed",
    "malformed",
)
# The integrity checks the IntegrityChecks workflow runs on its Temporal Schedule
# (workflows/ops/integrity.py): `receipts verify`, `audit verify`.
INTEGRITY_CHECKS: Final = ("receipts", "audit")
DB_POOL_STATES: Final = ("in_use", "idle", "overflow")
PROCESSES: Final = ("api", "worker", "prober")
CIRCUIT_STATES: Final = {"closed": 0, "half_open": 1, "open": 2}

# From 50 ms up, both latency histograms share their buckets.
_BUCKETS_FROM_50_MS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LATENCY_BUCKETS_SECONDS: Final = (0.005, 0.01, 0.025, *_BUCKETS_FROM_50_MS, 30.0)
# The fine lookup's target is p99 <= 20 ms: a bucket ends exactly there.
HTTP_BUCKETS_SECONDS: Final = (0.005, 0.01, 0.02, *_BUCKETS_FROM_50_MS)
_LAG_BUCKETS_SECONDS: Final = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 86400)

# --- bank links -----------------------------------------------------------
bank_link_up = Gauge(
    "bank_link_up",
    "1 if the link prober currently considers the bank link up, else 0.",
    ["bank"],
)
bank_outages_total = Counter(
    "bank_outages_total",
    "Bank link outages opened by the prober.",
    ["bank"],
)
bank_outage_duration_seconds = Histogram(
    "bank_outage_duration_seconds",
    "Duration of closed bank link outages.",
    ["bank"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
bank_probe_total = Counter(
    "bank_probe_total",
    "Link probes sent by the prober, by result (ok or fail).",
    ["bank", "result"],
)
bank_request_duration_seconds = Histogram(
    "bank_request_duration_seconds",
    "Latency of requests to a bank, by operation and mapped outcome.",
    ["bank", "operation", "outcome"],
    buckets=_LATENCY_BUCKETS_SECONDS,
)
circuit_breaker_state = Gauge(
    "circuit_breaker_state",
    "Circuit breaker state per bank: 0 closed, 1 half-open, 2 open.",
    ["bank"],
)

# --- payments and receipts --------------------------------------------------
payments_total = Counter(
    "payments_total",
    "Payments that reached a terminal state, by bank, outcome and whose doing it was "
    "(reason: ok, citizen, bank, ours).",
    ["bank", "outcome", "reason"],
)
payments_in_doubt = Gauge(
    "payments_in_doubt",
    "Payments currently being verified with the bank (outcome not yet known).",
    ["bank"],
)
payments_in_doubt_oldest_seconds = Gauge(
    "payments_in_doubt_oldest_seconds",
    "Age of the oldest payment still being verified with the bank.",
    ["bank"],
)
receipt_lag_seconds = Histogram(
    "receipt_lag_seconds",
    "Time from the bank debit being known to the receipt being issued.",
    buckets=_LAG_BUCKETS_SECONDS,
)
receipts_issued_total = Counter(
    "receipts_issued_total",
    "Receipts issued (first issue only; reissued copies are not counted).",
)
refunds_total = Counter(
    "refunds_total",
    "Refunds sent to a bank by compensation or by finance, by bank.",
    ["bank"],
)

webhook_requests_total = Counter(
    "webhook_requests_total",
    "Bank webhooks received, by bank (or 'unknown') and what became of them "
    "(accepted, unknown_bank, bad_signature, stale, replayed, malformed).",
    ["bank", "result"],
)
outbox_pending = Gauge(
    "outbox_pending",
    "Outbox notices not yet delivered that still have attempts left.",
)
outbox_oldest_pending_seconds = Gauge(
    "outbox_oldest_pending_seconds",
    "Age of the oldest undelivered outbox notice with attempts left; 0 when none.",
)
outbox_dead_letters = Gauge(
    "outbox_dead_letters",
    "Outbox notices that ran out of attempts without being delivered.",
)

# --- reconciliation -----------------------------------------------------------
reconciliation_discrepancies = Gauge(
    "reconciliation_discrepancies",
    "Open reconciliation discrepancies, by bank and kind.",
    ["bank", "kind"],
)
reconciliation_lines_total = Counter(
    "reconciliation_lines_total",
    "Statement lines reconciled, by bank and class.",
    ["bank", "result"],
)

reconciliation_last_success_timestamp_seconds = Gauge(
    "reconciliation_last_success_timestamp_seconds",
    "Unix time the last completed reconciliation run of a bank finished; 0 if none.",
    ["bank"],
)
reconciliation_runs_failed = Gauge(
    "reconciliation_runs_failed",
    "Reconciliation runs of a bank that failed in the last 24 hours.",
    ["bank"],
)

# --- approvals, disputes, integrity ---------------------------------------------
approvals_pending_oldest_seconds = Gauge(
    "approvals_pending_oldest_seconds",
    "Age of the oldest approval waiting for a second person's decision; 0 when none.",
)
disputes_open_oldest_seconds = Gauge(
    "disputes_open_oldest_seconds",
    "Age of the oldest citizen's dispute not yet resolved; 0 when none.",
)
integrity_check_last_success_timestamp_seconds = Gauge(
    "integrity_check_last_success_timestamp_seconds",
    "Unix time a scheduled integrity check (receipts, audit) last found nothing wrong.",
    ["check"],
)
integrity_check_last_failure_timestamp_seconds = Gauge(
    "integrity_check_last_failure_timestamp_seconds",
    "Unix time a scheduled integrity check (receipts, audit) last found a problem.",
    ["check"],
)
integrity_check_problems = Gauge(
    "integrity_check_problems",
    "Problems the last run of an integrity check found in this process "
    "(bad receipts and series gaps; changed or missing audit rows).",
    ["check"],
)

# --- workflows --------------------------------------------------------------------
workflow_steps_stopped_total = Counter(
    "workflow_steps_stopped_total",
    "Workflow steps (activities) stopped without a retry because retrying cannot help "
    "(a person must look), by activity type and error type.",
    ["activity", "error"],
)

# --- process health -------------------------------------------------------------
process_heartbeat_timestamp_seconds = Gauge(
    "reconciler_process_heartbeat_timestamp_seconds",
    "Unix time of the last heartbeat of a service process (api, worker, prober).",
    ["component"],
)
# Set by the OpsHeartbeat workflow's activity (workflows/ops/activities.py) in
# the worker that took it from the labelled queue: only a worker whose pollers
# work runs it. Labelled by the queue the task came from, so the values are
# the queues workers poll (the main one and one per configured bank).
worker_poll_heartbeat_timestamp_seconds = Gauge(
    "worker_poll_heartbeat_timestamp_seconds",
    "Unix time this worker last ran the heartbeat activity of a task queue "
    "(the scheduled OpsHeartbeat workflow, every 30 s): its pollers of that queue work.",
    ["task_queue"],
)
temporal_task_queue_backlog = Gauge(
    "temporal_task_queue_backlog",
    "Temporal's approximate backlog of the worker's task queue (tasks waiting for a "
    "worker), by task queue.",
    ["task_queue"],
)
postgres_up = Gauge(
    "postgres_up",
    "1 if this process's last check of PostgreSQL (SELECT 1, bounded) answered, else 0.",
    ["process"],
)
db_pool_connections = Gauge(
    "db_pool_connections",
    "Connections of this process's database pool, by state (in_use, idle, overflow).",
    ["process", "state"],
)
db_pool_size = Gauge(
    "db_pool_size",
    "Configured size of this process's database pool (overflow comes on top).",
    ["process"],
)
http_request_duration_seconds = Histogram(
    "http_request_duration_seconds",
    "API request latency by route template and method (every status).",
    ["route", "method"],
    buckets=HTTP_BUCKETS_SECONDS,
)
http_requests_total = Counter(
    "http_requests_total",
    "HTTP requests served by the API, by route template, method and status class.",
    ["route", "method", "status"],
)

# --- per issuing unit -------------------------------------------------------
# ``unit`` is a unit's code (``ledger.receipts.issue.unit_code``: ASCII,
# at most 30 characters). Units are many and not configured: the
# UNIT_LABELS_MAX busiest get their own value, the rest are summed into
# UNIT_OTHER, so a metric has at most UNIT_LABELS_MAX + 1 values of it.
UNIT_LABELS_MAX: Final = 50
UNIT_OTHER: Final = "other"
UNIT_PAYMENT_OUTCOMES: Final = ("succeeded", "declined", "refunded")
unit_payments_last_hour = Gauge(
    "unit_payments_last_hour",
    "Payments started in the last hour that finished, by issuing unit (code, or 'other') "
    "and outcome (succeeded, declined, refunded).",
    ["unit", "outcome"],
)
unit_receipts_issued = Gauge(
    "unit_receipts_issued",
    "Receipts issued so far, by issuing unit (code, or 'other'): the sum of its series' "
    "last numbers; its delta over a window is the receipts issued in it.",
    ["unit"],
)
unit_payments_in_doubt = Gauge(
    "unit_payments_in_doubt",
    "Payments whose outcome the bank has not told yet, by issuing unit (code, or 'other').",
    ["unit"],
)
unit_disputes_open = Gauge(
    "unit_disputes_open",
    "Citizens' disputes not yet resolved, by issuing unit (code, or 'other').",
    ["unit"],
)


def fold_units(activity: dict[str, int], cap: int = UNIT_LABELS_MAX) -> dict[str, str]:
    """The label of each unit code: itself for the ``cap`` busiest (ties by
    code, so every process and every refresh agrees), UNIT_OTHER for the
    rest (and for a code that is not a plain unit code: it never becomes a
    label of its own)."""
    valid = [code for code in activity if _UNIT_CODE.fullmatch(code) and code != UNIT_OTHER]
    busiest = set(sorted(valid, key=lambda code: (-activity[code], code))[:cap])
    return {code: code if code in busiest else UNIT_OTHER for code in activity}


_UNIT_CODE: Final = re.compile(r"[A-Z0-9-]{1,40}")
