"""Wire vocabulary of the two bank protocols, shared by each adapter and the
simulator that plays that bank: status codes, header names, paths.

Protocol A (REST account-debit bank) answers with ISO 20022 payment status
codes (the ones of pain.002), and reason codes for rejections.

Protocol B (VietQR bank) answers with ISO 8583 response codes, as the NAPAS
switch does.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# --- protocol A: REST/JSON account debit ---------------------------------------

IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"
REST_DEBITS_PATH: Final = "/v1/debits"
REST_REFUNDS_PATH: Final = "/v1/refunds"
REST_STATEMENTS_PATH: Final = "/v1/statements"
HEALTH_PATH: Final = "/v1/health"

WEBHOOK_TIMESTAMP_HEADER: Final = "X-Bank-Timestamp"
WEBHOOK_NONCE_HEADER: Final = "X-Bank-Nonce"
WEBHOOK_SIGNATURE_HEADER: Final = "X-Bank-Signature"
WEBHOOK_SIGNATURE_SCHEME: Final = "v1"


class RestStatus(StrEnum):
    """ISO 20022 transaction status codes the REST bank uses."""

    ACCEPTED_TECHNICAL = "ACTC"  # syntax and signature checks passed
    ACCEPTED_IN_PROCESS = "ACSP"  # accepted, settlement in process
    PENDING = "PDNG"
    ACCEPTED_SETTLED = "ACSC"  # settlement on the debtor's account completed
    ACCEPTED_CREDITED = "ACCC"  # settlement on the creditor's account completed
    REJECTED = "RJCT"


class RestReason(StrEnum):
    """ISO 20022 external status reason codes used with ``RJCT``."""

    INSUFFICIENT_FUNDS = "AM04"
    ACCOUNT_BLOCKED = "AC06"
    INVALID_ACCOUNT = "AC01"
    AMOUNT_EXCEEDS_ORIGINAL = "AM09"  # refund larger than what is left to refund
    NOT_FOUND = "NOOR"  # no original transaction


# --- protocol B: VietQR transfers ----------------------------------------------

REQUEST_ID_HEADER: Final = "X-Request-ID"
QR_PAYMENTS_PATH: Final = "/v1/qr-payments"
TRANSFERS_PATH: Final = "/v1/transfers"
TRANSACTIONS_PATH: Final = "/v1/transactions"
VIETQR_STATEMENTS_PATH: Final = "/v1/statements"
TRANSACTIONS_PAGE_SIZE_MAX: Final = 500


class Iso8583Response(StrEnum):
    """ISO 8583 field 39 response codes the VietQR bank answers with."""

    APPROVED = "00"
    DO_NOT_HONOR = "05"
    IN_PROGRESS = "09"
    INVALID_ACCOUNT = "14"
    INSUFFICIENT_FUNDS = "51"
    EXCEEDS_LIMIT = "61"
    RESTRICTED_ACCOUNT = "62"
    LATE_RESPONSE = "68"  # response received too late: may have been done
    ISSUER_UNAVAILABLE = "91"
    DUPLICATE_TRANSMISSION = "94"
    SYSTEM_MALFUNCTION = "96"


# --- declines: whose doing ------------------------------------------------------

# Codes of either protocol that decline for the payer's own account
# (insufficient funds, blocked or restricted, no such account, over the
# payer's limit). Every other decline is the bank's. The two sets cannot
# collide: ISO 20022 reasons are letters and digits, ISO 8583 codes two digits.
PAYER_DECLINE_CODES: Final = frozenset(
    {
        RestReason.INSUFFICIENT_FUNDS.value,
        RestReason.ACCOUNT_BLOCKED.value,
        RestReason.INVALID_ACCOUNT.value,
        Iso8583Response.INVALID_ACCOUNT.value,
        Iso8583Response.INSUFFICIENT_FUNDS.value,
        Iso8583Response.EXCEEDS_LIMIT.value,
        Iso8583Response.RESTRICTED_ACCOUNT.value,
    }
)


def decline_party(code: str) -> str:
    """``citizen`` for a decline of the payer's own account, else ``bank``."""
    return "citizen" if code in PAYER_DECLINE_CODES else "bank"
