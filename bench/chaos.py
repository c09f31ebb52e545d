"""Chaos harness (issue 18): payments through a real ``reconciler dev`` while
its parts are killed, then the invariants checked against the simulators'
ground truth.

A ``reconciler dev`` is started on a fresh data dir (its supervisor restarts
what dies). N fines are registered and paid through both banks by a bounded
pool of clients; every fifth payment is clicked twice with the same
Idempotency-Key; a few simulator fault modes are switched on while the
traffic runs (latency, a 500 after the debit, a lost response); and at
seeded random moments one process of each ``--kills`` kind is ``kill -9``-ed
(pids from dev.json, re-read after each restart; ``all`` kills the
supervisor and every child at once, then starts ``reconciler dev`` again on
the same data dir). When the traffic is done the faults are cleared and the
harness waits (bounded) until no payment is in doubt, then checks
(``bench/chaos_checks.py``): every bank debit ends as exactly one receipt or
one refund, nothing is settled without a debit, the postings sum to zero,
receipt numbers are unique and gapless per series, and ``reconciler receipts
verify`` and ``reconciler audit verify`` exit 0. Exit 1 on any violation.

Every request goes to 127.0.0.1 (the dev stack's own ports); each client
call is retried at most ``_TRIES`` times (a 503 or a refused connection while
a part restarts), and the wait for settlement is bounded (``_SETTLE_SECONDS``).

Run:  .venv/bin/python bench/chaos.py [--payments 10000] [--kills worker,api,...]
      [--seed 1] [--concurrency 8] [--no-write]
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import psycopg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_checks import (
    IN_DOUBT,
    ChaosOptionError,
    Kill,
    Ledger,
    Tally,
    check_invariants,
    kill_schedule,
    parse_kills,
    pids_for,
    table,
)
from bench.common import parser, write_section

BANKS = ("sgbank", "hnbank")
AMOUNT_VND = 750_000
_TRIES = 60  # per client call; a restart takes a few seconds, 1 s apart
_START_SECONDS = 180
_SETTLE_SECONDS = 300
# Switched on for the middle of the traffic, on one bank each (the fault
# modes that leave a debit made but its answer lost or late).
FAULTS = (
    ("sgbank", {"mode": "latency", "latency_ms": 200, "probability": 0.2}),
    ("sgbank", {"mode": "http_500", "after_debit": True, "probability": 0.05}),
    ("hnbank", {"mode": "lost_response", "probability": 0.05}),
    ("hnbank", {"mode": "timeout_after_debit", "hang_seconds": 2.0, "probability": 0.05}),
)


def _http(
    url: str, method: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """(status, JSON) of one call; (0, reason) when nothing answered."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"chaos traffic goes to 127.0.0.1 only, not {url}")
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")[:500]
    except (OSError, ValueError) as err:
        return 0, str(err)


