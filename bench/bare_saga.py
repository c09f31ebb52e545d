"""The baseline of bench/saga_throughput.py: a bare Temporal saga of four
no-op activity steps (one activity, run four times: to Temporal each run is
a step of its own), with the same activity options as the payment saga's
steps; it answers how many steps it ran. Its own module with nothing but Temporal imports, so the workflow
sandbox can load it like ``workflows.payment.workflow`` (passed through)."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from workflows.common import (
        BANK_CALL_RETRY,
        BANK_CALL_SCHEDULE_TO_CLOSE,
        BANK_CALL_TIMEOUT,
    )

STEP = "bare.step"
STEPS = 4


@dataclass(frozen=True)
class BareInput:
    saga_id: str


@workflow.defn(name="BenchBareSaga")
class BareSagaWorkflow:
    @workflow.run
    async def run(self, inp: BareInput) -> int:
        for _ in range(STEPS):
            await workflow.execute_activity(
                STEP,
                inp,
                result_type=BareInput,
                start_to_close_timeout=BANK_CALL_TIMEOUT,
                schedule_to_close_timeout=BANK_CALL_SCHEDULE_TO_CLOSE,
                retry_policy=BANK_CALL_RETRY,
            )
        return STEPS


class BareActivities:
    @activity.defn(name=STEP)
    async def step(self, inp: BareInput) -> BareInput:
        return inp

    def all(self) -> list[object]:
        return [self.step]
