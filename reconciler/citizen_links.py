"""The citizen's own link to their receipt's PDF: a URL signed with an
HMAC and an expiry, so it needs no staff token and cannot be made up.

``/receipts/{series}/{number}.pdf?exp=UNIX_SECONDS&sig=HMAC`` where ``sig``
is HMAC-SHA256, keyed by ``RECONCILER_RECEIPT_LINK_KEY``, over a purpose
tag, the series, the number and ``exp`` (base64url, unpadded). A link
changed in any part, or past ``exp``, checks as false. The API mints it on
the verify page of a genuine receipt; the worker puts one in the "receipt
issued" notice it sends to the portal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

_PURPOSE: Final = b"citizen-receipt-pdf/v1"
_SIG_CHARS: Final = 43  # 256 bits, base64url without padding
_EXP_DIGITS_MAX: Final = 12


@dataclass(frozen=True)
class CitizenLinks:
    key: bytes
    base_url: str
    ttl_seconds: int

    @classmethod
    def from_secret(cls, secret: str, base_url: str, ttl_seconds: int) -> CitizenLinks:
        """From the configured secret; an empty one gives a random key, good
        only for the links this object mints and checks."""
        key = secret.encode("utf-8") if secret else secrets.token_bytes(32)
        return cls(key, base_url.rstrip("/"), ttl_seconds)

    def path(self, series: str, number: int, now: float) -> str:
        expires = int(now) + self.ttl_seconds
        sig = self._sign(series, number, expires)
        return f"/receipts/{quote(series, safe='')}/{number}.pdf?exp={expires}&sig={sig}"

    def url(self, series: str, number: int, now: float) -> str:
        return self.base_url + self.path(series, number, now)

    def holds(self, series: str, number: int, exp: str, sig: str, now: float) -> bool:
        """Whether ``exp`` and ``sig`` are a link this key made for this
        receipt that has not expired. Constant time in ``sig``."""
        expires = int(exp) if exp.isascii() and exp.isdigit() and len(exp) <= _EXP_DIGITS_MAX else 0
        expected = self._sign(series, number, expires).encode("ascii")
        given = sig.encode("utf-8", "replace")
        return hmac.compare_digest(expected, given) and now < expires

    def _sign(self, series: str, number: int, expires: int) -> str:
        message = b"|".join(
            (_PURPOSE, series.encode("utf-8"), str(number).encode(), str(expires).encode())
        )
        digest = hmac.new(self.key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii")[:_SIG_CHARS]
