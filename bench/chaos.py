"""Chaos harness (issue 18): payments through a real ``reconciler dev`` while
its parts are killed, then the invariants checked against the simulators'
ground truth.

A ``reconciler dev`` is started on a fresh data dir (its supervisor restarts
what dies). N fines are registered and paid through both banks by a bounded
pool of clients; every fifth payment is clicked twice with the same
Idempotency-Key; every simulator fault mode is switched on while the
traffic runs (``bench/chaos_plan.py``: which, where, when); delivered bank
webhooks are replayed, re-signed and verbatim and stale
(``bench/chaos_webhooks.py``), during the traffic and after it; and at
seeded random moments one process of each ``--kills`` kind is ``kill -9``-ed
(pids from dev.json, re-read after each restart; ``all`` kills the
supervisor and every child at once, then starts ``reconciler dev`` again on
the same data dir). When the traffic is done the faults are cleared and the
harness waits (bounded) until no payment is in doubt, then checks
(``bench/chaos_checks.py``): every bank debit ends as exactly one receipt or
one refund and is booked at most once, nothing is settled without a debit,
the postings sum to zero,
receipt numbers are unique and gapless per series, and ``reconciler receipts
verify`` and ``reconciler audit verify`` exit 0. Exit 1 on any violation.

Every request goes to 127.0.0.1 (the dev stack's own ports); each client
call is retried at most ``_TRIES`` times (a 503 or a refused connection while
a part restarts), and the wait for settlement is bounded (``_SETTLE_SECONDS``
with no payment leaving doubt).

Run:  .venv/bin/python bench/chaos.py [--payments 10000] [--kills worker,api,...,all]
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
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
from bench.chaos_plan import FaultStep, describe, fault_schedule, replay_moments
from bench.chaos_plan import replay_sample_size as replay_count
from bench.chaos_webhooks import Replays, replay_some, webhook_secret
from bench.common import parser, write_section
from bench.devstack_client import local_http, start_dev, wait_for_dev_json

BANKS = ("sgbank", "hnbank")
AMOUNT_VND = 750_000
_TRIES = 60  # per client call; a restart takes a few seconds, 1 s apart
_START_SECONDS = 180
_SETTLE_SECONDS = 300


def _http(
    url: str, method: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """(status, JSON) of one call with a JSON body; (0, reason) when nothing answered."""
    data = None if body is None else json.dumps(body).encode()
    return local_http(url, method, data, headers)


class Stack:
    """The ``reconciler dev`` under test, seen through its dev.json."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.lock = threading.Lock()
        # Restarts counted by supervisors killed with the whole stack.
        self.earlier_restarts: Counter[str] = Counter()

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "dev.json").unlink(missing_ok=True)
        self.proc = start_dev(self.data_dir)
        with self.lock:
            self.info = wait_for_dev_json(self.proc, self.data_dir, _START_SECONDS)

    def reread(self) -> dict[str, Any]:
        with self.lock:
            # Being rewritten, or gone during a whole-stack kill: keep the last.
            with contextlib.suppress(OSError, ValueError):
                self.info = json.loads((self.data_dir / "dev.json").read_text())
            return self.info

    def restarts(self) -> dict[str, int]:
        """Restarts by the supervisor, across whole-stack kills (``stack``:
        the whole stack started again)."""
        now = Counter(self.reread().get("restarts", {}))
        return dict(now + self.earlier_restarts)

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
        stack.earlier_restarts = Counter(stack.restarts()) + Counter(stack=1)
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


def _apply_fault(stack: Stack, step: FaultStep) -> str | None:
    """Switch one fault on (or clear a bank's faults); its description."""
    admin = stack.reread()["banks"][step.bank]["admin_url"] + "/faults"
    if step.spec is None:
        status, answer = _http(admin, "DELETE")
        if status not in (200, 404):
            raise RuntimeError(f"{step.bank}: DELETE /faults answered {status} {answer}")
        return None
    status, answer = _http(admin, "POST", dict(step.spec))
    if status != 201:
        raise RuntimeError(f"{step.bank}: fault {step.spec} refused: {status} {answer}")
    return describe(step)


def _clear_faults(stack: Stack) -> None:
    for bank in BANKS:
        _apply_fault(stack, FaultStep(0, bank, None))


@dataclass
class _Plan:
    """What is still to happen during the traffic, and what happened."""

    kills: list[Kill]
    faults: list[FaultStep]
    replays: list[int]
    seed: int
    payments: int
    secret: bytes
    rng: random.Random = field(init=False)
    killed: list[str] = field(default_factory=list)
    faults_on: list[str] = field(default_factory=list)
    webhooks: Replays = field(default_factory=Replays)
    loads: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


def _between_batches(stack: Stack, plan: _Plan, done: int) -> None:
    """The faults, replays and kills due once ``done`` payments were sent."""
    plan.loads.append(os.getloadavg()[0])
    while plan.faults and plan.faults[0].after_payments <= done:
        what = _apply_fault(stack, plan.faults.pop(0))
        if what is not None:
            plan.faults_on.append(what)
    while plan.replays and plan.replays[0] <= done:
        plan.replays.pop(0)
        replay_some(
            stack.reread(), plan.secret, plan.rng, replay_count(plan.payments), plan.webhooks
        )
        print(f"  webhooks replayed after {done} payments: {plan.webhooks.summary()}", flush=True)
    while plan.kills and plan.kills[0].after_payments <= done:
        what = _kill(stack, plan.kills.pop(0), plan.rng)
        plan.killed.append(what)
        print(f"  killed {what} after {done} payments", flush=True)


