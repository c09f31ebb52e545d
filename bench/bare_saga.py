"""The baseline of bench/saga_throughput.py: a bare Temporal saga of four
no-op activities, with the same activity options as the payment saga's
steps. Its own module with nothing but Temporal imports, so the workflow
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

STEPS = ("bare.step1", "bare.step2", "bare.step3", "bare.step4")


@dataclass(frozen=True)
class BareInput:
    saga_id: str


@dataclass(frozen=True)
class BareResult:
    saga_id: str
    steps: int


@workflow.defn(name="BenchBareSaga")
class BareSagaWorkflow:
    @workflow.run
    async def run(self, inp: BareInput) -> BareResult:
        for step in STEPS:
            await workflow.execute_activity(
                step,
                inp,
                result_type=BareInput,
                start_to_close_timeout=BANK_CALL_TIMEOUT,
                schedule_to_close_timeout=BANK_CALL_SCHEDULE_TO_CLOSE,
                retry_policy=BANK_CALL_RETRY,
            )
        return BareResult(inp.saga_id, len(STEPS))


class BareActivities:
    @activity.defn(name="bare.step1")
    async def step1(self, inp: BareInput) -> BareInput:
        return inp

    @activity.defn(name="bare.step2")
    async def step2(self, inp: BareInput) -> BareInput:
        return inp

    @activity.defn(name="bare.step3")
    async def step3(self, inp: BareInput) -> BareInput:
        return inp

    @activity.defn(name="bare.step4")
    async def step4(self, inp: BareInput) -> BareInput:
        return inp

    def all(self) -> list[object]:
        return [self.step1, self.step2, self.step3, self.step4]
