"""Record the workflow histories that ``test_replay.py`` replays in CI.

Run by hand, from the repository root, never in CI::

    .venv/bin/python -m tests.replay.record                 # every scenario
    .venv/bin/python -m tests.replay.record fine_payment.declined ...
    .venv/bin/python -m tests.replay.record --list
    .venv/bin/python -m tests.replay.record --tag v2 NAME   # <domain>/<name>@v2.json

What it does: in a temporary directory it starts an embedded PostgreSQL
(migrated to head) and a Temporal dev server; for each scenario it clones a
fresh database and starts the real API, a real worker with every activity
of the production worker (``reconciler.worker.build_workers``, through
``tests.support.stack.saga_stack(full_worker=True)``) on a fresh task queue,
and both bank simulators. The scenario drives a payment through the API and
the simulators' fault admin, the recorder waits for the workflow to close,
checks that its history shows what the scenario claims (e.g. a
``link_recovered`` signal), and writes ``handle.fetch_history().to_json()``
to ``tests/replay/histories/<domain>/<name>.json``. A scenario whose history
misses what it claims writes nothing.

When to record, and when to re-record: docs/temporal.md. In short, a
history is the record of what *deployed* workers did: record a new scenario
when you add one; re-record an existing one only for a workflow change that
was never deployed; after a ``workflow.patched`` change keep the old file and
record the new path next to it with ``--tag``: both must replay.

Adding a scenario is one function in ``scenarios.py``::

    @scenario("dispute.approved", expect={"signal:approve": 1})
    async def dispute_approved(stack: SagaStack) -> WorkflowHandle[Any, Any]:
        ...drive the stack...
        return stack.client.get_workflow_handle(workflow_id)

Names are ``<workflow>.<story>`` (the file name); the workflow part decides
the domain folder (``DOMAINS``). ``expect`` maps markers to a minimum count:
``activity:<type>`` (remote or local), ``signal:<name>``, ``timer``,
``continue_as_new``. ``overrides`` are Settings overrides (timings) for that
scenario's stack.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
from sqlalchemy.ext.asyncio import create_async_engine

from reconciler.devstack.postgres import EmbeddedPostgres, PostgresInfo
from reconciler.devstack.temporal import TemporalDevServer
from tests.replay.scenarios import SCENARIOS, Scenario, markers
from tests.support.stack import saga_stack

HISTORIES_DIR = Path(__file__).resolve().parent / "histories"
# The folder of each workflow's histories (the first part of a scenario name).
DOMAINS = {
    "fine_payment": "payment",
    "external_debit": "payment",
    "link_recovery": "payment",
    "reconciliation": "reconciliation",
    "discrepancy_action": "reconciliation",
    "dispute": "disputes",
    "ops_heartbeat": "ops",
    "integrity_checks": "ops",
}
WORKFLOW_CLOSE_SECONDS_MAX = 60.0


async def _record_one(
    sc: Scenario,
    work_dir: Path,
    pg: PostgresInfo,
    template: str,
    temporal_address: str,
    tag: str | None,
) -> Path:
    db_name = f"replay_{sc.name.replace('.', '_')}_{secrets.token_hex(3)}"
    with psycopg.connect(pg.libpq_url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}" TEMPLATE "{template}"')
    scenario_dir = work_dir / db_name
    scenario_dir.mkdir()
    engine = create_async_engine(pg.url(db_name), pool_size=5, max_overflow=5)
    try:
        async with saga_stack(
            scenario_dir,
            engine,
            pg.url(db_name),
            temporal_address,
            f"replay-{uuid.uuid4().hex[:12]}",
            full_worker=True,
            **sc.overrides,
        ) as stack:
            handle = await sc.run(stack)
            await asyncio.wait_for(handle.result(), WORKFLOW_CLOSE_SECONDS_MAX)
            history = await handle.fetch_history()
    finally:
        await engine.dispose()
    seen = markers(history)
    missing = {m: n for m, n in sc.expect.items() if seen[m] < n}
    if missing:
        raise AssertionError(
            f"{sc.name}: history lacks {missing} (has {dict(seen)}); not written, run it again"
        )
    folder = HISTORIES_DIR / DOMAINS[sc.name.split(".")[0]]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{sc.name}@{tag}.json" if tag else f"{sc.name}.json")
    path.write_text(history.to_json() + "\n")
    return path


async def record(names: list[str], work_dir: Path, tag: str | None = None) -> list[Path]:
    from ledger.migrations import upgrade_to_head

    pg_server = EmbeddedPostgres(
        work_dir / "pgdata", work_dir / "postgres.log", database="postgres", durable=False
    )
    temporal = TemporalDevServer(None, work_dir / "temporal.log")
    pg = pg_server.start()
    try:
        address = temporal.start().address
        try:
            template = "replay_template"
            with psycopg.connect(pg.libpq_url("postgres"), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{template}"')
            upgrade_to_head(pg.url(template))
            written = []
            for name in names:
                path = await _record_one(SCENARIOS[name], work_dir, pg, template, address, tag)
                print(f"recorded {name} -> {path.relative_to(Path.cwd())}")
                written.append(path)
            return written
        finally:
            temporal.stop()
    finally:
        pg_server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help="names to record (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--tag",
        help="write <name>@<tag>.json, keeping the histories of earlier code (e.g. the "
        "version before a workflow.patched change) next to the new ones",
    )
    args = parser.parse_args(argv)
    if args.list:
        for name in SCENARIOS:
            print(name)
        return 0
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {sorted(SCENARIOS)}")
    with tempfile.TemporaryDirectory(prefix="replay-record-") as tmp:
        asyncio.run(record(args.scenarios or list(SCENARIOS), Path(tmp), args.tag))
    return 0


if __name__ == "__main__":
    sys.exit(main())
