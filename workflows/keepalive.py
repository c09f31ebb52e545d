"""Heartbeats for an activity that waits on something slow (a bank call).

An activity scheduled with a heartbeat timeout is given up on by the
Temporal server, and tried again by another worker, once its heartbeats
stop: a worker killed mid-call is noticed within that timeout instead of
the attempt's whole start-to-close. ``keeps_alive`` wraps an activity
method so that, while it runs, it heartbeats every third of its timeout
(the SDK throttles them further). It sends nothing for an activity
scheduled without a heartbeat timeout or called outside an activity, and
nothing for a call that ends before the first beat: a bank answering in
milliseconds costs no extra round trip to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import TypeVar

from temporalio import activity

S = TypeVar("S")
A = TypeVar("A")
R = TypeVar("R")


async def _beat(every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        activity.heartbeat()


def keeps_alive(
    method: Callable[[S, A], Awaitable[R]],
) -> Callable[[S, A], Awaitable[R]]:
    """``method``, heartbeating while it runs (see the module's docstring)."""

    @wraps(method)
    async def run(self: S, arg: A) -> R:
        # Called as a plain method (a test, a tool), there is no one to beat for.
        timeout = activity.info().heartbeat_timeout if activity.in_activity() else None
        if not timeout:
            return await method(self, arg)
        beating = asyncio.create_task(_beat(timeout.total_seconds() / 3))
        try:
            return await method(self, arg)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    return run
