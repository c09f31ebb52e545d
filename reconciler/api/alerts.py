"""The service's own alert receiver: Alertmanager delivers here, operators read.

``POST /ops/alerts/webhook`` takes Alertmanager's webhook payload (version 4)
with ``Authorization: Bearer <RECONCILER_ALERT_WEBHOOK_TOKEN>``. It lives
outside ``/api/`` on purpose: it is a machine's shared secret, not a staff or
portal API token. With no secret configured it refuses every call (nothing
can be posted by a stranger on a stack that forgot to set one). The whole
payload is checked before anything is stored: a bad alert anywhere refuses
the delivery with a 400 naming it, and nothing changes.

``GET /api/v1/alerts?status=firing|resolved&limit=`` (``ops:read``) lists what
was received, firing first. Every received alert is also logged.
"""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from aiohttp import web

from domain.business_time import DATE_MAX, DATE_MIN
from ledger.core.errors import ValidationError
from ledger.ops_alerts import STATUSES, ReceivedAlert, list_alerts, store_alerts
from reconciler.api.auth import require
from reconciler.api.bodies import BodyRule, read_json
from reconciler.api.errors import ApiError
from reconciler.api.keys import ENGINE, READER, SETTINGS
from reconciler.api.params import page_limit
from reconciler.api.views import json_response

log = structlog.get_logger(__name__)

WEBHOOK_PATH: Final = "/ops/alerts/webhook"
# Alertmanager's webhook_config max_alerts is 100 in our config.
ALERTS_PER_DELIVERY_MAX: Final = 200
BODY_BYTES_MAX: Final = 512 * 1024
LABELS_MAX: Final = 40
NAME_CHARS_MAX: Final = 100
VALUE_CHARS_MAX: Final = 2000
LIST_LIMIT_MAX: Final = 500
_FINGERPRINT: Final = re.compile(r"[0-9a-f]{1,32}", re.ASCII)
# Alertmanager's "no end yet".
_ZERO_TIME_PREFIX: Final = "0001-01-01"


def body_rule(seconds: float) -> BodyRule:
    """The receiver's body cap: a delivery of up to 200 alerts."""
    return BodyRule(BODY_BYTES_MAX, seconds)


def _authorised(request: web.Request) -> None:
    token = request.app[SETTINGS].alert_webhook_token
    secret = token.get_secret_value() if token is not None else ""
    if not secret:
        raise ApiError(
            503,
            "alert_receiver_disabled",
            "no alert webhook secret is configured (RECONCILER_ALERT_WEBHOOK_TOKEN)",
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), secret.encode()
    ):
        raise ApiError(401, "unauthorized", "send the alert webhook secret as a bearer token")


