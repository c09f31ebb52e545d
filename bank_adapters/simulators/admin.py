"""A small client of a simulator's admin API, for tests, benchmarks and the
chaos harness. The session is the caller's."""

from __future__ import annotations

from typing import Any

import aiohttp


class SimulatorAdminError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"simulator admin answered HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class SimulatorAdmin:
    def __init__(self, session: aiohttp.ClientSession, admin_url: str) -> None:
        self._session = session
        self._url = admin_url.rstrip("/")

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with self._session.request(
            method,
            self._url + path,
            json=body,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            text = await response.text()
            if response.status >= 300:
                raise SimulatorAdminError(response.status, text)
            return await response.json(content_type=None)

    async def add_fault(
        self,
        mode: str,
        *,
        probability: float = 1.0,
        seconds: float | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"mode": mode, "probability": probability, **params}
        if seconds is not None:
            body["seconds"] = seconds
        fault: dict[str, Any] = (await self._call("POST", "/faults", body))["fault"]
        return fault

    async def faults(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await self._call("GET", "/faults"))["faults"]
        return rows

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def debits(self) -> list[dict[str, Any]]:
        """Ground truth: every movement the bank recorded."""
        rows: list[dict[str, Any]] = (await self._call("GET", "/debits"))["debits"]
        return rows

    async def webhooks(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await self._call("GET", "/webhooks"))["webhooks"]
        return rows

    async def set_account(
        self,
        account: str,
        balance_vnd: int,
        *,
        blocked: bool = False,
        settle_delay_seconds: float = 0,
    ) -> dict[str, Any]:
        body = {
            "account": account,
            "balance_vnd": balance_vnd,
            "blocked": blocked,
            "settle_delay_seconds": settle_delay_seconds,
        }
        result: dict[str, Any] = (await self._call("POST", "/accounts", body))["account"]
        return result

    async def account(self, account: str) -> dict[str, Any]:
        result: dict[str, Any] = (await self._call("GET", f"/accounts/{account}"))["account"]
        return result

    async def transfer(self, payer_account: str, amount_vnd: int, content: str) -> dict[str, Any]:
        """A citizen's own transfer to our account."""
        body = {"payer_account": payer_account, "amount_vnd": amount_vnd, "content": content}
        result: dict[str, Any] = (await self._call("POST", "/transfers", body))["transfer"]
        return result

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/healthz")
        return result
