"""Fixtures shared by the payment tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from reconciler.api.app import create_app
from reconciler.api.temporal_link import TemporalLink
from reconciler.devstack.ports import free_port
from tests.support.stack import SagaStack


@pytest.fixture
async def api_without_temporal(stack: SagaStack) -> AsyncIterator[TestClient[Any, Any]]:
    """The same API and database, with the workflow service unreachable."""
    unreachable = TemporalLink(f"127.0.0.1:{free_port()}", "default", connect_timeout_seconds=1)
    app = create_app(stack.settings, engine=stack.engine, temporal=unreachable)
    async with TestClient(TestServer(app)) as client:
        yield client
