"""The in-memory OutageStore against the shared store contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from observability.outages import InMemoryOutageStore, OutageStore
from tests.unit.observability.outage_store_contract import CONTRACT


@pytest.mark.parametrize("case", CONTRACT, ids=lambda case: case.__name__)
async def test_in_memory_store(case: Callable[[OutageStore], Awaitable[None]]) -> None:
    await case(InMemoryOutageStore())
