"""Just enough PromQL reading for tests: the metric names an expression uses,
and the names the service may refer to."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client.metrics import MetricWrapperBase

from observability import metrics

REPO = Path(__file__).resolve().parents[3]
ALERTS_PATH = REPO / "observability" / "prometheus" / "alerts.yml"

_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "bool", "inf", "nan", "atan2"}
)
# Exported by every scrape (up) or by prometheus-client's default process and
# platform collectors. Temporal server metric names would go here too, on
# purpose, once a panel or rule uses one.
STANDARD_METRICS = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "python_info",
        # Prometheus's own series of its alert rules' states.
        "ALERTS",
    }
)
# The worker's Temporal SDK metrics (its own Prometheus exporter, names as
# ``reconciler.worker`` configures it: seconds, ``_total`` on counters), as
# the SDK exports them; the ones rules and panels use.
TEMPORAL_SDK_METRICS = frozenset(
    {
        "temporal_activity_schedule_to_start_latency_seconds_bucket",
        "temporal_workflow_task_schedule_to_start_latency_seconds_bucket",
        "temporal_long_request_failure_total",
        "temporal_worker_task_slots_available",
        "temporal_worker_task_slots_used",
        "temporal_num_pollers",
        "temporal_request_failure_total",
    }
)
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def service_metric_names() -> set[str]:
    """Every sample name observability.metrics can expose."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def recording_rule_names() -> set[str]:
    doc = yaml.safe_load(ALERTS_PATH.read_text())
    return {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}


def allowed_metric_names() -> set[str]:
    return service_metric_names() | recording_rule_names() | STANDARD_METRICS | TEMPORAL_SDK_METRICS


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords, label names
    and durations left out)."""
    s = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    s = re.sub(r"'(?:\\.|[^'\\])*'", "''", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\w+", " ", s)
    names: set[str] = set()
    for match in re.finditer(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*", s):
        token = match.group()
        if token in _KEYWORDS or s[match.end() :].lstrip().startswith("("):
            continue
        names.add(token)
    return names
