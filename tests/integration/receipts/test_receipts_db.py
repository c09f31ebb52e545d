"""Receipts against a real PostgreSQL: numbering, idempotency, copies, checks."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pypdf
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledger.receipts.issue import (
    ReceiptNotAllowed,
    ReceiptNotFound,
    canonical_json,
    get_receipt,
    get_receipt_for_payment,
    issue_receipt,
    record_copy,
    series_code,
    verify_receipts,
    verify_url,
)
from ledger.receipts.pdf import render_receipt_pdf
from ledger.receipts.signing import ReceiptSigner, verify_signature
from tests.support.receipts import NOW, SERIES, UNIT, add_fine, add_payment, issue, paid_fine


@pytest.fixture(scope="module")
def signer() -> ReceiptSigner:
    return ReceiptSigner.generate()


async def test_issue_is_idempotent(engine: AsyncEngine, signer: ReceiptSigner) -> None:
    payment_id = await paid_fine(engine)
    first = await issue(engine, payment_id, signer)
    again = await issue(engine, payment_id, signer, NOW + timedelta(hours=1))
    assert again == first
    assert (first.series, first.number, first.copies) == (SERIES, 1, 1)
    assert first.issued_at == NOW.replace(microsecond=0)
    async with engine.connect() as conn:
        assert await get_receipt_for_payment(conn, payment_id) == first
        assert await get_receipt(conn, SERIES, 1) == first
        assert await get_receipt(conn, SERIES, 2) is None
        counter = (await conn.execute(text("SELECT last_number FROM receipt_series"))).scalar_one()
    assert counter == 1


async def test_payload_is_signed_and_complete(engine: AsyncEngine, signer: ReceiptSigner) -> None:
    async with engine.begin() as conn:
        fine_id, decision = await add_fine(conn, amount_vnd=1_250_000)
        payment_id = await add_payment(conn, fine_id, amount_vnd=1_250_000)
        receipt = await issue_receipt(conn, payment_id, signer, NOW)
    assert receipt.payload == {
        "kid": signer.key_id,
        "series": SERIES,
        "number": 1,
        "issued_at": "2025-03-01T02:03:04+00:00",
        "decision_number": decision,
        "amount_vnd": 1_250_000,
        "amount_words": "Một triệu hai trăm năm mươi nghìn đồng",
        "violator_name": "Nguyễn Văn Đức",
        "plate": receipt.payload["plate"],
        "issuing_unit": UNIT,
        "violation": "Vượt đèn đỏ",
        "bank": "vcb",
        "bank_ref": f"FT{payment_id.hex[:12]}",
        "payment_id": str(payment_id),
    }
    assert receipt.payload_canonical == canonical_json(receipt.payload)
    assert receipt.key_id == signer.key_id
    assert verify_signature(signer.public_key_b64, receipt.payload_canonical, receipt.signature)


async def test_next_payment_gets_the_next_number_and_years_have_own_series(
    engine: AsyncEngine, signer: ReceiptSigner
) -> None:
    numbers = [(await issue(engine, await paid_fine(engine), signer)).number for _ in range(3)]
    assert numbers == [1, 2, 3]
    # 00:30 on 1 January in Hanoi is still 31 December in UTC: the new year's series.
    new_year = datetime(2025, 12, 31, 17, 30, tzinfo=UTC)
    receipt = await issue(engine, await paid_fine(engine), signer, new_year)
    assert (receipt.series, receipt.number) == ("DCSGTS1CAQHK-2026", 1)
    other_unit = await issue(engine, await paid_fine(engine, unit="Đội CSGT số 2"), signer)
    assert (other_unit.series, other_unit.number) == ("DCSGTS2-2025", 1)


async def test_a_rolled_back_issue_leaves_no_gap(
    engine: AsyncEngine, signer: ReceiptSigner
) -> None:
    rolled_back = await paid_fine(engine)
    async with engine.connect() as conn:
        trans = await conn.begin()
        receipt = await issue_receipt(conn, rolled_back, signer, NOW)
        assert receipt.number == 1
        await trans.rollback()
    later = await issue(engine, await paid_fine(engine), signer)
    assert later.number == 1
    again = await issue(engine, rolled_back, signer)
    assert again.number == 2


@pytest.mark.parametrize(
    ("status", "settles", "reason"),
    [
        ("initiated", False, "payment is initiated"),
        ("verifying", False, "payment is verifying"),
        ("declined", False, "payment is declined"),
        ("refunded", False, "payment is refunded"),
        ("succeeded", False, "does not settle"),
    ],
)
async def test_refused_unless_succeeded_and_settling(
    engine: AsyncEngine, signer: ReceiptSigner, status: str, settles: bool, reason: str
) -> None:
    async with engine.begin() as conn:
        fine_id, _ = await add_fine(conn)
        payment_id = await add_payment(conn, fine_id, status=status, settles=settles)
    with pytest.raises(ReceiptNotAllowed, match=reason) as caught:
        await issue(engine, payment_id, signer)
    assert caught.value.payment_id == payment_id
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM receipts"))).scalar_one() == 0
        assert (await conn.execute(text("SELECT count(*) FROM receipt_series"))).scalar_one() == 0


async def test_unknown_payment_is_refused(engine: AsyncEngine, signer: ReceiptSigner) -> None:
    with pytest.raises(ReceiptNotAllowed, match="unknown payment"):
        await issue(engine, uuid.uuid4(), signer)


async def test_concurrent_issues_are_gapless(db_url: str, signer: ReceiptSigner) -> None:
    """30 payments issued at once from 30 connections, a third of them rolled
    back: the committed numbers are exactly 1..20, each once."""
    engine = create_async_engine(db_url, pool_size=30, max_overflow=0)
    try:
        payment_ids = [await paid_fine(engine) for _ in range(30)]
        rollback = set(payment_ids[::3])
        start = asyncio.Event()

        class Abort(Exception):
            pass

        async def one(payment_id: UUID) -> int | None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))  # connected before the start
                await conn.rollback()
                await start.wait()
                try:
                    async with conn.begin():
                        receipt = await issue_receipt(conn, payment_id, signer, NOW)
                        await asyncio.sleep(0.005)  # hold the counter a little
                        if payment_id in rollback:
                            raise Abort
                except Abort:
                    return None
                return receipt.number

        tasks = [asyncio.create_task(one(p)) for p in payment_ids]
        await asyncio.sleep(0.1)
        start.set()
        numbers = [n for n in await asyncio.gather(*tasks) if n is not None]
        assert sorted(numbers) == list(range(1, 21))
        async with engine.connect() as conn:
            stored = (
                (await conn.execute(text("SELECT number FROM receipts ORDER BY number")))
                .scalars()
                .all()
            )
            counter = (
                await conn.execute(text("SELECT last_number FROM receipt_series"))
            ).scalar_one()
            report = await verify_receipts(conn, signer.verifier())
        assert list(stored) == list(range(1, 21))
        assert counter == 20
        assert report.all_ok
        assert report.checked == 20
    finally:
        await engine.dispose()


async def test_concurrent_issues_of_one_payment_give_one_receipt(
    db_url: str, signer: ReceiptSigner
) -> None:
    engine = create_async_engine(db_url, pool_size=8, max_overflow=0)
    try:
        payment_id = await paid_fine(engine)
        receipts = await asyncio.gather(*(issue(engine, payment_id, signer) for _ in range(8)))
        assert len({(r.series, r.number, r.signature) for r in receipts}) == 1
        async with engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM receipts"))).scalar_one()
        assert count == 1
    finally:
        await engine.dispose()


async def test_record_copy_counts_and_keeps_the_number(
    engine: AsyncEngine, signer: ReceiptSigner
) -> None:
    payment_id = await paid_fine(engine)
    original = await issue(engine, payment_id, signer)
    later = NOW + timedelta(days=2)
    async with engine.begin() as conn:
        copy = await record_copy(conn, original.series, original.number, later)
        copy = await record_copy(conn, original.series, original.number, later)
    assert copy.copies == 3
    assert copy.last_copy_at == later
    assert (copy.series, copy.number, copy.signature) == (
        original.series,
        original.number,
        original.signature,
    )
    assert copy.payload == original.payload
    # Issuing again returns the same receipt, with its copy count.
    assert (await issue(engine, payment_id, signer)).copies == 3
    async with engine.begin() as conn:
        with pytest.raises(ReceiptNotFound):
            await record_copy(conn, original.series, original.number + 1, later)


@pytest.mark.parametrize(
    "change",
    [
        "signature = 'forged'",
        "number = 99",
        "payload_canonical = '{}'",
        "issued_at = issued_at + interval '1 day'",
    ],
)
async def test_receipts_are_immutable_in_the_database(
    engine: AsyncEngine, owner_engine: AsyncEngine, signer: ReceiptSigner, change: str
) -> None:
    """The trigger holds even for the owner (the app's role has no such
    privilege at all: tests/integration/ledger/test_app_role.py)."""
    await issue(engine, await paid_fine(engine), signer)
    with pytest.raises(DBAPIError, match="receipts are immutable"):
        async with owner_engine.begin() as conn:
            await conn.execute(text(f"UPDATE receipts SET {change}"))
    with pytest.raises(DBAPIError, match="cannot be deleted"):
        async with owner_engine.begin() as conn:
            await conn.execute(text("DELETE FROM receipts"))


async def test_pdf_of_an_issued_receipt(engine: AsyncEngine, signer: ReceiptSigner) -> None:
    async with engine.begin() as conn:
        fine_id, decision = await add_fine(conn, amount_vnd=1_500_000)
        payment_id = await add_payment(conn, fine_id, amount_vnd=1_500_000)
        receipt = await issue_receipt(conn, payment_id, signer, NOW)
        reprint = await record_copy(conn, receipt.series, receipt.number, NOW)
    url = verify_url(
        "https://bienlai.example.vn", receipt.series, receipt.number, receipt.signature
    )
    data = render_receipt_pdf(reprint, url)
    text_ = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages)
    for expected in (
        "BIÊN LAI THU TIỀN PHẠT",
        decision,
        "1.500.000 đồng",
        "Một triệu năm trăm nghìn đồng",
        "Nguyễn Văn Đức",
        UNIT,
        "Bản sao lần 2",
        receipt.signature[:22],
    ):
        assert expected in text_, expected


async def test_verify_receipts_finds_tampering(
    engine: AsyncEngine, owner_engine: AsyncEngine, signer: ReceiptSigner
) -> None:
    issued = [await issue(engine, await paid_fine(engine), signer) for _ in range(4)]
    async with engine.connect() as conn:
        report = await verify_receipts(conn, signer.verifier(), page_size=3)
    assert report.all_ok
    assert (report.checked, report.ok, report.series_checked) == (4, 4, 1)

    forged_payload = {**issued[0].payload, "amount_vnd": 150_000}
    async with owner_engine.begin() as conn:  # an intruder with the owner's rights
        await conn.execute(text("ALTER TABLE receipts DISABLE TRIGGER receipts_immutable"))
        # 1: amount changed in both forms, signature left: the signature fails.
        await conn.execute(
            text(
                "UPDATE receipts SET payload = CAST(:p AS jsonb), payload_canonical = :c"
                " WHERE number = 1"
            ),
            {"p": canonical_json(forged_payload), "c": canonical_json(forged_payload)},
        )
        # 2: only the jsonb changed: it no longer matches what was signed.
        await conn.execute(
            text(
                "UPDATE receipts SET payload = jsonb_set(payload, '{plate}', '\"30A-999.99\"')"
                " WHERE number = 2"
            )
        )
        # 3: another receipt's signature copied over.
        await conn.execute(
            text(
                "UPDATE receipts SET signature = (SELECT signature FROM receipts WHERE number = 4)"
                " WHERE number = 3"
            )
        )
        await conn.execute(text("ALTER TABLE receipts ENABLE TRIGGER receipts_immutable"))
        # A counter ahead of the receipts: a gap in the series.
        await conn.execute(text("UPDATE receipt_series SET last_number = last_number + 1"))
    async with engine.connect() as conn:
        report = await verify_receipts(conn, signer.verifier(), page_size=3)
    assert not report.all_ok
    assert (report.checked, report.ok, report.bad_total) == (4, 1, 3)
    assert {(b.series, b.number): b.reasons for b in report.bad} == {
        (SERIES, 1): ("signature does not verify",),
        (SERIES, 2): ("payload differs from payload_canonical",),
        (SERIES, 3): ("signature does not verify",),
    }
    assert [(p.series, p.last_number, p.receipts_count) for p in report.series_problems] == [
        (SERIES, 5, 4)
    ]


async def test_verify_receipts_with_another_key_flags_every_receipt(
    engine: AsyncEngine, signer: ReceiptSigner
) -> None:
    await issue(engine, await paid_fine(engine), signer)
    async with engine.connect() as conn:
        report = await verify_receipts(conn, ReceiptSigner.generate().verifier())
    assert report.bad_total == 1
    assert report.bad[0].reasons == (f"unknown signing key {signer.key_id}",)


async def test_colliding_unit_codes_get_separate_series(
    engine: AsyncEngine, signer: ReceiptSigner
) -> None:
    first = await issue(engine, await paid_fine(engine, unit="Công an quận Ba Đình"), signer)
    second = await issue(engine, await paid_fine(engine, unit="Công an quận Bình Định"), signer)
    same_unit = await issue(engine, await paid_fine(engine, unit="Công an quận  Ba Đình"), signer)
    assert first.series == "CAQBD-2025" == same_unit.series
    assert second.series == series_code("Công an quận Bình Định", 2025, disambiguate=True)
    assert (first.number, same_unit.number, second.number) == (1, 2, 1)
