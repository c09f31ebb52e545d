"""Every route of the real app, on the real stack, under hostile requests
(issue 15, "Hostile input: measured"): huge and deep JSON, big integers,
unicode edge cases (lone surrogates, NUL, bidi overrides, zero-width and
combining marks, full-width digits), path tricks, lying lengths, wrong
content types, bad gzip, bad headers and tokens; with the admin token and
without. Every answer is a 4xx or a success, never a 5xx; each refusal (and
every GET) leaves the ledger exactly as it was; every request is answered
within the client's timeout (no hang).

Requests go over raw sockets from a thread, which Hypothesis drives; the
app runs on the test's event loop (``reconciler.api.server``'s edge, as in
production), with PostgreSQL, Temporal and both bank simulators (no worker,
so nothing changes the ledger behind the requests' backs).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.service import RPCError

from domain.business_time import business_date
from reconciler.api.alerts import WEBHOOK_PATH as ALERT_WEBHOOK
from reconciler.wiring import load_signer
from tests.support.api import FINE, make_token
from tests.support.raw_http import Answer, exchange, request_bytes
from tests.support.receipts import issue, paid_fine
from tests.support.snapshot import Snapshot, SyncSnapshots, changed
from tests.support.stack import SagaStack, StackWith
from tests.support.webhook_events import refund_event, signed_headers

EXAMPLES_PER_ROUTE = 10
HTML_PAGES = ("/console", "/status")
LINK_SECRET = "citizen-link-secret-for-the-sweep-0123456789"
ALERT_SECRET = "alert-webhook-secret-for-the-sweep-0123456789"
OVERRIDES: dict[str, Any] = {
    "alert_webhook_token": ALERT_SECRET,
    "body_read_seconds": 2.0,
    "public_rate_per_minute": 100_000,
    "public_rate_burst": 10_000,
    "receipt_link_key": LINK_SECRET,
}
HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\u202egnp.exe",
    "a\u200bb",
    "\ufeff1",
    "\u2066x\u2069",
    "a" + "\u0301" * 100,
    "\uff11\uff12\uff13",  # full-width digits
    "\u00b2",
    "\u0663",  # Arabic-Indic three
    "9" * 5000,
    "-1",
    "0x1F",
    " 1",
    "1e3",
    "../../etc/passwd",
    "..",
    "%00",
    "'; DROP TABLE fines; --",
    "<script>alert(1)</script>",
    '=HYPERLINK("http://x")',
    "\t=1",
    "x" * 600,
    "",
    "\U0001f600",
    "\u2028",
    "\x1b[31m",
    "0001-01-01",
    "9999-12-31",
]
QUERY_NAMES = [
    "limit",
    "cursor",
    "after_id",
    "bank",
    "statement_date",
    "format",
    "class",
    "kind",
    "status",
    "reconciliation_id",
    "subject_type",
    "subject_id",
    "decision_number",
    "s",
    "exp",
    "sig",
]
CONTENT_TYPES = [
    b"application/json",
    b"application/json; charset=latin-1",
    b"text/plain",
    b"multipart/form-data; boundary=x",
    b"application/x-www-form-urlencoded",
    None,
]
ALERT_DELIVERY: dict[str, Any] = {
    "version": "4",
    "receiver": "operators-page",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "fingerprint": "5f1e",
            "labels": {"alertname": "BankLinkDown", "severity": "critical", "bank": "sgbank"},
            "annotations": {"summary": "Bank link sgbank is down"},
            "startsAt": "2026-12-01T10:00:00+07:00",
            "endsAt": "0001-01-01T00:00:00Z",
        }
    ],
}
DEEP = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a":' * 2_000 + "1" + "}" * 2_000


@dataclass
class Target:
    """What the sweep knows of the running stack."""

    port: int
    admin: str
    webhook_secret: bytes
    valid: dict[str, list[str]]  # path parameter -> values that exist
    bodies: dict[str, dict[str, Any]]  # route template -> a valid JSON body
    answers: int = 0
    refused_unchanged: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Hostile:
    method: str
    template: str
    path: dict[str, str]
    query: dict[str, str]
    auth: bytes | None
    idempotency_key: bytes | None
    content_type: bytes | None
    body: bytes | None
    gzip: bool = False
    sign: bool = False
    declared_length: int | None = None


# --- building a request ------------------------------------------------------------


def _encoded(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def target_of(case: Hostile) -> bytes:
    path = re.sub(r"\{(\w+)\}", lambda m: _encoded(case.path[m.group(1)]), case.template)
    if case.query:
        path += "?" + "&".join(f"{_encoded(k)}={_encoded(v)}" for k, v in case.query.items())
    return path.encode("ascii")


def wire(case: Hostile, target: Target) -> bytes:
    body = case.body if case.body is not None else b""
    if case.gzip:
        body = gzip.compress(body) if len(body) % 2 else body  # half of them are not gzip
    headers: list[tuple[bytes, bytes]] = []
    if case.auth is not None:
        headers.append((b"Authorization", case.auth))
    if case.idempotency_key is not None:
        headers.append((b"Idempotency-Key", case.idempotency_key))
    if case.content_type is not None:
        headers.append((b"Content-Type", case.content_type))
    if case.gzip:
        headers.append((b"Content-Encoding", b"gzip"))
    if case.sign:
        headers += signed_headers(target.webhook_secret, body)
    if case.body is not None or case.declared_length is not None:
        length = case.declared_length if case.declared_length is not None else len(body)
        headers.append((b"Content-Length", str(length).encode()))
    return request_bytes(case.method, target_of(case), headers, body)


# --- checking an answer ------------------------------------------------------------


def check(
    case: Hostile, answer: Answer | None, before: Snapshot, after: Snapshot, t: Target
) -> None:
    where = f"{case.method} {target_of(case)[:300]!r}"
    assert answer is not None, f"{where}: closed without an answer"
    t.answers += 1
    t.statuses[answer.status] = t.statuses.get(answer.status, 0) + 1
    assert 200 <= answer.status < 500, f"{where}: {answer.status} {answer.body[:500]!r}"
    assert answer.headers.get("server") == "reconciler", where
    assert t.admin.encode() not in answer.body, f"{where}: the token is echoed"
    html_page = (case.template.startswith("/verify/") and answer.status in (200, 404)) or (
        # The console's pages and the citizen's status page answer in HTML,
        # refusals included (a 403 or 404 page); the edge's own refusals
        # (400 for a hostile parameter, 413...) stay JSON.
        case.template.startswith(HTML_PAGES)
        and answer.headers.get("content-type", "").startswith("text/html")
    )
    if case.method == "HEAD" and answer.status >= 400 and not html_page:
        assert answer.headers["content-type"].startswith("application/json"), where
    elif answer.status >= 400 and not html_page:
        assert answer.is_json_error(), f"{where}: {answer.status} {answer.body[:300]!r}"
    if answer.status >= 400 or case.method in ("GET", "HEAD"):
        assert before == after, (
            f"{where} answered {answer.status} but changed {changed(before, after)}"
        )
        t.refused_unchanged += answer.status >= 400


def send_and_check(
    case: Hostile, target: Target, snapshots: SyncSnapshots, before: list[Snapshot]
) -> None:
    answer = exchange(target.port, [wire(case, target)])
    after = snapshots.take()
    check(case, answer, before[0], after, target)
    before[0] = after


# --- strategies ----------------------------------------------------------------------


hostile_text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40))
json_scalars = st.one_of(
    hostile_text,
    st.sampled_from([10**30, -(10**30), 2**63, -1, 0, True, None, 1.5, 1e308, [], {}]),
    st.integers(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()


def bodies(template: str, target: Target) -> st.SearchStrategy[bytes | None]:
    valid = target.bodies.get(template)
    mutated: st.SearchStrategy[bytes | None] = st.nothing()
    if valid:
        mutated = st.builds(
            lambda name, value: _dumps({**valid, name: value}),
            st.sampled_from([*valid, "unknown_field"]),
            json_values,
        )
    raw = st.sampled_from(
        [
            DEEP,
            DEEP_OBJECT,
            "9" * 5000,
            '{"amount_vnd": ' + "9" * 5000 + "}",
            "NaN",
            '{"a":1,"a":2}',
        ]
    ).map(str.encode)
    return st.one_of(
        st.none(), mutated, mutated, json_values.map(_dumps), raw, st.binary(max_size=64)
    )


def path_values(name: str, template: str, target: Target) -> st.SearchStrategy[str]:
    valid = target.valid.get(name, [])
    if template.endswith("/link-recovered"):
        valid = []  # a real bank starts a recovery that waits 20 s for its worker
    return st.one_of(st.sampled_from(valid), hostile_text) if valid else hostile_text


def _bearer(template: str, target: Target) -> bytes:
    """The credential that lets a request through: the admin's API token, or
    Alertmanager's secret on the alert receiver (which takes no API token)."""
    secret = ALERT_SECRET if template == ALERT_WEBHOOK else target.admin
    return b"Bearer " + secret.encode()


