"""Typed application keys: everything the handlers share, set by the factory."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.settings import Settings

SETTINGS: Final = web.AppKey("settings", Settings)
ENGINE: Final = web.AppKey("engine", AsyncEngine)
