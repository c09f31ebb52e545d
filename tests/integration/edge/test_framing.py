"""The edge over raw sockets (issue 15, "Hostile input: measured"): slow and
broken bodies, lying lengths, split packets, bytes a header may not hold.
Each request gets an answer (never a hang), in the JSON error shape, that
quotes nothing of the request; the app's data is unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.api.keys import ENGINE
from tests.support.api import EdgeApp, edge_app, make_token
from tests.support.logs import all_logs
from tests.support.raw_http import Answer, exchange, request_bytes
from tests.support.snapshot import snapshot
from tests.support.webhook_events import refund_event, signed_headers

SECRET = "webhook-secret-for-the-edge-tests-0123456789"
BANKS = {"sgbank": {"protocol": "rest", "url": "http://127.0.0.1:9", "webhook_secret": SECRET}}
BODY_SECONDS = 3.0


@pytest.fixture
async def api(engine: AsyncEngine, db_url: str) -> AsyncIterator[EdgeApp]:
    async with edge_app(engine, db_url, banks=BANKS, body_read_seconds=BODY_SECONDS) as served:
        yield served


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with all_logs() as captured:
        yield captured


async def send(api: EdgeApp, *parts: bytes, pause: float = 0.0) -> Answer:
    answer = await asyncio.to_thread(exchange, api.port, parts, pause_seconds=pause)
    assert answer is not None, "closed without an answer"
    assert answer.headers["server"] == "reconciler"  # no aiohttp/Python version
    return answer


def signed(body: bytes) -> list[tuple[bytes, bytes]]:
    return signed_headers(SECRET.encode(), body)


def post(target: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    return request_bytes("POST", target.encode(), headers, body)


async def test_a_body_that_never_finishes_gets_408(api: EdgeApp, engine: AsyncEngine) -> None:
    before = await snapshot(engine)
    head = post("/webhooks/sgbank", [(b"Content-Length", b"100")], b'{"type":')
    answer = await send(api, head)
    assert answer.status == 408
    assert answer.is_json_error()
    assert answer.headers["connection"] == "close"
    assert await snapshot(engine) == before


async def test_broken_chunked_framing_after_the_headers_gets_400(api: EdgeApp) -> None:
    """It used to get no answer for 150 s; now 400, long before the body
    deadline would have answered 408."""
    token = await make_token_for(api)
    head = post(
        "/api/v1/fines",
        [
            (b"Transfer-Encoding", b"chunked"),
            (b"Content-Type", b"application/json"),
            (b"Authorization", b"Bearer " + token.encode()),
        ],
    )
    for broken in (b"zz\r\nabc\r\n", b"5\r\nabcdefgh\r\n", b"-1\r\n"):
        answer = await send(api, head, broken, pause=0.2)
        assert answer.status == 400, broken
        assert answer.json()["error"]["code"] == "bad_body"


async def make_token_for(api: EdgeApp) -> str:
    return await make_token(api.app[ENGINE], "admin")


async def test_a_signed_webhook_split_across_packets_is_accepted(api: EdgeApp) -> None:
    body = refund_event()
    head = post("/webhooks/sgbank", [(b"Content-Length", str(len(body)).encode()), *signed(body)])
    answer = await send(api, head + body[:20], body[20:], pause=0.3)
    assert answer.status == 200, answer.body
    assert answer.json() == {"status": "noted"}


async def test_a_10_mb_signed_webhook_gets_413_not_401(api: EdgeApp) -> None:
    body = refund_event(reason="x" * 10_000_000)
    head = post("/webhooks/sgbank", [(b"Content-Length", str(len(body)).encode()), *signed(body)])
    answer = await send(api, head + body)
    assert answer.status == 413
    assert answer.json()["error"]["code"] == "body_too_large"


async def test_a_10_mb_content_length_gets_413_at_once(api: EdgeApp) -> None:
    """Only the headers are sent: an edge that waited for the body would
    answer 408 after the deadline, not 413."""
    token = await make_token_for(api)
    for auth in ([], [(b"Authorization", b"Bearer " + token.encode())]):
        head = post(
            "/api/v1/fines",
            [(b"Content-Type", b"application/json"), (b"Content-Length", b"10485760"), *auth],
        )
        answer = await send(api, head)
        assert answer.status == 413
        assert answer.is_json_error()


async def test_a_signed_webhook_with_a_nul_in_its_key_is_refused(
    api: EdgeApp, engine: AsyncEngine
) -> None:
    before = await snapshot(engine)
    for body in (
        refund_event(idempotency_key="rf-\u0000"),
        refund_event(idempotency_key="rf-\ud800"),
        refund_event(status="\u202esucceeded"),
    ):
        head = post(
            "/webhooks/sgbank", [(b"Content-Length", str(len(body)).encode()), *signed(body)]
        )
        answer = await send(api, head + body)
        assert answer.status == 400, body
    assert await snapshot(engine) == before


async def test_a_bad_header_is_never_echoed(
    api: EdgeApp, logs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    token = await make_token_for(api)
    raw = request_bytes(
        "GET", b"/api/v1/outages", [(b"Authorization", b"Bearer " + token.encode() + b"\x00")]
    )
    answer = await send(api, raw)
    assert answer.status == 400
    assert answer.is_json_error()
    assert token.encode() not in answer.body
    assert token[3:12] not in caplog.text
    assert token[3:12] not in repr(logs)
    assert any(e["event"] == "http.unparseable_request" for e in logs)


async def test_bytes_that_are_not_utf8_in_headers_get_401_or_400(
    api: EdgeApp, engine: AsyncEngine
) -> None:
    token = await make_token_for(api)
    before = await snapshot(engine)
    answer = await send(
        api, request_bytes("GET", b"/api/v1/outages", [(b"Authorization", b"Bearer rk_\xff\xfe")])
    )
    assert answer.status == 401
    assert answer.is_json_error()
    body = b'{"bank": "sgbank", "payer_account": "123456789"}'
    for key in (b"k-\xff", b"k-\xed\xa0\x80", b"k-\xe2\x80\xae"):
        raw = post(
            "/api/v1/fines/01234%2FQD-XPHC/payments",
            [
                (b"Authorization", b"Bearer " + token.encode()),
                (b"Idempotency-Key", key),
                (b"Content-Type", b"application/json"),
                (b"Content-Length", str(len(body)).encode()),
            ],
            body,
        )
        answer = await send(api, raw)
        assert answer.status == 400, key
        assert answer.json()["error"]["field"] == "Idempotency-Key"
    assert await snapshot(engine) == before


async def test_a_gzip_body_that_is_not_gzip_gets_400(api: EdgeApp) -> None:
    token = await make_token_for(api)
    raw = post(
        "/api/v1/fines",
        [
            (b"Authorization", b"Bearer " + token.encode()),
            (b"Content-Type", b"application/json"),
            (b"Content-Encoding", b"gzip"),
            (b"Content-Length", b"11"),
        ],
        b'{"a": "b"}\n',
    )
    answer = await send(api, raw)
    assert answer.status == 400
    assert answer.json()["error"]["code"] == "bad_body"


def _closed_count(status: str) -> float:
    labels = {"route": "/api/v1/fines", "method": "POST", "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_a_client_that_hangs_up_is_not_counted_as_a_5xx(api: EdgeApp) -> None:
    token = await make_token_for(api)
    closed, failed = _closed_count("client_closed"), _closed_count("5xx")
    for _ in range(3):
        head = post(
            "/api/v1/fines",
            [
                (b"Authorization", b"Bearer " + token.encode()),
                (b"Content-Type", b"application/json"),
                (b"Content-Length", b"500"),
            ],
            b'{"decision_number": ',
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(0.2)  # the handler is reading the body now
        writer.close()
        await reader.read()
    for _ in range(100):
        if _closed_count("client_closed") >= closed + 3:
            break
        await asyncio.sleep(0.05)
    assert _closed_count("client_closed") == closed + 3
    assert _closed_count("5xx") == failed


async def test_an_unexpected_error_is_a_500_with_a_request_id_only(
    engine: AsyncEngine, db_url: str, logs: list[dict[str, Any]]
) -> None:
    async def boom(request: Any) -> Any:
        raise RuntimeError("detail that must not leave: rk_secret")

    async with edge_app(
        engine, db_url, routes=lambda app: app.router.add_get("/boom", boom)
    ) as api:
        answer = await send(api, request_bytes("GET", b"/boom", []))
    assert answer.status == 500
    error = answer.json()["error"]
    assert error["code"] == "internal_error"
    assert b"rk_secret" not in answer.body
    assert b"RuntimeError" not in answer.body
    logged = [e for e in logs if e["event"] == "http.unhandled_error"]
    assert [e["request_id"] for e in logged] == [error["request_id"]]
    assert logged[0]["exc_info"] is True


async def test_the_access_log_names_routes_never_tokens(
    api: EdgeApp, logs: list[dict[str, Any]]
) -> None:
    token = await make_token_for(api)
    await send(api, request_bytes("GET", b"/verify/A-2025/7?s=SECRETTOKEN", []))
    await send(
        api,
        request_bytes("GET", b"/api/v1/outages", [(b"Authorization", f"Bearer {token}".encode())]),
    )
    lines = [e for e in logs if e["event"] == "http.request"]
    assert [(e["route"], e["status"], e["principal"]) for e in lines] == [
        ("/verify/{series}/{number}", 404, None),
        ("/api/v1/outages", 200, "test-admin"),
    ]
    assert "SECRETTOKEN" not in repr(logs)
    assert token not in repr(logs)
    assert all(e["client"] == "127.0.0.1" and e["request_id"] for e in lines)


async def test_a_connection_whose_headers_never_finish_is_closed(
    engine: AsyncEngine, db_url: str
) -> None:
    async with edge_app(engine, db_url, http_idle_seconds=1.0) as api:
        half = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: "
        assert await asyncio.to_thread(exchange, api.port, [half]) is None
