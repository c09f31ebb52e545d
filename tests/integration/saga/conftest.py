from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.devstack.temporal import TemporalInfo
from tests.support.stack import SagaStack, saga_stack


@pytest.fixture
async def stack(
    tmp_path: Path,
    engine: AsyncEngine,
    db_url: str,
    temporal_server: TemporalInfo,
    task_queue: str,
) -> AsyncIterator[SagaStack]:
    async with saga_stack(tmp_path, engine, db_url, temporal_server.address, task_queue) as s:
        yield s
