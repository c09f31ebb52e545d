"""``python -m bank_adapters.simulators --protocol rest|vietqr ...``: run one
simulator in the foreground (``reconciler sim`` is the usual way; this entry
point exists so the simulator can be run, and killed, on its own). Prints
one JSON line with its URLs once it answers; SIGINT/SIGTERM stop it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from bank_adapters.simulators.server import (
    SIM_ACCOUNT_NUMBER,
    SIM_BANK_BIN,
    SimulatorInfo,
    run_simulator,
)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bank_adapters.simulators")
    parser.add_argument("--protocol", choices=("rest", "vietqr"), required=True)
    parser.add_argument("--bank-id", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--admin-port", type=int, default=0)
    parser.add_argument("--state", type=Path, required=True, help="SQLite state file")
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument(
        "--webhook-secret-env",
        default="SIM_WEBHOOK_SECRET",
        help="environment variable holding the webhook secret (kept off the command line)",
    )
    parser.add_argument("--account-number", default=SIM_ACCOUNT_NUMBER)
    parser.add_argument("--bank-bin", default=SIM_BANK_BIN)
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def ready(info: SimulatorInfo) -> None:
        print(json.dumps(asdict(info)), flush=True)

    await run_simulator(
        args.protocol,
        args.bank_id,
        args.host,
        args.port,
        args.admin_port,
        args.state,
        args.webhook_url,
        os.environ.get(args.webhook_secret_env, ""),
        stop,
        account_number=args.account_number,
        bank_bin=args.bank_bin,
        ready=ready,
    )


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_main(_arguments(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
