"""Reading what the code logs, whatever an earlier test configured."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.testing import capture_logs


@contextmanager
def all_logs() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event logged meanwhile, at any level: a CLI test run
    in this process may have configured logging at ``warning``, which
    would drop the ``info`` lines a test reads."""
    wrapper = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(wrapper_class=wrapper)