def cases(method: str, template: str, target: Target) -> st.SearchStrategy[Hostile]:
    names = re.findall(r"\{(\w+)\}", template)
    admin = _bearer(template, target)
    return st.builds(
        Hostile,
        method=st.just(method),
        template=st.just(template),
        path=st.fixed_dictionaries({n: path_values(n, template, target) for n in names}),
        query=st.dictionaries(
            st.sampled_from(QUERY_NAMES) | hostile_text, hostile_text, max_size=3
        ),
        auth=st.sampled_from(
            [admin, admin, None, b"Bearer rk_\xff\xfe", admin + b"x", b"Basic YTpi", b"Bearer "]
        ),
        idempotency_key=st.sampled_from([None, b"key-1", b"k\xff", "\u202ek".encode(), b"k" * 300]),
        content_type=st.sampled_from(CONTENT_TYPES),
        body=bodies(template, target),
        gzip=st.booleans().map(lambda b: b and method == "POST"),
        sign=st.booleans().map(lambda b: b and template.startswith("/webhooks/")),
        declared_length=st.sampled_from([None, None, None, 10_485_760, 0, 1]),
    )


# --- the fixed list: the issue's worst cases on every route -------------------------


PATH_TRICKS = ["\uff11", "\u00b2", "9" * 5000, "\x00", "\ud800", "..", "a/../b", "\u202e1"]
FIELD_POISONS: list[Any] = [
    "\x00",
    "\ud800",
    "\u202eabc",
    "a" + "\u0301" * 100,
    "\uff11",
    10**30,
    "0001-01-01T00:00:00+07:00",
    "9999-12-31T23:59:59-07:00",
]


