"""What every benchmark shares: the command line (``parser``), the servers
(PostgreSQL, Temporal, a bank simulator in its own process), the product's
logging sent to a file, percentiles, and the report: printed as JSON and
written into docs/benchmarks.md between per-benchmark markers (``report``).
None of it is timed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import structlog

from reconciler.devstack.postgres import EmbeddedPostgres, PostgresInfo
from reconciler.devstack.temporal import TemporalDevServer, TemporalInfo
from reconciler.logs import configure_logging

T = TypeVar("T")
SIMULATOR_START_SECONDS_MAX = 60.0

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


@contextlib.asynccontextmanager
async def simulator_process(
    protocol: str, bank_id: str, state: Path, *, quiet: bool = False
) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, Any]]]:
    """A bank simulator in its own process (``python -m bank_adapters.simulators``,
    free ports on 127.0.0.1, no webhooks), so its work does not share the
    measured event loop; yields the process and the URLs it printed.
    ``quiet`` sends its stderr to /dev/null."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bank_adapters.simulators",
        "--protocol",
        protocol,
        "--bank-id",
        bank_id,
        "--state",
        str(state),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL if quiet else None,
        cwd=ROOT,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), SIMULATOR_START_SECONDS_MAX)
        info = json.loads(line)
        assert info["url"].startswith("http://127.0.0.1:"), info
        yield process, info
    finally:
        if process.returncode is None:
            process.terminate()
        await process.stdout.read()
        await process.wait()


def log_to_file(path: Path) -> IO[str]:
    """The product's logging (info, JSON, as a worker runs in production),
    written to a file: the cost of logging is part of the measurement."""
    configure_logging("info", "json")
    stream = path.open("a", encoding="utf-8")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=stream))
    return stream


def run_logged(prefix: str, main: Callable[[Path], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` in a fresh temporary directory, with the product's
    logging going to ``worker.log`` there."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        stream = log_to_file(Path(tmp) / "worker.log")
        try:
            return asyncio.run(main(Path(tmp)))
        finally:
            stream.close()


def parser(description: str | None, **defaults: float | str) -> argparse.ArgumentParser:
    """A benchmark's command line: the ``--no-write`` every one has, and an
    option ``--some-name`` for each ``some_name=default`` (of its type)."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    for name, default in defaults.items():
        result.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    return result


@dataclass(frozen=True)
class Section(Generic[T]):
    """A benchmark's section of docs/benchmarks.md: its marker, its title,
    and how a result reads there."""

    name: str
    title: str
    body: Callable[[T], str]


def report(result: T, args: argparse.Namespace, section: Section[T]) -> None:
    """Print the result as JSON; unless ``--no-write``, also write its
    section of docs/benchmarks.md."""
    print_json(result)
    if not args.no_write:
        write_section(section.name, section.title, section.body(result))


def report_logged(
    args: argparse.Namespace, section: Section[T], main: Callable[[Path], Coroutine[Any, Any, T]]
) -> None:
    """``report`` what ``main`` returns, run by ``run_logged``."""
    report(run_logged(f"bench-{section.name}-", main), args, section)


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


def print_json(result: object) -> None:
    print(json.dumps(result, indent=2, ensure_ascii=False))


_DOC_HEADER = """# Benchmarks

Every figure here was produced by a script in `bench/`, with the command shown
above it. The machine is noisy (2 cores shared with everything else), so where
possible a benchmark runs a baseline in the same process and reports a ratio.
No timing threshold is asserted by any unit test; the targets are from
the performance targets (docs/benchmarks.md).
"""
