"""How a load is tuned (the session settings its statements need, the size
from which a statement takes the split path) and how its stages are timed
(for bench/recon.py). Every module of the load reads these; none of them
holds a step of the load itself, so every one of them can import it."""

from __future__ import annotations

import time as time_module
from typing import Final

# Temporary tables live in the session's own buffers (8 MB unless set
# before the session's first temporary table): a big statement would
# spill them to disk at every step.
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
