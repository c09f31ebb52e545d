"""``keeps_alive``: an activity waiting on a bank heartbeats while it waits,
so a worker killed mid-call is noticed within the heartbeat timeout; a call
scheduled without one, or ending before the first beat, sends none."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from temporalio.testing import ActivityEnvironment

from workflows.keepalive import keeps_alive


class Bank:
    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds

    @keeps_alive
    async def call(self, arg: str) -> str:
        await asyncio.sleep(self.wait_seconds)
        return arg.upper()


def environment(heartbeat_timeout: timedelta | None) -> tuple[ActivityEnvironment, list[object]]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=heartbeat_timeout)
    beats: list[object] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return env, beats


async def test_a_slow_call_heartbeats_while_it_waits_and_returns_its_answer() -> None:
    env, beats = environment(timedelta(milliseconds=30))
    assert await env.run(Bank(wait_seconds=0.3).call, "sent") == "SENT"
    assert beats, "no heartbeat during a call ten heartbeat periods long"


async def test_no_heartbeat_timeout_means_no_heartbeat() -> None:
    env, beats = environment(None)
    assert await env.run(Bank(wait_seconds=0.1).call, "sent") == "SENT"
    assert beats == []


async def test_a_fast_answer_costs_no_heartbeat() -> None:
    env, beats = environment(timedelta(seconds=30))
    assert await env.run(Bank(wait_seconds=0).call, "sent") == "SENT"
    assert beats == []


async def test_the_heartbeats_stop_with_the_call() -> None:
    env, beats = environment(timedelta(milliseconds=30))
    await env.run(Bank(wait_seconds=0.1).call, "sent")
    seen = len(beats)
    await asyncio.sleep(0.1)
    assert len(beats) == seen


async def test_called_outside_an_activity_it_is_the_plain_method() -> None:
    """Tests and tools call the activities' methods directly."""
    assert await Bank(wait_seconds=0.05).call("sent") == "SENT"