class Stack:
    """The ``reconciler dev`` under test, seen through its dev.json."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.lock = threading.Lock()

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "dev.json").unlink(missing_ok=True)
        with (self.data_dir / "supervisor.out").open("ab") as out:
            self.proc = subprocess.Popen(
                # Without the seed story: it leaves sgbank's link down.
                [
                    sys.executable,
                    "-m",
                    "reconciler",
                    "dev",
                    "--no-seed",
                    "--data-dir",
                    str(self.data_dir),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "RECONCILER_ENV": "dev"},
            )
        deadline = time.monotonic() + _START_SECONDS
        while not (self.data_dir / "dev.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"reconciler dev did not start; see {self.data_dir}/supervisor.out"
                )
            time.sleep(0.2)
        self.reread()

    def reread(self) -> dict[str, Any]:
        with self.lock:
            # Being rewritten, or gone during a whole-stack kill: keep the last.
            with contextlib.suppress(OSError, ValueError):
                self.info = json.loads((self.data_dir / "dev.json").read_text())
            return self.info

    def api(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, Any]:
        """A call as a patient client makes it: on 503 or no answer, again."""
        status, answer = 0, None
        for _ in range(_TRIES):
            info = self.info
            headers = {"Authorization": f"Bearer {info.get('api_token', '')}"}
            if key:
                headers["Idempotency-Key"] = key
            status, answer = _http(info["api_url"] + path, method, body, headers)
            if status not in (0, 502, 503):
                return status, answer
            time.sleep(1)
            self.reread()
        return status, answer

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def _pay(stack: Stack, n: int, seed: int) -> tuple[bool, int]:
    """Register fine ``n`` and pay it (clicked twice when ``n % 5 == 0``).
    (accepted, duplicate clicks sent)."""
    number = f"{seed % 1000:03d}{n:07d}/QĐ-XPHC"
    fine = {
        "decision_number": number,
        "amount_vnd": AMOUNT_VND,
        "violator_name": "Trần Văn Bình",
        "plate": "30A-123.45",
        "issuing_unit": "Đội CSGT số 1",
        "violation": "Vượt đèn đỏ",
    }
    status, answer = stack.api("POST", "/api/v1/fines", fine)
    if status not in (201, 409):
        print(f"  fine {number}: {status} {answer}", flush=True)
        return False, 0
    path = "/api/v1/fines/" + urllib.parse.quote(number, safe="") + "/payments"
    pay = {"bank": BANKS[n % 2], "payer_account": "123456789"}
    key = str(uuid.UUID(int=random.Random(seed * 1_000_003 + n).getrandbits(128)))
    clicks = 2 if n % 5 == 0 else 1
    ok = False
    for _ in range(clicks):
        status, answer = stack.api("POST", path, pay, key=key)
        ok = ok or status in (200, 201, 202)
        if status not in (200, 201, 202):
            print(f"  payment {number}: {status} {answer}", flush=True)
    return ok, clicks - 1


def _kill(stack: Stack, kill: Kill, rng: random.Random) -> str:
    """Carry out one kill; what was killed, for the table."""
    if kill.kind == "all":
        assert stack.proc is not None
        victims = [stack.proc.pid] + [
            p.pid for p in psutil.Process(stack.proc.pid).children(recursive=True)
        ]
        for pid in victims:
            _sigkill(pid)
        stack.proc.wait(timeout=30)
        psutil.wait_procs([p for p in map(_process, victims[1:]) if p], timeout=30)
        stack.start()
        return f"all ({len(victims)} processes)"
    pids = pids_for(kill.kind, stack.reread().get("pids", {}), rng)
    for pid in pids:
        _sigkill(pid)
    return f"{kill.kind} ({len(pids)})"


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _faults(stack: Stack, on: bool) -> list[str]:
    banks = stack.reread()["banks"]
    if not on:
        for bank in BANKS:
            _http(banks[bank]["admin_url"] + "/faults", "DELETE")
        return []
    added = []
    for bank, spec in FAULTS:
        status, answer = _http(banks[bank]["admin_url"] + "/faults", "POST", spec)
        if status != 201:
            raise RuntimeError(f"{bank}: fault {spec} refused: {status} {answer}")
        added.append(f"{bank} {spec['mode']} p={spec['probability']}")
    return added


def traffic(
    stack: Stack, payments: int, kills: Sequence[Kill], seed: int, concurrency: int
) -> dict[str, Any]:
    """Submit every payment, with the kills and faults at their moments."""
    rng = random.Random(seed)
    pending = list(kills)
    done, accepted, duplicates = 0, 0, 0
    killed: list[str] = []
    faults: list[str] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for start in range(0, payments, concurrency * 4):
            batch = range(start, min(start + concurrency * 4, payments))
            for ok, dup in pool.map(lambda n: _pay(stack, n, seed), batch):
                accepted += ok
                duplicates += dup
            done = batch.stop
            if not faults and done >= payments // 4:
                faults = _faults(stack, on=True)
            if faults and done >= payments * 3 // 4:
                _faults(stack, on=False)
            while pending and pending[0].after_payments <= done:
                what = _kill(stack, pending.pop(0), rng)
                killed.append(what)
                print(f"  killed {what} after {done} payments", flush=True)
            if done % max(payments // 10, 1) < concurrency * 4:
                print(f"  {done}/{payments} payments submitted, {accepted} accepted", flush=True)
    return {"accepted": accepted, "duplicates": duplicates, "kills": killed, "faults": faults}


def _rows(stack: Stack) -> tuple[dict[str, list[dict[str, Any]]], Ledger, int]:
    """The simulators' ground truth, the ledger's rows, and how many
    payments are still in doubt."""
    info = stack.reread()
    bank_rows = {}
    for bank in BANKS:
        status, answer = _http(info["banks"][bank]["admin_url"] + "/debits", "GET")
        if status != 200:
            raise RuntimeError(f"{bank}: GET /debits answered {status} {answer}")
        bank_rows[bank] = answer["debits"]
    with psycopg.connect(info["postgres_url"], connect_timeout=10) as conn:
        payments = [
            {"debit_key": k, "status": s, "amount_vnd": a, "bank": b}
            for k, s, a, b in conn.execute(
                "SELECT debit_key, status, amount_vnd, bank FROM payments"
            )
        ]
        receipts = [
            {"debit_key": k, "series": s, "number": n}
            for k, s, n in conn.execute(
                "SELECT p.debit_key, r.series, r.number FROM receipts r JOIN payments p ON p.id = r.payment_id"
            )
        ]
        row = conn.execute("SELECT COALESCE(SUM(amount_vnd), 0) FROM postings").fetchone()
    in_doubt = sum(p["status"] in IN_DOUBT for p in payments)
    return bank_rows, Ledger(payments, receipts, int(row[0]) if row else 0), in_doubt


def settle(stack: Stack, seconds: float) -> tuple[dict[str, list[dict[str, Any]]], Ledger]:
    """Wait (bounded) until no payment is in doubt; the rows at the end."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            bank_rows, ledger, in_doubt = _rows(stack)
        except (OSError, RuntimeError, psycopg.Error) as err:
            if time.monotonic() > deadline:
                raise
            print(f"  reading ground truth: {err}; again", flush=True)
            time.sleep(2)
            continue
        print(f"  {in_doubt} payment(s) in doubt", flush=True)
        if in_doubt == 0 or time.monotonic() > deadline:
            return bank_rows, ledger
        time.sleep(2)