def traffic(stack: Stack, plan: _Plan, concurrency: int) -> dict[str, Any]:
    """Submit every payment, with the kills, faults and replays at their moments."""
    payments, accepted, duplicates = plan.payments, 0, 0
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for start in range(0, payments, concurrency * 4):
            batch = range(start, min(start + concurrency * 4, payments))
            for ok, dup in pool.map(lambda n: _pay(stack, n, plan.seed), batch):
                accepted += ok
                duplicates += dup
            _between_batches(stack, plan, batch.stop)
            if batch.stop % max(payments // 10, 1) < concurrency * 4:
                print(
                    f"  {batch.stop}/{payments} payments submitted, {accepted} accepted",
                    flush=True,
                )
    return {"accepted": accepted, "duplicates": duplicates}


# Each bank debit booked as money in, and how often (``settle.py``'s entries
# name the payment, whose bank it is, and the bank's reference).
_BOOKED_SQL = """
SELECT p.bank, e.metadata->>'bank_ref', count(*)
FROM journal_entries e JOIN payments p ON p.id::text = e.metadata->>'payment_id'
WHERE e.kind IN ('fine_payment', 'duplicate_payment')
GROUP BY 1, 2
"""


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
            {"debit_key": k, "series": s, "number": n, "bank": b, "bank_ref": ref}
            for k, s, n, b, ref in conn.execute(
                "SELECT p.debit_key, r.series, r.number, p.bank, p.bank_ref"
                " FROM receipts r JOIN payments p ON p.id = r.payment_id"
            )
        ]
        row = conn.execute("SELECT COALESCE(SUM(amount_vnd), 0) FROM postings").fetchone()
        booked = {(b, ref): int(n) for b, ref, n in conn.execute(_BOOKED_SQL)}
    in_doubt = sum(p["status"] in IN_DOUBT for p in payments)
    ledger = Ledger(payments, receipts, int(row[0]) if row else 0, booked)
    return bank_rows, ledger, in_doubt


def settle(stack: Stack, seconds: float) -> tuple[dict[str, list[dict[str, Any]]], Ledger]:
    """Wait until no payment is in doubt; the rows at the end. Bounded: it
    gives up once ``seconds`` pass with no payment leaving doubt (a backlog
    the workers are still working through is waited for, a stuck one is not;
    the count only falls, so the wait ends)."""
    deadline = time.monotonic() + seconds
    fewest: int | None = None
    while True:
        try:
            bank_rows, ledger, in_doubt = _rows(stack)
        except (OSError, RuntimeError, psycopg.Error) as err:
            if time.monotonic() > deadline:
                raise
            print(f"  reading ground truth: {err}; again", flush=True)
            time.sleep(2)
            continue
        if fewest is None or in_doubt < fewest:
            fewest, deadline = in_doubt, time.monotonic() + seconds
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


def run(
    payments: int,
    kinds: Sequence[str],
    seed: int,
    concurrency: int,
    data_dir: Path,
    fault_modes: frozenset[str] | None = None,
) -> Tally:
    """One chaos run on a fresh stack in ``data_dir``; ``fault_modes``: the
    simulator fault modes used (every one if None)."""
    started = time.monotonic()
    stack = Stack(data_dir)
    stack.start()
    plan = _Plan(
        kill_schedule(seed, kinds, payments),
        fault_schedule(seed, payments, fault_modes),
        replay_moments(payments),
        seed,
        payments,
        webhook_secret(data_dir),
    )
    try:
        print(
            f"chaos: {payments} payments, kills {','.join(kinds) or 'none'}, seed {seed}",
            flush=True,
        )
        sent = traffic(stack, plan, concurrency)
        _clear_faults(stack)
        settle(stack, _SETTLE_SECONDS)
        # Every payment settled: the callbacks replayed now are stale news.
        replay_some(stack.reread(), plan.secret, plan.rng, replay_count(payments), plan.webhooks)
        print(f"  webhooks replayed after settlement: {plan.webhooks.summary()}", flush=True)
        bank_rows, ledger = settle(stack, _SETTLE_SECONDS)
        violations = [
            *check_invariants(bank_rows, ledger),
            *plan.webhooks.violations,
            *verify_commands(stack),
        ]
        restarts = stack.restarts()
    finally:
        stack.stop()
    loads = plan.loads or [os.getloadavg()[0]]
    return Tally(
        payments=payments,
        kills=plan.killed,
        restarts=restarts,
        receipts=len(ledger.receipts),
        refunds=sum(
            r["kind"] == "refund" and r["status"] == "succeeded"
            for rows in bank_rows.values()
            for r in rows
        ),
        duplicates_sent=sent["duplicates"],
        faults=plan.faults_on,
        seconds=time.monotonic() - started,
        violations=violations,
        seed=seed,
        load=(sum(loads) / len(loads), max(loads)),
        webhooks=plan.webhooks.summary(),
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
