"""Payments in the books: creation, the state machine with its history,
settlement, refunds and the in-doubt views."""
