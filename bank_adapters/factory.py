"""Build an adapter from configuration (the composition root calls this once
per configured bank, with the process's one ``ClientSession``)."""

from __future__ import annotations

from typing import Literal

import aiohttp

from bank_adapters.base import AdapterOptions, BankAdapter
from bank_adapters.rest_bank import RestBankAdapter
from bank_adapters.vietqr_bank import VietQRBankAdapter

Protocol = Literal["rest", "vietqr"]


def build_adapter(
    bank_id: str,
    protocol: Protocol,
    url: str,
    session: aiohttp.ClientSession,
    *,
    account_number: str = "",
    bank_bin: str = "",
    options: AdapterOptions | None = None,
) -> BankAdapter:
    """``account_number`` and ``bank_bin`` are our collection account at a
    VietQR bank (required there, unused for REST). The webhook secret is not
    the adapter's business: the API verifies callbacks with
    ``webhooks.verify_webhook``."""
    match protocol:
        case "rest":
            return RestBankAdapter(bank_id, url, session, options=options)
        case "vietqr":
            if not account_number or not bank_bin:
                raise ValueError(
                    f"bank {bank_id!r}: a VietQR bank needs account_number and bank_bin"
                )
            return VietQRBankAdapter(
                bank_id,
                url,
                session,
                account_number=account_number,
                bank_bin=bank_bin,
                options=options,
            )
