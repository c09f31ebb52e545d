"""The JSON API and public pages (aiohttp)."""
