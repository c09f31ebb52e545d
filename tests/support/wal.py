"""A PostgreSQL that archives its WAL: finish the current segment and wait
until the archive has it."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg


def archive_current_segment(libpq_url: str, archive: Path, timeout_seconds: float = 60) -> str:
    """Switch to a new WAL segment and return the finished one's name once
    it is in ``archive``."""
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
    assert row is not None
    name = str(row[0])
    deadline = time.monotonic() + timeout_seconds
    while not (archive / name).is_file():
        assert time.monotonic() < deadline, f"{name} never reached {archive}"
        time.sleep(0.05)
    return name