def fixed_cases(method: str, template: str, target: Target) -> list[Hostile]:
    admin = _bearer(template, target)
    names = re.findall(r"\{(\w+)\}", template)
    path = {n: (target.valid.get(n) or ["1"])[0] for n in names}
    if template.endswith("/link-recovered"):
        path = {n: "nobank" for n in names}
    valid = target.bodies.get(template)
    body = _dumps(valid) if valid else None

    def case(**changes: Any) -> Hostile:
        base = Hostile(method, template, path, {}, admin, None, b"application/json", body)
        return Hostile(**{**base.__dict__, **changes})

    out = [case(), case(auth=None), case(auth=b"Bearer rk_\xff\xfe"), case(auth=admin + b"\x01")]
    out += [case(body=raw.encode()) for raw in (DEEP, DEEP_OBJECT, '{"a": ' + "9" * 5000 + "}")]
    out += [case(declared_length=10_485_760, body=None), case(body=b"x" * 2_000_000)]
    out += [case(path={**path, n: trick}) for n in names for trick in PATH_TRICKS]
    out += [
        case(query=dict.fromkeys(QUERY_NAMES, poison))
        for poison in ("\x00", "9" * 5000, "0001-01-01", "\ud800", "x" * 600)
    ]
    if method == "POST":
        out += [case(gzip=True, body=(body or b"{}") + b" "), case(content_type=b"text/plain")]
        out += [case(idempotency_key=key) for key in (b"k\xff", "k\u202e".encode(), b"")]
        out += [
            case(body=_dumps({**valid, name: poison}))
            for name in (valid or {})
            for poison in FIELD_POISONS
        ]
        if template.startswith("/webhooks/"):
            out += [
                case(body=_dumps({**(valid or {}), "idempotency_key": p}), sign=True)
                for p in ("k\x00", "k\ud800", "\u202ek")
            ]
    if template in ("/api/v1/fines", "/webhooks/{bank}"):
        out.append(case(declared_length=len(body or b"") + 10))  # the rest never comes: 408
    return out


# --- the sweep -------------------------------------------------------------------------


def sweep(routes: list[tuple[str, str]], target: Target, libpq_url: str) -> None:
    snapshots = SyncSnapshots(libpq_url)
    before = [snapshots.take()]
    try:
        for method, template in routes:
            for case in fixed_cases(method, template, target):
                send_and_check(case, target, snapshots, before)
            if method == "HEAD":
                continue
            run_hypothesis(cases(method, template, target), target, snapshots, before)
    finally:
        snapshots.close()


