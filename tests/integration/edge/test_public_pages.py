"""The public receipt pages as a stranger tries them: the verify page's
token harvest (issue 15, critical 1), what a genuine receipt's page shows,
per-client rate limits, and the citizen's signed PDF link."""

from __future__ import annotations

import re
import string
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.receipts.issue import Receipt, verify_token
from ledger.receipts.signing import ReceiptSigner
from reconciler.citizen_links import CitizenLinks
from tests.support.api import EdgeApp, edge_app
from tests.support.receipts import SERIES, issue, paid_fine

LINK_SECRET = "citizen-link-secret-for-tests-0123456789"
TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"
# Headers that differ between any two answers, whatever they answer.
PER_ANSWER = {"date", "x-request-id"}


@pytest.fixture(scope="module")
def signer() -> ReceiptSigner:
    return ReceiptSigner.generate()


@pytest.fixture
async def api(engine: AsyncEngine, db_url: str, signer: ReceiptSigner) -> AsyncIterator[EdgeApp]:
    async with edge_app(
        engine,
        db_url,
        verifier=signer.verifier(),
        receipt_link_key=SecretStr(LINK_SECRET),
        public_rate_per_minute=100_000,
        public_rate_burst=10_000,
    ) as served:
        yield served


async def _get(url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as resp:
        headers = {k.lower(): v for k, v in resp.headers.items() if k.lower() not in PER_ANSWER}
        return resp.status, headers, await resp.read()


async def _issued(engine: AsyncEngine, signer: ReceiptSigner) -> Receipt:
    return await issue(engine, await paid_fine(engine), signer)


async def _genuine_page(
    api: EdgeApp, engine: AsyncEngine, signer: ReceiptSigner
) -> tuple[Receipt, int, dict[str, str], bytes]:
    """A receipt just issued, and its verify page for the exact token."""
    receipt = await _issued(engine, signer)
    token = verify_token(receipt.signature)
    answer = await _get(f"{api.url}/verify/{SERIES}/{receipt.number}?s={token}")
    return (receipt, *answer)


async def test_a_guessed_token_learns_exactly_what_an_unknown_receipt_does(
    api: EdgeApp, engine: AsyncEngine, signer: ReceiptSigner
) -> None:
    """The harvest: one-character tokens (at most 64 tries a receipt used to
    show the name and plate), prefixes, guessed series and numbers. Each
    answer is byte for byte the answer the same URL gave before the receipt
    existed."""
    page = f"{api.url}/verify/{SERIES}/1"
    guesses = [f"?s={c}" for c in TOKEN_ALPHABET] + ["", "?s=", "?x=1"]
    before = {g: await _get(page + g) for g in guesses}
    receipt = await _issued(engine, signer)
    assert (receipt.series, receipt.number) == (SERIES, 1)
    token = verify_token(receipt.signature)
    last_changed = token[:-1] + ("B" if token[-1] == "A" else "A")
    guesses += [f"?s={token[:21]}", f"?s={token}A", f"?s={last_changed}"]
    for guess in guesses[-3:]:
        before[guess] = before["?s=A"]  # the same page as any other wrong token
    secrets_shown = ("Nguyễn", "29A-", receipt.payload["decision_number"], "1.500.000")
    for guess in guesses:
        status, headers, body = await _get(page + guess)
        assert (status, headers, body) == before[guess], guess
        assert status == 404
        assert not any(s.encode() in body for s in secrets_shown), guess
    for other in (f"/verify/{SERIES}/2", "/verify/DCSGTS1CAQHK-2024/1", "/verify/X-2025/1"):
        status, _, body = await _get(f"{api.url}{other}?s={token[0]}")
        assert status == 404
        assert b"KH\xc3\x94NG T\xc3\x8cM TH\xe1\xba\xa4Y" in body  # "KHÔNG TÌM THẤY"


async def test_the_exact_token_shows_the_receipt_with_the_person_masked(
    api: EdgeApp, engine: AsyncEngine, signer: ReceiptSigner
) -> None:
    receipt, status, headers, body = await _genuine_page(api, engine, signer)
    page = body.decode()
    assert status == 200
    assert "BIÊN LAI HỢP LỆ" in page
    assert "Nguyễn V. Đ." in page
    assert "Nguyễn Văn Đức" not in page
    plate = receipt.payload["plate"]
    assert plate not in page
    assert f"29A-***.{plate[-2:]}" in page
    assert receipt.payload["decision_number"] in page
    assert "1.500.000" in page
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["server"] == "reconciler"


async def test_a_malformed_series_or_number_is_refused(api: EdgeApp) -> None:
    for path in (
        "/verify/DCSGTS1CAQHK-2025/%EF%BC%91",  # full-width 1
        "/verify/DCSGTS1CAQHK-2025/%C2%B2",  # superscript 2
        f"/verify/DCSGTS1CAQHK-2025/{'9' * 5000}",
        "/verify/dcsgts1caqhk-2025/1",
        "/verify/DCSGTS1CAQHK%002025/1",
        f"/verify/{'A' * 41}/1",
    ):
        status, headers, _body = await _get(api.url + path)
        assert status == 400, path
        assert headers["content-type"].startswith("application/json"), path


async def test_the_public_pages_are_rate_limited_per_client(
    engine: AsyncEngine, db_url: str
) -> None:
    async with edge_app(engine, db_url, public_rate_per_minute=1, public_rate_burst=3) as api:
        answers = [(await _get(f"{api.url}/verify/A-2025/1?s=x"))[0] for _ in range(4)]
        assert answers == [404, 404, 404, 429]
        status, headers, body = await _get(f"{api.url}/receipts/A-2025/1.pdf?exp=1&sig=x")
        assert status == 429
        assert int(headers["retry-after"]) >= 1
        assert b'"too_many_requests"' in body
        # Another address has its own bucket (the loopback network is a /8).
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(f"{api.url}/verify/A-2025/1?s=x") as resp,
        ):
            assert resp.status == 404


