"""The OpenAPI document is true of the live API: schemathesis generates
requests for every operation it describes, from its own parameter and body
schemas, and sends them with the admin token to the shared dev stack (the
real API processes, PostgreSQL, Temporal, worker and bank simulators).
Every answer must be no 5xx, carry a status the document lists for that
operation, and match the documented schema of its body (success or error)
and its content type.

Bounded: ``EXAMPLES`` requests per operation, derandomized so a failure
replays exactly. Measured on the 2-core machine: 6 examples took 11-21 s,
and 34 s while other suites ran; 4 take 10.5 s. (Runs of 40 examples per
operation, and of 25 negative ones, found no 5xx.)
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Final

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES: Final = 4
CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations left out, and why. Everything else is exercised.
EXCLUDED: Final[dict[tuple[str, str], str]] = {
    ("POST", "/api/v1/fines/{decision_number}/payments"): (
        "starts a real payment: the sandbox bank debits an account and the saga "
        "runs on; payments are driven by tests/integration/payments and the "
        "browser test's seed story instead"
    ),
    ("POST", "/api/v1/auth/logout"): "revokes the very token this run uses",
    ("DELETE", "/api/v1/tokens/{token_id}"): (
        "token ids are small numbers: a generated one would revoke this run's token"
    ),
    ("POST", "/api/v1/auth/login"): (
        "generated wrong passwords from 127.0.0.1 would trip the login throttle "
        "(30 failures per address) for the browser tests' logins; covered by "
        "tests/integration/identity"
    ),
    ("POST", "/api/v1/auth/password"): (
        "generated wrong current passwords would lock demo-admin's account "
        "(10 failures); covered by tests/integration/identity"
    ),
}


def _document(info: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        info["api_url"] + "/api/v1/openapi.json",
        headers={"Authorization": f"Bearer {info['api_token']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
        document: dict[str, Any] = json.loads(resp.read())
    return document


def test_the_document_needs_a_token(dev_stack: dict[str, Any]) -> None:
    answer = requests.get(dev_stack["api_url"] + "/api/v1/openapi.json", timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


def test_the_live_api_answers_as_its_openapi_document_says(dev_stack: dict[str, Any]) -> None:
    document = _document(dev_stack)
    schema = schemathesis.openapi.from_dict(document)
    headers = {"Authorization": f"Bearer {dev_stack['api_token']}"}
    base_url = dev_stack["api_url"]
    operations = [result.ok() for result in schema.get_all_operations()]
    seen = {(op.method.upper(), op.path) for op in operations}
    assert set(EXCLUDED) <= seen, "an exclusion names an operation that is gone"
    exercised = [op for op in operations if (op.method.upper(), op.path) not in EXCLUDED]
    assert len(exercised) >= 45
    failures: list[str] = []
    with requests.Session() as session:
        for operation in exercised:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(
                    base_url=base_url, session=session, headers=headers, checks=CHECKS
                )

            try:
                run()
            except Exception as err:  # every operation runs; failures reported together
                failures.append(f"{operation.method.upper()} {operation.path}: {err}")
    if failures:
        pytest.fail("\n\n".join(failures))
