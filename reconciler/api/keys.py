"""Typed application keys: everything the handlers share, set by the factory."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.receipts.signing import ReceiptVerifier
from reconciler.api.reads import Reader
from reconciler.api.temporal_link import TemporalLink
from reconciler.citizen_links import CitizenLinks
from reconciler.settings import Settings
from workflows.payment.client import SagaConfig

SETTINGS: Final = web.AppKey("settings", Settings)
ENGINE: Final = web.AppKey("engine", AsyncEngine)
TEMPORAL: Final = web.AppKey("temporal", TemporalLink)
SAGA: Final = web.AppKey("saga", SagaConfig)
VERIFIER: Final = web.AppKey("verifier", ReceiptVerifier)
READER: Final = web.AppKey("reader", Reader)
CITIZEN_LINKS: Final = web.AppKey("citizen_links", CitizenLinks)
