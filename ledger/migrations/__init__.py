"""Alembic migrations of the ledger schema, run programmatically (no ini file).

They run as the database owner; the app connects as its own role (revision
0011), whose name the caller gives (``app_role``) and whose password
``set_role_password`` sets without the password itself ever reaching the
server (a SCRAM verifier is sent instead, so no server log can show it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config

_HERE = Path(__file__).parent
DEFAULT_APP_ROLE: Final = "reconciler_app"
ROLE_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SCRAM_ITERATIONS: Final = 4096
# SASLprep leaves printable ASCII as it is: the verifier we compute is then
# the one the server computes from the same password.
_PRINTABLE_ASCII: Final = re.compile(r"^[\x20-\x7e]{1,1000}$")


def alembic_config(database_url: str, app_role: str = DEFAULT_APP_ROLE) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["app_role"] = app_role
    return cfg


def upgrade_to_head(database_url: str, app_role: str = DEFAULT_APP_ROLE) -> None:
    """Migrate the database at ``database_url`` (sync psycopg URL, the
    owner's) to head; the app's role is ``app_role``."""
    if not ROLE_NAME.fullmatch(app_role):
        raise ValueError(f"app role {app_role!r} is not a plain lower-case name")
    command.upgrade(alembic_config(database_url, app_role), "head")


def scram_sha256_verifier(password: str, salt: bytes | None = None) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677)."""
    if not _PRINTABLE_ASCII.fullmatch(password):
        raise ValueError("the database password must be printable ASCII, 1 to 1000 characters")
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def set_role_password(database_url: str, role: str, password: str) -> None:
    """Give the app's role its password (as the owner, after migrating)."""
    from sqlalchemy import create_engine

    if not ROLE_NAME.fullmatch(role):
        raise ValueError(f"app role {role!r} is not a plain lower-case name")
    verifier = scram_sha256_verifier(password)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            # Neither a name nor a password can be a bind parameter here; the
            # name is checked above and the verifier is base64, '$' and ':'.
            conn.exec_driver_sql(f"ALTER ROLE {role} PASSWORD '{verifier}'")
    finally:
        engine.dispose()


def current_revision(database_url: str) -> str | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
            return None if row is None else str(row[0])
    finally:
        engine.dispose()
