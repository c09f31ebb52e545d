"""The ops schedules a worker applies: which queues the heartbeat proves
(the worker's and each configured bank's, no other), how often, and that a
round missed while one runs is skipped, not queued."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy

from workflows.common import bank_queue
from workflows.ops import types as ot
from workflows.ops.schedules import build_ops_schedules, polled_queues, schedule_ids


def test_each_bank_has_its_own_queue_under_the_workers() -> None:
    assert bank_queue("fine-payments", "sgbank") == "fine-payments.bank.sgbank"
    assert bank_queue("q", "a") != bank_queue("q", "b")


def test_the_heartbeat_proves_every_polled_queue_once() -> None:
    assert polled_queues("q", ["hnbank", "sgbank", "hnbank"]) == [
        "q",
        "q.recovery",
        "q.bank.hnbank",
        "q.bank.sgbank",
    ]
    assert polled_queues("q", []) == ["q", "q.recovery"]


def test_both_schedules_per_task_queue_skip_overlaps() -> None:
    schedules = build_ops_schedules("q", ["sgbank"], 30, 3600)
    heartbeat_id, integrity_id = schedule_ids("q")
    assert set(schedules) == {heartbeat_id, integrity_id} == {"ops-heartbeat/q", "ops-integrity/q"}
    assert schedule_ids("other") != schedule_ids("q")
    every = {sid: [i.every for i in s.spec.intervals] for sid, s in schedules.items()}
    assert every == {
        heartbeat_id: [timedelta(seconds=30)],
        integrity_id: [timedelta(seconds=3600)],
    }
    for schedule in schedules.values():
        assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert isinstance(schedule.action, ScheduleActionStartWorkflow)
        assert schedule.action.task_queue == "q"
        assert schedule.action.execution_timeout is not None
    heartbeat = schedules[heartbeat_id].action
    assert isinstance(heartbeat, ScheduleActionStartWorkflow)
    assert heartbeat.workflow == "OpsHeartbeat"
    assert list(heartbeat.args) == [ot.HeartbeatInput(["q", "q.recovery", "q.bank.sgbank"])]