def _strings(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > LABELS_MAX:
        raise ValidationError(where, f"must be an object of at most {LABELS_MAX} strings")
    for key, item in value.items():
        if not (isinstance(item, str) and 0 < len(key) <= NAME_CHARS_MAX):
            raise ValidationError(f"{where}.{key[:NAME_CHARS_MAX]}", "must be a string")
        if len(item) > VALUE_CHARS_MAX:
            raise ValidationError(f"{where}.{key}", f"longer than {VALUE_CHARS_MAX} characters")
    return dict(value)


def _time(value: Any, where: str, *, optional: bool) -> datetime | None:
    if optional and (
        value is None or (isinstance(value, str) and value.startswith(_ZERO_TIME_PREFIX))
    ):
        return None
    try:
        parsed = (
            datetime.fromisoformat(value) if isinstance(value, str) and len(value) <= 40 else None
        )
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValidationError(where, "must be an RFC 3339 time with its offset")
    # Year 1 or 9999 cannot be moved to UTC and back (it would break the list).
    if not DATE_MIN <= parsed.date() <= DATE_MAX:
        raise ValidationError(where, f"must be between {DATE_MIN} and {DATE_MAX}")
    return parsed


def _alert(raw: Any, where: str, receiver: str, now: datetime) -> ReceivedAlert:
    if not isinstance(raw, dict):
        raise ValidationError(where, "must be an object")
    status = raw.get("status")
    if status not in STATUSES:
        raise ValidationError(f"{where}.status", "must be 'firing' or 'resolved'")
    labels = _strings(raw.get("labels"), f"{where}.labels")
    fingerprint = raw.get("fingerprint")
    if not (isinstance(fingerprint, str) and _FINGERPRINT.fullmatch(fingerprint)):
        raise ValidationError(f"{where}.fingerprint", "must be 1 to 32 lower-case hex digits")
    if not labels.get("alertname"):
        raise ValidationError(f"{where}.labels.alertname", "is missing")
    return ReceivedAlert(
        fingerprint=fingerprint,
        alertname=labels["alertname"],
        status=status,
        severity=labels.get("severity", ""),
        team=labels.get("team", ""),
        bank=labels.get("bank"),
        receiver=receiver,
        labels=labels,
        annotations=_strings(raw.get("annotations", {}), f"{where}.annotations"),
        starts_at=_time(raw.get("startsAt"), f"{where}.startsAt", optional=False) or now,
        ends_at=_time(raw.get("endsAt"), f"{where}.endsAt", optional=True),
        received_at=now,
    )


def parse_delivery(doc: Any, now: datetime) -> list[ReceivedAlert]:
    """Alertmanager's payload (version 4, parsed by ``read_json``) as alerts,
    or a ValidationError naming the first bad field."""
    if not isinstance(doc, dict) or doc.get("version") != "4":
        raise ValidationError("version", "must be Alertmanager's webhook version '4'")
    receiver = doc.get("receiver")
    if not (isinstance(receiver, str) and 0 < len(receiver) <= NAME_CHARS_MAX):
        raise ValidationError("receiver", f"must be a name of 1 to {NAME_CHARS_MAX} characters")
    alerts = doc.get("alerts")
    if not isinstance(alerts, list) or len(alerts) > ALERTS_PER_DELIVERY_MAX:
        raise ValidationError("alerts", f"must be a list of at most {ALERTS_PER_DELIVERY_MAX}")
    parsed = [_alert(raw, f"alerts[{i}]", receiver, now) for i, raw in enumerate(alerts)]
    # One row per fingerprint: a delivery naming one twice keeps the last.
    return list({a.fingerprint: a for a in parsed}.values())


async def receive(request: web.Request) -> web.Response:
    _authorised(request)
    # Strict JSON within BODY_RULE (the edge refuses a larger declared body).
    alerts = parse_delivery(await read_json(request), datetime.now(UTC))
    async with request.app[ENGINE].begin() as conn:
        await store_alerts(conn, alerts)
    for alert in alerts:
        (log.warning if alert.status == "firing" else log.info)(
            "alert.received",
            alertname=alert.alertname,
            status=alert.status,
            severity=alert.severity,
            team=alert.team,
            bank=alert.bank,
            receiver=alert.receiver,
            summary=alert.annotations.get("summary", ""),
        )
    return json_response({"received": len(alerts)})


def alert_json(alert: ReceivedAlert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "alertname": alert.alertname,
        "status": alert.status,
        "severity": alert.severity,
        "team": alert.team,
        "bank": alert.bank,
        "receiver": alert.receiver,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
        "received_at": alert.received_at.isoformat(),
    }


async def alerts(request: web.Request) -> web.Response:
    require(request, "ops:read")
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise ValidationError("status", "must be 'firing' or 'resolved'")
    limit = page_limit(request, LIST_LIMIT_MAX)
    rows = await request.app[READER].run(lambda conn: list_alerts(conn, status, limit))
    return json_response({"alerts": [alert_json(a) for a in rows]})


def add_routes(app: web.Application) -> None:
    app.router.add_post(WEBHOOK_PATH, receive)
    app.router.add_get("/api/v1/alerts", alerts)
