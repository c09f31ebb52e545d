"""How a load is tuned (the session settings its statements need, the size
from which a statement takes the split path) and how its stages are timed
(for bench/recon.py). Every module of the load reads these; none of them
holds a step of the load itself, so every one of them can import it."""

from __future__ import annotations

import re
import time as time_module
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
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
# worth a second connection and commit).
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


@dataclass(frozen=True)
class LoadTuning:
    """What a load may be tuned by; the defaults are production's. Tests
    lower the thresholds to take the split path, or hand the plain lines
    out a few at a time, with a handful of lines; bench/recon.py raises the
    split threshold past the largest statement to time one connection."""

    # From this many lines, the split path (``LINES_PER_STATEMENT_MAX + 1``:
    # never).
    parallel_lines_min: int = PARALLEL_LINES_MIN
    plain_slice_lines: int = PLAIN_SLICE_LINES
    statement_timeout: str = STATEMENT_TIMEOUT
    # A longer statement is refused whole.
    lines_per_statement_max: int = LINES_PER_STATEMENT_MAX

    def __post_init__(self) -> None:
        if not 1 <= self.parallel_lines_min <= LINES_PER_STATEMENT_MAX + 1:
            raise ValueError(f"parallel_lines_min must be 1 to {LINES_PER_STATEMENT_MAX + 1}")
        if not 1 <= self.plain_slice_lines <= LINES_PER_STATEMENT_MAX:
            raise ValueError(f"plain_slice_lines must be 1 to {LINES_PER_STATEMENT_MAX}")
        if not 1 <= self.lines_per_statement_max <= LINES_PER_STATEMENT_MAX:
            raise ValueError(f"lines_per_statement_max must be 1 to {LINES_PER_STATEMENT_MAX}")
        if not SETTING_VALUE.fullmatch(self.statement_timeout):
            raise ValueError("statement_timeout must be a duration such as 5min or 200ms")


DEFAULT_TUNING: Final = LoadTuning()


class LoadPoint(StrEnum):
    """Points of a load where a probe is called, with the connection that
    reached it: the seams the failure and ordering tests step in at."""

    # The main connection, before the split path's decision.
    DECIDE = "decide"
    # Either connection, before it classifies the lines that are not plain
    # booked ones (the helper's first step of its own).
    CLASSIFY = "classify"
    # Either connection, before it takes plain lines to write.
    COPY_PLAIN = "copy_plain"
    # Either connection, before and after it looks for the payments missing
    # at the bank.
    MISSING_AT_BANK = "missing_at_bank"
    MISSING_AT_BANK_DONE = "missing_at_bank_done"
    # The main connection, every line written (the helper committed),
    # before it closes what resolved itself.
    AUTO_RESOLVE = "auto_resolve"


# Called at every ``LoadPoint``; what it raises fails the load there.
Probe = Callable[[LoadPoint, AsyncConnection], Awaitable[None]]


async def no_probe(point: LoadPoint, conn: AsyncConnection) -> None:
    """Production's probe: nothing."""


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
