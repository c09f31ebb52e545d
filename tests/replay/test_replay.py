"""Replay every recorded history in ``histories/<domain>/`` against today's
workflow code: the production workflow classes (``reconciler.worker.WORKFLOWS``,
all of them) under the worker's own sandbox runner. A failure means a change
would break workflows already running in production (non-determinism): guard
it with ``workflow.patched`` instead of re-recording. docs/temporal.md says
when re-recording is right and how (``record.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from reconciler.worker import WORKFLOWS, sandbox_runner

HISTORIES_DIR = Path(__file__).resolve().parent / "histories"
# Every production workflow must keep at least one history (the names of
# ``@workflow.defn(name=...)``; one per class of ``WORKFLOWS``).
REQUIRED_WORKFLOW_TYPES = {
    "FinePayment",
    "ExternalDebit",
    "Reconciliation",
    "Dispute",
    "DiscrepancyAction",
    "LinkRecovery",
    "OpsHeartbeat",
    "IntegrityChecks",
}
CLOSING_EVENTS = {
    "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
    "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED",
}


def history_files() -> list[Path]:
    return sorted(HISTORIES_DIR.glob("*/*.json"))


def load(path: Path) -> tuple[dict[str, Any], WorkflowHistory]:
    raw = json.loads(path.read_text())
    started = raw["events"][0].get("workflowExecutionStartedEventAttributes", {})
    workflow_id = started.get("workflowId") or f"replay/{path.stem}"
    return raw, WorkflowHistory.from_json(workflow_id, raw)


def workflow_type(raw: dict[str, Any]) -> str:
    name: str = raw["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
    return name


def test_there_are_histories_to_replay() -> None:
    files = history_files()
    assert files, f"no recorded histories in {HISTORIES_DIR}; run python -m tests.replay.record"
    types = {workflow_type(load(p)[0]) for p in files}
    assert len(REQUIRED_WORKFLOW_TYPES) == len(WORKFLOWS), "a workflow type is not required"
    missing = REQUIRED_WORKFLOW_TYPES - types
    assert not missing, f"no history of {sorted(missing)}: record one (docs/temporal.md)"


@pytest.mark.parametrize("path", history_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_history_replays(path: Path) -> None:
    raw, history = load(path)
    # Only a whole run shows every command the code must still give.
    assert raw["events"][-1]["eventType"] in CLOSING_EVENTS, f"{path.name} is not a closed run"
    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=sandbox_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, (
        f"{path.name} no longer replays: {result.replay_failure!r}"
    )
