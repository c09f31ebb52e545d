"""How a load is tuned (the session settings its statements need, the size
from which a statement takes the split path) and how its stages are timed
(for bench/recon.py). Every module of the load reads these; none of them
holds a step of the load itself, so every one of them can import it."""

from __future__ import annotations

import re
import time as time_module
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.reconciliation.sql_template import fill, identifier, literal

# A session's own buffers for its temporary tables (see lines.copy_into_staging).
TEMP_BUFFERS: Final = "256MB"
LINES_PER_STATEMENT_MAX: Final = 1_000_000

# Hash joins over a million payments want more than the default 4 MB.
WORK_MEM: Final = "256MB"
# No statement of a load runs longer than this (a million lines take seconds
# in all): a plan gone wrong fails the load, which the workflow retries,
# instead of holding the bank's lock for as long as it runs.
STATEMENT_TIMEOUT: Final = "5min"


# A statement of at least this many lines is loaded by the split path (2b):
# its keys staged first, its plain booked lines written by COPY, its other
# lines classified by a second connection meanwhile (a smaller one is not
# worth a second connection and commit). Tests lower it.
PARALLEL_LINES_MIN: Final = 50_000

# The plain lines are handed out this many at a time to whichever connection
# asks first: the main one from the start, the helper once its own lines are
# written (so neither waits for the other at the end).
PLAIN_SLICE_LINES: Final = 20_000


# The settings a load sets for its transaction, and the form of their values
# (a size or a duration: digits and a unit).
SESSION_SETTINGS: Final = frozenset({"temp_buffers", "work_mem", "statement_timeout"})
SETTING_VALUE: Final = re.compile(r"[1-9][0-9]{0,8}(kB|MB|GB|ms|s|min)")


async def set_local(conn: AsyncConnection, setting: str, value: str) -> None:
    """``SET LOCAL setting = 'value'``: for the rest of the transaction."""
    assert setting in SESSION_SETTINGS, setting
    assert SETTING_VALUE.fullmatch(value), f"{setting}: {value!r}"
    sql = fill("SET LOCAL {setting} = {value}", setting=identifier(setting), value=literal(value))
    await conn.execute(text(sql))


class Stopwatch:
    """Seconds per stage of a load, for benchmarks (``None``: not kept)."""

    def __init__(self, sink: dict[str, float] | None, prefix: str = "") -> None:
        self._sink = sink
        self._prefix = prefix  # "helper_": a second connection's stages, meanwhile
        self._last = time_module.perf_counter()

    @property
    def sink(self) -> dict[str, float] | None:
        return self._sink

    def lap(self, stage: str) -> None:
        now = time_module.perf_counter()
        if self._sink is not None:
            stage = self._prefix + stage
            self._sink[stage] = self._sink.get(stage, 0.0) + now - self._last
        self._last = now
