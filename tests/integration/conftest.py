from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.devstack.temporal import TemporalInfo
from tests.support.stack import SagaStack, StackWith, saga_stack


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    """Settings overrides for this module's stacks (timings); a test module
    that needs others defines its own fixture of this name."""
    return {}


@pytest.fixture
def stack_with(
    tmp_path: Path,
    engine: AsyncEngine,
    db_url: str,
    temporal_server: TemporalInfo,
    task_queue: str,
) -> StackWith:
    """``saga_stack`` on this test's directory, database, Temporal server and
    task queue; call it with the stack's own options."""
    return functools.partial(
        saga_stack, tmp_path, engine, db_url, temporal_server.address, task_queue
    )


@pytest.fixture
async def stack(stack_with: StackWith, stack_overrides: dict[str, Any]) -> AsyncIterator[SagaStack]:
    async with stack_with(**stack_overrides) as s:
        yield s
