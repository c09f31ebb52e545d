from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.devstack.temporal import TemporalInfo
from tests.support.stack import SagaStack, saga_stack


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    """Settings overrides for this module's stacks (timings); a test module
    that needs others defines its own fixture of this name."""
    return {}


@pytest.fixture
async def stack(
    tmp_path: Path,
    engine: AsyncEngine,
    db_url: str,
    temporal_server: TemporalInfo,
    task_queue: str,
    stack_overrides: dict[str, Any],
) -> AsyncIterator[SagaStack]:
    async with saga_stack(
        tmp_path, engine, db_url, temporal_server.address, task_queue, **stack_overrides
    ) as s:
        yield s
