"""Every Prometheus metric of the service, defined once.

Names are in base units with ``_total`` / ``_seconds`` suffixes. Label values
are bounded: ``bank`` is a configured bank id, ``operation`` and ``outcome``
are members of small closed sets (see the ``*_VALUES`` tuples below).

Metrics live in the process-wide default registry, like every
prometheus-client program; each process (API, worker, prober) exposes it on
``/metrics``.
"""

from __future__ import annotations

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
CIRCUIT_STATES: Final = {"closed": 0, "half_open": 1, "open": 2}

_LATENCY_BUCKETS_SECONDS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
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
    "Payments that reached a terminal or in-doubt state, by bank and outcome.",
    ["bank", "outcome"],
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
http_requests_total = Counter(
    "http_requests_total",
    "HTTP requests served by the API, by route template, method and status class.",
    ["route", "method", "status"],
)
