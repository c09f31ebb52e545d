"""Shared helpers for the benchmarks: infrastructure, percentiles, and writing
results into docs/benchmarks.md between per-benchmark markers."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from reconciler.devstack.postgres import EmbeddedPostgres, PostgresInfo
from reconciler.devstack.temporal import TemporalDevServer, TemporalInfo

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sample."""
    assert samples, "no samples"
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(samples_seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_seconds]
    return {
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


@contextlib.contextmanager
def postgres(durable: bool = True) -> Iterator[PostgresInfo]:
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data", Path(tmp) / "pg.log", durable=durable)
        info = server.start()
        try:
            yield info
        finally:
            server.stop()


@contextlib.contextmanager
def temporal() -> Iterator[TemporalInfo]:
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as tmp:
        server = TemporalDevServer(None, Path(tmp) / "temporal.log")
        info = server.start()
        try:
            yield info
        finally:
            server.stop()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def command_line() -> str:
    script = Path(sys.argv[0]).resolve().relative_to(ROOT)
    return " ".join([".venv/bin/python", str(script), *sys.argv[1:]])


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    section = (
        f"{start}\n## {title}\n\n"
        f"Command: `{command_line()}`  \n"
        f"Run: {stamp}, commit {commit or 'uncommitted'}, {machine()}\n\n"
        f"{body.strip()}\n{end}"
    )
    text = DOC.read_text() if DOC.exists() else _DOC_HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{section}\n"
    )
    DOC.write_text(text)


def print_json(result: dict[str, object]) -> None:
    print(json.dumps(result, indent=2, ensure_ascii=False))


_DOC_HEADER = """# Benchmarks

Every figure here was produced by a script in `bench/`, with the command shown
above it. The machine is noisy (2 cores shared with everything else), so where
possible a benchmark runs a baseline in the same process and reports a ratio.
No timing threshold is asserted by any unit test; the targets are from
DESIGN §5.
"""
