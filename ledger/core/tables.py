"""SQLAlchemy Core descriptions of the ledger tables.

The schema itself is owned by the Alembic migrations in ``ledger/migrations``
(raw SQL, with the triggers that enforce the invariants); these objects only
describe it to query builders. Keep the two in step.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

account_balance_shards = Table(
    "account_balance_shards",
    metadata,
    Column("account_id", BigInteger, ForeignKey("accounts.id"), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("balance_vnd", BigInteger, nullable=False),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("reverses_entry_id", BigInteger, ForeignKey("journal_entries.id")),
    Column("metadata", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

postings = Table(
    "postings",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("entry_id", BigInteger, ForeignKey("journal_entries.id"), nullable=False),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("amount_vnd", BigInteger, nullable=False),
)

fines = Table(
    "fines",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("decision_number", Text, nullable=False),
    Column("decision_key", Text, nullable=False, unique=True),
    Column("amount_vnd", BigInteger, nullable=False),
    Column("violator_name", Text, nullable=False),
    Column("plate", Text, nullable=False),
    Column("issuing_unit", Text, nullable=False),
    Column("violation", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # --- 0014: search keys (generated: never written) and amend/cancel
    Column("plate_key", Text),
    Column("name_key", Text),
    Column("due_date", Date),
    Column("amended_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancelled_by", Text),
    Column("cancel_reason", Text),
)

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("full_name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
    # --- 0008: unit scope, lock-out, who set the password
    Column("units", ARRAY(Text), nullable=False),
    Column("failed_logins", Integer, nullable=False),
    Column("failed_since", DateTime(timezone=True)),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_login_at", DateTime(timezone=True)),
    Column("created_by", Text),
    Column("password_set_at", DateTime(timezone=True)),
    Column("password_set_by", Text),
)

# --- 0008: service accounts, owned and expiring tokens, console sessions ----

service_accounts = Table(
    "service_accounts",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("role", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
)

# Owned by exactly one of a user or a service account; the role is the owner's.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("user_id", BigInteger, ForeignKey("users.id")),
    Column("service_account_id", BigInteger, ForeignKey("service_accounts.id")),
    Column("kind", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_by", Text),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("id_hash", Text, nullable=False, unique=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("csrf_secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("idle_timeout_seconds", Integer, nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("client", Text, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("fine_id", BigInteger, ForeignKey("fines.id"), nullable=False),
    Column("bank", Text, nullable=False),
    Column("payer_account", Text, nullable=False),
    Column("amount_vnd", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("debit_key", Text, nullable=False, unique=True),
    Column("settles_fine", Boolean, nullable=False),
    Column("channel", Text, nullable=False),
    Column("bank_ref", Text),
    Column("decline_reason", Text),
    Column("workflow_id", Text),
    Column("debited_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

api_idempotency_keys = Table(
    "api_idempotency_keys",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("client_key", Text, primary_key=True),
    Column("request_hash", Text, nullable=False),
    Column("payment_id", Uuid, ForeignKey("payments.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

payment_events = Table(
    "payment_events",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("payment_id", Uuid, ForeignKey("payments.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("cause", Text, nullable=False),
    Column("detail", JSONB, nullable=False),
)

receipt_series = Table(
    "receipt_series",
    metadata,
    Column("series", Text, primary_key=True),
    Column("issuing_unit", Text, nullable=False),
    Column("year", Integer, nullable=False),
    Column("last_number", Integer, nullable=False),
)

receipts = Table(
    "receipts",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("payment_id", Uuid, ForeignKey("payments.id"), nullable=False, unique=True),
    Column("series", Text, ForeignKey("receipt_series.series"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("payload_canonical", Text, nullable=False),
    Column("signature", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("copies", Integer, nullable=False),
    Column("last_copy_at", DateTime(timezone=True)),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("dedupe_key", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("last_error", Text),
)

# At most one open outage per bank (a partial unique index); the duration is
# a generated column.
bank_outages = Table(
    "bank_outages",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("bank", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("cause", Text, nullable=False),
    Column("duration_seconds", Float),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Verified bank webhooks, once per event (migration 0009; append-only).
bank_events = Table(
    "bank_events",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("bank", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("bank_ref", Text),
    Column("status", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("amount_vnd", BigInteger, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

webhook_nonces = Table(
    "webhook_nonces",
    metadata,
    Column("bank", Text, primary_key=True),
    Column("nonce", Text, primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# --- audit log, approvals, disputes (0006) ----------------------------------

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("subject_type", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("detail", JSONB, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("singleton", Boolean, primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("last_hash", Text, nullable=False),
)

# A keyed MAC over the chain's head, now and then (0011, ledger.core.audit_anchor).
audit_anchors = Table(
    "audit_anchors",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("row_id", BigInteger, nullable=False),
    Column("row_hash", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("mac", Text, nullable=False),
    Column("anchored_at", DateTime(timezone=True), nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("subject_type", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("decision_reason", Text),
    Column("executed_at", DateTime(timezone=True)),
    Column("result", JSONB),
    Column("workflow_id", Text),
)

disputes = Table(
    "disputes",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("fine_id", BigInteger, ForeignKey("fines.id"), nullable=False),
    Column("bank", Text, nullable=False),
    Column("amount_vnd", BigInteger, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("bank_ref", Text),
    Column("payer_account", Text),
    Column("description", Text, nullable=False),
    Column("contact_phone", Text),  # 0017
    Column("contact_email", Text),  # 0017
    Column("status", Text, nullable=False),
    Column("opened_by", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("approval_id", BigInteger, ForeignKey("approvals.id")),
    Column("resolution", Text),
    Column("resolution_reason", Text),
    Column("resolved_by", Text),
    Column("resolved_at", DateTime(timezone=True)),
    Column("payment_id", Uuid, ForeignKey("payments.id")),
    Column("result", JSONB),
)

# What was last gathered from the bank about a dispute (migration 0009).
dispute_evidence = Table(
    "dispute_evidence",
    metadata,
    Column("dispute_id", BigInteger, ForeignKey("disputes.id"), primary_key=True),
    Column("gathered_at", DateTime(timezone=True), nullable=False),
    Column("gathered_by", Text, nullable=False),
    Column("bank_reachable", Boolean),
    Column("bank_note", Text, nullable=False),
    Column("checks", JSONB, nullable=False),
    Column("debit", JSONB),
)

# --- reconciliation (0005) ---------------------------------------------------
# 0005 also adds generated, indexed match keys to two tables above, left out
# of their descriptions here because nothing writes them:
# payments.payment_ref (our VietQR reference of debit_key) and
# fines.decision_alnum (the decision number in upper-case letters and digits).

statement_imports = Table(
    "statement_imports",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("bank", Text, nullable=False),
    Column("statement_date", Date, nullable=False),
    Column("source", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("content_sha256", Text, nullable=False),
    Column("data", LargeBinary),
    Column("size_bytes", BigInteger, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("new_lines", Integer, nullable=False),
    Column("uploaded_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("loaded_at", DateTime(timezone=True)),
)

reconciliations = Table(
    "reconciliations",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("bank", Text, nullable=False),
    Column("statement_date", Date, nullable=False),
    Column("source", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("workflow_id", Text),
    Column("workflow_run_id", Text, unique=True),
    Column("import_id", BigInteger, ForeignKey("statement_imports.id")),
    Column("status", Text, nullable=False),
    *(
        Column(name, Integer, nullable=False)
        for name in (
            "lines",
            "new_lines",
            "matched",
            "healed",
            "duplicates",
            "amount_mismatches",
            "unknown",
            "missing_at_bank",
            "in_doubt_too_long",
            "discrepancies",
            "discrepancies_open",
            "actions_pending",
        )
    ),
    Column("credit_total_vnd", BigInteger, nullable=False),
    Column("debit_total_vnd", BigInteger, nullable=False),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    # Uploaded lines waiting for the bank's word (migration 0009).
    Column("unconfirmed", Integer, nullable=False),
)

statement_lines = Table(
    "statement_lines",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("import_id", BigInteger, nullable=False),
    Column("reconciliation_id", BigInteger, nullable=False),
    Column("bank", Text, nullable=False),
    Column("bank_ref", Text, nullable=False),
    Column("statement_date", Date, nullable=False),
    Column("booked_at", DateTime(timezone=True), nullable=False),
    Column("amount_vnd", BigInteger, nullable=False),
    Column("direction", Text, nullable=False),
    Column("counterparty", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("content_key", Text, nullable=False),
    Column("content_ref", Text),
    Column("end_to_end_ref", Text),
    Column("raw", Text, nullable=False),
    Column("source_line", Integer, nullable=False),
    Column("rule", Text),
    Column("payment_id", Uuid),
    Column("fine_id", BigInteger),
    Column("class", Text, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("in_suspense", Boolean, nullable=False),
    Column("suspense_entry_id", BigInteger),
    Column("action", Text),
    Column("action_done_at", DateTime(timezone=True)),
    Column("action_attempts", Integer, nullable=False),
    Column("action_error", Text),
    # From a file a person uploaded: a claim, never acted on (migration 0009).
    Column("uploaded", Boolean, nullable=False),
)

recon_match_rules = Table(
    "recon_match_rules",
    metadata,
    Column("bank", Text, primary_key=True),
    Column("rule", Text, primary_key=True),
    Column("priority", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("amount_tolerance_vnd", BigInteger, nullable=False),
    Column("truncated_chars_min", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

discrepancies = Table(
    "discrepancies",
    metadata,
    Column("id", BigInteger, primary_key=True),
    # NULL: opened by the payment saga, not a run (migration 0007).
    Column("reconciliation_id", BigInteger, ForeignKey("reconciliations.id")),
    Column("bank", Text, nullable=False),
    Column("statement_date", Date, nullable=False),
    Column("kind", Text, nullable=False),
    Column("statement_line_id", BigInteger, ForeignKey("statement_lines.id")),
    Column("payment_id", Uuid, ForeignKey("payments.id")),
    Column("fine_id", BigInteger, ForeignKey("fines.id")),
    Column("amount_vnd", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("detail", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", Text),
    Column("resolution", Text),
)
