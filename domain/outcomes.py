"""Outcome kinds that the ledger and the workflows both speak.

``StrEnum``: a member is its plain string, so SQL, JSON and the workflow
histories (Temporal's data converter) carry ``"settled"``, never a class
name, and a value read back converts to the member.
"""

from __future__ import annotations

from enum import StrEnum


class SettleOutcome(StrEnum):
    """What booking a confirmed debit did (``ledger.payments.settle``)."""

    SETTLED = "settled"  # this payment pays the fine: issue the receipt
    DUPLICATE = "duplicate"  # the fine was already paid: refund this one
    REFUNDED = "refunded"  # a duplicate whose refund is already done
