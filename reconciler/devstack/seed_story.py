"""The dev stack's seed story, played through the running stack as users
would: the real API, workflows and bank simulators (their fault admin API),
so every row it leaves is one the service itself wrote (postings, receipts,
audit chain), never a made-up one.

Once the stack is up (``reconciler dev``, unless ``--no-seed``):

- a fine of each unit paid at ``sgbank``: settled, with its receipt;
- a payment from a blocked account: declined;
- a payment the bank booked twice (``duplicate_debit``): the fine paid, the
  second debit refunded (a ``refunded`` payment);
- a reconciliation of ``sgbank``'s statement of today with two lines that
  match nothing (``statement_extra_lines``): its discrepancies;
- a dispute ("debited but no receipt") whose confirmation awaits a second
  person's approval;
- last, the story the console tells: a payment whose bank answer is lost
  (``timeout_after_debit``) while ``sgbank``'s link goes down: in doubt, the
  link left down. Clearing the fault (``DELETE /faults`` on the admin URL)
  brings the link back; the prober sees it and the receipt comes by itself.

Idempotent: payments go with fixed Idempotency-Keys; the story is skipped
when its last step's payment exists (a restart on the same data).
Bounded: every wait has a deadline; a step that does not finish in time is
reported and the stack runs on without it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from domain.business_time import business_date

STORY_BANK: Final = "sgbank"
# Where the disputed money went: a VietQR bank (a citizen's own transfer).
DISPUTE_BANK: Final = "hnbank"
# Fines the story pays (registered by ``seed``): decision, payer account.
SETTLED: Final = (("02001/QĐ-XPHC", "0011002000001"), ("03001/QĐ-XPHC", "0011003000001"))
DECLINED: Final = ("02002/QĐ-XPHC", "0011002000666")
DUPLICATED: Final = ("03002/QĐ-XPHC", "0011003000002")
DISPUTED: Final = ("03003/QĐ-XPHC", "0011003000003")
IN_DOUBT: Final = ("02003/QĐ-XPHC", "0011002000003")
WAIT_SECONDS: Final = 60.0
HTTP_TIMEOUT_SECONDS: Final = 10.0


class StoryError(Exception):
    """A step of the story did not end as it should (within its deadline)."""


class Http:
    """JSON over HTTP with one bearer token (or none)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.token = token

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        # Our own stack's loopback URLs (dev.json), never a user's.
        request = urllib.request.Request(  # noqa: S310
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers=sent,
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")


def _quoted(decision: str) -> str:
    return urllib.parse.quote(decision, safe="")


def _wait(what: str, check: Any) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise StoryError(f"{what}: not within {WAIT_SECONDS:.0f} s")


class Story:
    def __init__(self, info: dict[str, Any], passwords: dict[str, str]) -> None:
        self.api = Http(info["api_url"], info["api_token"])
        self.bank = Http(info["banks"][STORY_BANK]["admin_url"])
        self.dispute_bank = Http(info["banks"][DISPUTE_BANK]["admin_url"])
        self.passwords = passwords

    # -- steps -------------------------------------------------------------------
    def pay(self, decision: str, account: str) -> str:
        """Start (or find again, by its key) the payment; its id."""
        status, body = self.api.call(
            "POST",
            f"/api/v1/fines/{_quoted(decision)}/payments",
            {"bank": STORY_BANK, "payer_account": account},
            # Header values are ASCII: the decision's number without "/QĐ-XPHC".
            {"Idempotency-Key": f"seed-{decision.split('/', maxsplit=1)[0]}"},
        )
        if status != 202:
            raise StoryError(f"paying {decision}: {status} {body}")
        return str(body["payment_id"])

    def payment_status(self, payment_id: str) -> str:
        _, body = self.api.call("GET", f"/api/v1/payments/{payment_id}")
        return str(body.get("status", "")) if isinstance(body, dict) else ""

    def wait_status(self, payment_id: str, wanted: set[str]) -> str:
        return str(
            _wait(
                f"payment {payment_id} {'/'.join(sorted(wanted))}",
                lambda: (s := self.payment_status(payment_id)) in wanted and s,
            )
        )

    def fault(self, spec: dict[str, Any]) -> int:
        status, body = self.bank.call("POST", "/faults", spec)
        if status != 201:
            raise StoryError(f"fault {spec}: {status} {body}")
        return int(body["fault"]["id"])

    def clear_fault(self, fault_id: int) -> None:
        self.bank.call("DELETE", f"/faults/{fault_id}")

    def settled_and_declined(self) -> None:
        self.bank.call(
            "POST", "/accounts", {"account": DECLINED[1], "balance_vnd": 0, "blocked": True}
        )
        started = [self.pay(*fine) for fine in (*SETTLED, DECLINED)]
        for payment_id in started[:-1]:
            self.wait_status(payment_id, {"succeeded"})
        self.wait_status(started[-1], {"declined"})

    def duplicated(self) -> None:
        fault = self.fault({"mode": "duplicate_debit"})
        try:
            payment_id = self.pay(*DUPLICATED)
            self.wait_status(payment_id, {"succeeded"})
        finally:
            self.clear_fault(fault)
        _wait("the duplicate debit refunded", self._refund_seen)

    def _refund_seen(self) -> bool:
        _, body = self.api.call("GET", f"/api/v1/refunds?bank={STORY_BANK}")
        return bool(isinstance(body, dict) and body.get("refunds"))

    def reconciliation(self) -> None:
        fault = self.fault({"mode": "statement_extra_lines", "count": 2})
        try:
            today = business_date(datetime.now(UTC)).isoformat()
            status, run = self.api.call(
                "POST", "/api/v1/reconciliations", {"bank": STORY_BANK, "statement_date": today}
            )
            if status != 202:
                raise StoryError(f"reconciliation: {status} {run}")
            run_id = run["reconciliation_id"]
            _wait(
                "the reconciliation finished",
                lambda: (
                    self.api.call("GET", f"/api/v1/reconciliations/{run_id}")[1].get("status")
                    in ("completed", "failed")
                ),
            )
        finally:
            self.clear_fault(fault)

    def dispute(self) -> None:
        """The citizen paid by their own transfer at ``hnbank``, without the
        decision number in its content: the bank holds the money, the ledger
        never heard of it. The dispute names that real movement, so its
        approval, once given, settles the fine with a receipt."""
        officer = self.login("officer")
        decision, account = DISPUTED
        _, fine = officer.call("GET", f"/api/v1/fines/{_quoted(decision)}")
        status, moved = self.dispute_bank.call(
            "POST",
            "/transfers",
            {"payer_account": account, "amount_vnd": fine["amount_vnd"], "content": "NOP PHAT"},
        )
        if status != 201:
            raise StoryError(f"dispute: the citizen's transfer: {status} {moved}")
        status, opened = officer.call(
            "POST",
            "/api/v1/disputes",
            {
                "decision_number": decision,
                "bank": DISPUTE_BANK,
                "amount_vnd": fine["amount_vnd"],
                "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
                "bank_ref": moved["transfer"]["bank_ref"],
                "payer_account": account,
                "description": "Công dân báo đã bị trừ tiền nhưng chưa nhận được biên lai.",
            },
        )
        if status != 201:
            raise StoryError(f"dispute: {status} {opened}")
        finance = self.login("finance")
        status, asked = finance.call(
            "POST",
            f"/api/v1/disputes/{opened['id']}/resolutions",
            {"action": "confirm", "reason": "Sao kê ngân hàng cho thấy đã trừ tiền."},
        )
        if status != 202:
            raise StoryError(f"dispute resolution: {status} {asked}")

    def login(self, role: str) -> Http:
        status, body = self.api.call(
            "POST",
            "/api/v1/auth/login",
            {"username": f"demo-{role}", "password": self.passwords[role]},
        )
        if status != 200:
            raise StoryError(f"login demo-{role}: {status} {body}")
        return Http(self.api.base_url, str(body["token"]))

    def in_doubt(self) -> None:
        """The answer of a carried-out debit held back, then the link cut
        under it: the service cannot know, and must not let anyone pay again."""
        # Its webhook held back too (an hour), or it would tell at once.
        quiet = self.fault({"mode": "late_webhook", "delay_seconds": 3600})
        hang = self.fault({"mode": "timeout_after_debit", "hang_seconds": 600})
        try:
            payment_id = self.pay(*IN_DOUBT)
            _wait("the bank booked the debit", lambda: self._debited(IN_DOUBT[1]))
            self.fault({"mode": "link_down"})
        finally:
            self.clear_fault(hang)
            self.clear_fault(quiet)
        self.wait_status(payment_id, {"verifying"})
        # The story is in place once the service knows the link is down (the
        # prober's outage): the explanation names it, "since" when.
        _wait("the prober saw the link down", self._outage_open)

    def _outage_open(self) -> bool:
        _, body = self.api.call("GET", f"/api/v1/outages?bank={STORY_BANK}")
        return bool(isinstance(body, dict) and body.get("open"))

    def _debited(self, account: str) -> bool:
        _, body = self.bank.call("GET", "/debits")
        rows = body.get("debits", []) if isinstance(body, dict) else []
        return any(row.get("counterparty") == account for row in rows)

    def done_before(self) -> bool:
        _, body = self.api.call("GET", f"/api/v1/payments?decision_number={_quoted(IN_DOUBT[0])}")
        return bool(isinstance(body, dict) and body.get("payments"))


def play(info: dict[str, Any], passwords: dict[str, str]) -> list[str]:
    """Play the story (skipped if played before); what did not work, if anything."""
    story = Story(info, passwords)
    if story.done_before():
        return []
    problems = []
    for step in (
        story.settled_and_declined,
        story.duplicated,
        story.reconciliation,
        story.dispute,
        story.in_doubt,
    ):
        try:
            step()
        except (StoryError, OSError, KeyError, ValueError) as err:
            problems.append(f"{step.__name__}: {err}")
    return problems
