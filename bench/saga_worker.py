"""One worker process of bench/saga_throughput.py, run until SIGTERM:

* ``real``: ``reconciler.worker.build_workers`` with the real
  ``PaymentActivities`` (the product's engine, the bank simulator over HTTP);
* ``bare``: a worker with the same configuration (``Worker.config()`` of a
  real one, built but never run) serving the four-no-op-activity saga; its
  workflow module is passed through the sandbox like ``workflows``.

Prints one line, ``ready``, once the worker polls.

    python -m bench.saga_worker '<json: kind, temporal_address, db_url,
        data_dir, real_queue, bare_queue, sim, log_path>'
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.bare_saga import BareActivities, BareSagaWorkflow
from bench.common import log_to_file
from bench.saga_support import Sim, payment_activities
from reconciler.db import create_engine
from reconciler.settings import Settings
from reconciler.worker import build_workers, run_workers


def bare_worker(real: Worker, task_queue: str) -> Worker:
    """The real worker's configuration, with the bare workflow and activities;
    the bare workflow's module is passed through the sandbox like ours."""
    config: dict[str, Any] = dict(real.config())
    runner = config["workflow_runner"]
    assert isinstance(runner, SandboxedWorkflowRunner)
    config.update(
        task_queue=task_queue,
        workflows=[BareSagaWorkflow],
        activities=BareActivities().all(),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=runner.restrictions.with_passthrough_modules("bench.bare_saga")
        ),
    )
    return Worker(**config)


async def run(config: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    client = await Client.connect(config["temporal_address"])
    # As ``reconciler worker`` builds it (no pre-ping).
    engine = create_engine(
        Settings(database_url=config["db_url"], data_dir=Path(config["data_dir"])),
        pre_ping=False,
    )
    try:
        async with aiohttp.ClientSession() as session:
            sim = Sim(**config["sim"])
            activities = payment_activities(engine, session, [sim])
            workers = build_workers(client, config["real_queue"], activities, [sim.bank])
            if config["kind"] == "bare":
                workers = [bare_worker(workers[0], config["bare_queue"])]
            # Printed once the workers' runs have started polling.
            asyncio.get_running_loop().call_soon(functools.partial(print, "ready", flush=True))
            await run_workers(workers, stop)
    finally:
        await engine.dispose()


def main() -> None:
    config = json.loads(sys.argv[1])
    assert config["kind"] in ("real", "bare"), config["kind"]
    stream = log_to_file(Path(config["log_path"]))
    try:
        asyncio.run(run(config))
    finally:
        stream.close()


if __name__ == "__main__":
    main()