def verify_commands(stack: Stack) -> list[str]:
    """``reconciler receipts verify`` and ``audit verify`` against the dev
    stack's database; a violation for each that does not exit 0."""
    url = stack.reread()["postgres_url"].replace("postgresql://", "postgresql+psycopg://", 1)
    env = {**os.environ, "RECONCILER_ENV": "dev", "RECONCILER_DATABASE_URL": url}
    env["RECONCILER_DATA_DIR"] = str(stack.data_dir)
    out = []
    for command in (["receipts", "verify"], ["audit", "verify"]):
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip()[-500:]
            out.append(f"reconciler {' '.join(command)} exited {done.returncode}: {tail}")
    return out


def run(payments: int, kinds: Sequence[str], seed: int, concurrency: int, data_dir: Path) -> Tally:
    started = time.monotonic()
    stack = Stack(data_dir)
    stack.start()
    try:
        print(
            f"chaos: {payments} payments, kills {','.join(kinds) or 'none'}, seed {seed}",
            flush=True,
        )
        sent = traffic(stack, payments, kill_schedule(seed, kinds, payments), seed, concurrency)
        _faults(stack, on=False)
        bank_rows, ledger = settle(stack, _SETTLE_SECONDS)
        violations = check_invariants(bank_rows, ledger) + verify_commands(stack)
        restarts = stack.reread().get("restarts", {})
    finally:
        stack.stop()
    refunds = sum(
        r["kind"] == "refund" and r["status"] == "succeeded"
        for rows in bank_rows.values()
        for r in rows
    )
    return Tally(
        payments=payments,
        kills=sent["kills"],
        restarts=restarts,
        receipts=len(ledger.receipts),
        refunds=refunds,
        duplicates_sent=sent["duplicates"],
        faults=sent["faults"],
        seconds=time.monotonic() - started,
        violations=violations,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__, payments=10_000, kills="worker,api", seed=1, concurrency=8).parse_args(
        argv
    )
    try:
        kinds = parse_kills(args.kills)
        if not 1 <= args.payments <= 100_000 or not 1 <= args.concurrency <= 64:
            raise ChaosOptionError("--payments must be 1..100000 and --concurrency 1..64")
    except ChaosOptionError as err:
        print(err, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        tally = run(args.payments, kinds, args.seed, args.concurrency, Path(tmp) / "stack")
    text = table(tally)
    print(text)
    for violation in tally.violations:
        print(f"VIOLATION: {violation}")
    if not args.no_write:
        write_section("chaos", "Chaos: payments through kills and faults", text)
    return 1 if tally.violations else 0


if __name__ == "__main__":
    sys.exit(main())
