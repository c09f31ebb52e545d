"""The link-recovery event sent by hand is a person's act on money (what
the bank confirms is settled and receipted in bulk): it is audited with
who sent it."""

from __future__ import annotations

from tests.support.db import rows
from tests.support.stack import SagaStack


async def test_a_manual_link_recovery_names_who_sent_it(stack: SagaStack) -> None:
    status, body = await stack.call("POST", "/api/v1/banks/sgbank/link-recovered")
    assert status in (200, 202), body
    trail = await rows(
        stack.engine,
        "SELECT actor, subject_id, detail->>'workflow_id' AS workflow_id FROM audit_log"
        " WHERE action = 'bank.link_recovery_requested'",
    )
    assert [tuple(r) for r in trail] == [("test-admin", "sgbank", body["recovery_workflow_id"])]