def run_hypothesis(
    strategy: st.SearchStrategy[Hostile],
    target: Target,
    snapshots: SyncSnapshots,
    before: list[Snapshot],
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def one(case: Hostile) -> None:
        send_and_check(case, target, snapshots, before)

    one()


async def seed(stack: SagaStack) -> Target:
    """Rows for the valid ids: a fine, a receipt, a dispute with its approval
    (asked by finance, so the admin may decide it), a reconciliation."""
    finance = await make_token(stack.engine, "finance", "sweep-finance")
    receipt = await issue(stack.engine, await paid_fine(stack.engine), load_signer(stack.settings))
    today = business_date(datetime.now(UTC)).isoformat()
    dispute_body = {
        "decision_number": FINE["decision_number"],
        "bank": "sgbank",
        "amount_vnd": FINE["amount_vnd"],
        "occurred_at": datetime.now(UTC).isoformat(),
        "description": "Tôi đã bị trừ tiền hai lần",
    }
    ids = await _post_seed(stack, finance, dispute_body, today)
    return Target(
        port=int(stack.api_url.rsplit(":", 1)[1]),
        admin=stack.token,
        webhook_secret=stack.settings.banks["sgbank"].webhook_secret.encode(),
        valid={
            "decision_number": [FINE["decision_number"], "01234/qd-xphc"],
            "series": [receipt.series],
            "number": [str(receipt.number)],
            "bank": ["sgbank", "hnbank"],
            "dispute_id": [str(ids["dispute"])],
            "approval_id": [str(ids["approval"])],
            "reconciliation_id": [str(ids["reconciliation"])],
            "discrepancy_id": ["1"],
            "payment_id": [str(ids["payment"])],
        },
        bodies={
            "/api/v1/fines": FINE,
            "/api/v1/fines/{decision_number}/payments": {
                "bank": "sgbank",
                "payer_account": "123456789",
            },
            "/api/v1/disputes": dispute_body,
            "/api/v1/disputes/{dispute_id}/resolutions": {"action": "reject", "reason": "x"},
            "/api/v1/approvals/{approval_id}/approve": {"reason": "ok"},
            "/api/v1/approvals/{approval_id}/reject": {"reason": "no"},
            "/api/v1/discrepancies/{discrepancy_id}/actions": {"action": "dismiss", "reason": "x"},
            "/api/v1/reconciliations": {"bank": "sgbank", "statement_date": today},
            "/webhooks/{bank}": json.loads(refund_event()),
            ALERT_WEBHOOK: ALERT_DELIVERY,
        },
    )


async def _post_seed(
    stack: SagaStack, finance: str, dispute: dict[str, Any], today: str
) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {stack.token}"}
    staff = {"Authorization": f"Bearer {finance}"}
    base = stack.api_url + "/api/v1"
    session = stack.session

    async def post(path: str, body: Any, headers: dict[str, str]) -> Any:
        async with session.post(base + path, json=body, headers=headers) as resp:
            assert resp.status < 300, (path, resp.status, await resp.text())
            return await resp.json()

    await post("/fines", FINE, admin)
    number = quote(FINE["decision_number"], safe="")
    payment = await post(
        f"/fines/{number}/payments",
        {"bank": "sgbank", "payer_account": "123456789"},
        {**admin, "Idempotency-Key": "sweep-1"},
    )
    opened = await post("/disputes", {**dispute, "bank_ref": "FT0001"}, staff)
    asked = await post(
        f"/disputes/{opened['id']}/resolutions",
        {"action": "confirm", "reason": "the bank shows the debit", "payer_account": "123456789"},
        staff,
    )
    run = await post("/reconciliations", {"bank": "sgbank", "statement_date": today}, admin)
    return {
        "payment": payment["payment_id"],
        "dispute": opened["id"],
        "approval": asked["approval"]["id"],
        "reconciliation": run["reconciliation_id"],
    }


async def test_no_route_answers_a_hostile_request_with_a_5xx_or_a_change(
    stack_with: StackWith, db_url: str
) -> None:
    async with stack_with(start_worker=False, **OVERRIDES) as stack:
        try:
            target = await seed(stack)
            routes = sorted(
                {(r.method, r.resource.canonical) for r in stack.app.router.routes() if r.resource}
            )
            libpq_url = db_url.replace("postgresql+psycopg://", "postgresql://")
            await asyncio.to_thread(sweep, routes, target, libpq_url)
        finally:
            await _stop_workflows(stack)
    # The sweep reached every route, and refused most of what it sent.
    assert len(routes) >= 50
    assert target.answers > 20 * len(routes)
    assert target.refused_unchanged > target.answers // 2
    assert not [s for s in target.statuses if s >= 500]


async def _stop_workflows(stack: SagaStack) -> None:
    """The workflows the accepted requests started (payments, disputes,
    reconciliations) wait for a worker that never comes; their ids are
    business keys other tests use on the same Temporal server, so they
    must not outlive this test."""
    query = f"TaskQueue = '{stack.settings.task_queue}' AND ExecutionStatus = 'Running'"
    quiet = 0  # the list may lag a start: done after two empty ones in a row
    for _ in range(100):
        running = [w async for w in stack.client.list_workflows(query)]
        quiet = 0 if running else quiet + 1
        if quiet == 2:
            return
        for execution in running:
            handle = stack.client.get_workflow_handle(execution.id, run_id=execution.run_id)
            with contextlib.suppress(RPCError):
                await handle.terminate("the hostile-input sweep is over")
        await asyncio.sleep(0.2)
    raise AssertionError("workflows started by the sweep are still running")
