"""The OpenAPI document (``reconciler.api.openapi``) stays true to the app:
every ``/api/v1`` route is described and nothing else is; it is a valid
OpenAPI 3.1 document; it names no secret; its bounds are the parsers'."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from ledger.listings import LISTING_LIMIT_MAX
from ledger.receipts.signing import ReceiptSigner
from reconciler.api.app import create_app
from reconciler.api.openapi import (
    DOCUMENT,
    build_document,
    described_operations,
    registered_operations,
)
from reconciler.settings import BankSettings, Settings

SECRETS = {
    "database_url": "postgresql+psycopg://app:db-password-0123456789@db:5432/reconciler",
    "receipt_link_key": "link-key-0123456789-0123456789-0123456789",
    "alert_webhook_token": "alert-token-0123456789-0123456789",
}
BANK_SECRET = "bank-webhook-secret-0123456789"


def _settings() -> Settings:
    banks = {
        "sgbank": BankSettings(
            protocol="rest", url="http://sg.internal:9001", webhook_secret=BANK_SECRET
        ),
        "hnbank": BankSettings(protocol="vietqr", url="http://hn.internal:9002"),
    }
    values: dict[str, Any] = {"env": "dev", "banks": banks, **SECRETS}
    return Settings(**values)


@pytest.fixture(scope="module")
def app() -> web.Application:
    return create_app(_settings(), verifier=ReceiptSigner.generate().verifier())


def test_every_api_route_is_described_and_nothing_else(app: web.Application) -> None:
    registered = registered_operations(app)
    described = described_operations(app[DOCUMENT])
    assert len(registered) >= 50
    assert registered - described == set(), "routes without a description in the document"
    assert described - registered == set(), "the document describes routes that do not exist"


def test_a_route_added_without_a_description_is_caught(app: web.Application) -> None:
    later = create_app(_settings(), verifier=ReceiptSigner.generate().verifier())

    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    later.router.add_get("/api/v1/something-new", handler)
    missing = registered_operations(later) - described_operations(later[DOCUMENT])
    assert missing == {("GET", "/api/v1/something-new")}


def test_the_document_is_valid_openapi_3_1(app: web.Application) -> None:
    document = app[DOCUMENT]
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_document_names_no_secret_nor_bank_address(app: web.Application) -> None:
    text = json.dumps(app[DOCUMENT], ensure_ascii=False)
    for secret in (*SECRETS.values(), BANK_SECRET, "db-password", "sg.internal", "hn.internal"):
        assert secret not in text


def test_every_operation_but_the_login_needs_a_token_and_documents_its_errors() -> None:
    document = build_document(_settings())
    assert document["security"] == [{"bearerAuth": []}]
    for route, item in document["paths"].items():
        for method, op in item.items():
            answers = op["responses"]
            assert {"400", "503"} <= set(answers), (method, route)
            if route == "/api/v1/auth/login":
                assert op["security"] == []
            else:
                assert "security" not in op, (method, route)
                assert {"401", "403"} <= set(answers), (method, route)
            if any(p["in"] == "path" for p in op["parameters"]):
                assert "404" in answers, (method, route)


def test_bounds_and_enums_are_the_parsers() -> None:
    document = build_document(_settings())
    params = {
        p["name"]: p["schema"] for p in document["paths"]["/api/v1/payments"]["get"]["parameters"]
    }
    assert params["limit"]["maximum"] == LISTING_LIMIT_MAX
    assert params["bank"] == {"enum": ["hnbank", "sgbank"]}
    body = document["paths"]["/api/v1/fines"]["post"]["requestBody"]
    amount = body["content"]["application/json"]["schema"]["properties"]["amount_vnd"]
    assert amount["maximum"] == _settings().max_amount_vnd
