"""Structured logging (structlog) for every process, configured once."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    log_level = getattr(logging, level.upper())
    logging.basicConfig(stream=sys.stderr, level=log_level, format="%(message)s")
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(log_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def uncached_logger(name: str) -> Any:
    """A logger bound from the configuration in force at each call, never
    cached on its first use (as ``get_logger``'s are once logging is
    configured). For the lines tests read (the access log, the edge's
    errors, the outbox's notices): a cached logger keeps the processors of
    its first use and escapes ``structlog.testing.capture_logs``. Binding
    per call costs a few microseconds a line."""
    return structlog.wrap_logger(None, cache_logger_on_first_use=False, logger_factory_args=(name,))
