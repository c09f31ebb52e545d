"""A notice logged for lack of a ``notify_url`` never carries a verify
token or a link's signature."""

from __future__ import annotations

from reconciler.outbox import redact, redacted


def test_tokens_and_signatures_are_redacted() -> None:
    assert (
        redact("https://x/verify/A-2025/1?s=AbC_d-12") == "https://x/verify/A-2025/1?s=<redacted>"
    )
    assert (
        redact("https://x/receipts/A-2025/1.pdf?exp=99&sig=Zz9-_&x=1")
        == "https://x/receipts/A-2025/1.pdf?exp=99&sig=<redacted>&x=1"
    )
    assert redact("no url here, s=plain") == "no url here, s=plain"


def test_a_payload_keeps_its_other_values() -> None:
    payload = {"verify_url": "https://x/verify/A/1?s=tok", "amount_vnd": 5, "series": "A"}
    assert redacted(payload) == {
        "verify_url": "https://x/verify/A/1?s=<redacted>",
        "amount_vnd": 5,
        "series": "A",
    }