async def test_the_citizen_opens_their_pdf_by_the_signed_link_alone(
    api: EdgeApp, engine: AsyncEngine, signer: ReceiptSigner
) -> None:
    receipt, _, _, body = await _genuine_page(api, engine, signer)
    found = re.search(rb'href="(/receipts/[^"]+)"', body)
    assert found is not None
    link = found.group(1).decode().replace("&amp;", "&")
    status, headers, pdf = await _get(api.url + link)
    assert status == 200
    assert headers["content-type"] == "application/pdf"
    assert pdf.startswith(b"%PDF")
    # The staff route still wants a token.
    status, _, _ = await _get(f"{api.url}/api/v1/receipts/{SERIES}/{receipt.number}/pdf")
    assert status == 401


async def test_a_changed_or_expired_link_answers_as_an_unknown_receipt(
    api: EdgeApp, engine: AsyncEngine, signer: ReceiptSigner
) -> None:
    receipt = await _issued(engine, signer)
    links = CitizenLinks.from_secret(LINK_SECRET, api.url, 3600)
    now = time.time()
    good = links.path(SERIES, receipt.number, now)
    exp = re.search(r"exp=(\d+)", good).group(1)  # type: ignore[union-attr]
    sig = re.search(r"sig=([\w-]+)", good).group(1)  # type: ignore[union-attr]
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    number = receipt.number
    tries = {
        f"/receipts/{SERIES}/{number}.pdf?exp={exp}&sig={flipped}": (SERIES, number),
        f"/receipts/{SERIES}/{number}.pdf?exp={int(exp) + 1}&sig={sig}": (SERIES, number),
        f"/receipts/{SERIES}/{number + 1}.pdf?exp={exp}&sig={sig}": (SERIES, number + 1),
        f"/receipts/{SERIES}/{number}.pdf?exp={exp}": (SERIES, number),
        f"/receipts/{SERIES}/{number}.pdf": (SERIES, number),
        # Expired an hour ago, with a genuine signature.
        links.path(SERIES, number, now - 7200): (SERIES, number),
        # Genuine, for a receipt that does not exist: the reference answer.
        links.path(SERIES, number + 1, now): (SERIES, number + 1),
        # Signed with another key.
        CitizenLinks.from_secret("x" * 40, api.url, 3600).path(SERIES, number, now): (
            SERIES,
            number,
        ),
    }
    for path, (series, n) in tries.items():
        status, _, body = await _get(api.url + path)
        assert status == 404, path
        assert not body.startswith(b"%PDF")
        assert f"no receipt {series}/{n}, or the link has expired".encode() in body, path
