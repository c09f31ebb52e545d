"""The dev CA and certificates of ``reconciler certs init``: they verify
against each other, a real TLS handshake that requires client certificates
accepts ours and refuses anyone else, and the app's Temporal TLS settings
become the client's TLS config."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from temporalio.service import TLSConfig

from reconciler.cli.main import main
from reconciler.devcerts import init_certs
from reconciler.settings import Settings
from reconciler.wiring import TemporalTLSError, temporal_tls


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tls") / "certs"
    result = CliRunner().invoke(main, ["certs", "init", "--out", str(directory)])
    assert result.exit_code == 0, result.output
    return directory


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_each_certificate_is_issued_by_the_ca_and_matches_its_key(certs: Path) -> None:
    ca = _cert(certs / "ca" / "ca.pem")
    for leaf in ("temporal", "app", "temporal-ui"):
        cert = _cert(certs / leaf / "cert.pem")
        cert.verify_directly_issued_by(ca)
        key = serialization.load_pem_private_key((certs / leaf / "key.pem").read_bytes(), None)
        assert key.public_key() == cert.public_key()
        assert (certs / leaf / "ca.pem").read_bytes() == (certs / "ca" / "ca.pem").read_bytes()
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_names_and_uses(certs: Path) -> None:
    server = _cert(certs / "temporal" / "cert.pem")
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "temporal" in names.get_values_for_type(x509.DNSName)
    usages = set(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    # Temporal's own services present the server certificate to each other.
    assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    for client in ("app", "temporal-ui"):
        eku = _cert(certs / client / "cert.pem").extensions.get_extension_for_class(
            x509.ExtendedKeyUsage
        )
        assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_only_the_directory_owner_reaches_the_ca_key(certs: Path) -> None:
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700
    assert stat.S_IMODE((certs / "ca" / "ca-key.pem").stat().st_mode) == 0o600


def test_init_refuses_to_replace_a_ca_unless_forced(certs: Path) -> None:
    again = CliRunner().invoke(main, ["certs", "init", "--out", str(certs)])
    assert again.exit_code == 1
    assert "already has a CA" in again.output


@pytest.fixture(scope="module")
def mtls_server(certs: Path) -> Iterator[tuple[int, list[str]]]:
    """A TLS server that, like Temporal's frontend, requires a client
    certificate from the CA; records each handshake's outcome."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "temporal" / "cert.pem", certs / "temporal" / "key.pem")
    context.load_verify_locations(certs / "ca" / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    outcomes: list[str] = []

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    outcomes.append(conn.getpeercert()["subject"][-1][0][1])
                    conn.sendall(b"ok")
            except (ssl.SSLError, OSError) as err:
                outcomes.append(f"refused: {type(err).__name__}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], outcomes
    listener.close()


def _handshake(port: int, ca: Path, cert: tuple[Path, Path] | None) -> bytes:
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(*cert)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="temporal") as conn,
    ):
        return conn.recv(2)


def test_mutual_tls_accepts_the_app_and_refuses_strangers(
    certs: Path, mtls_server: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, outcomes = mtls_server
    ca = certs / "ca" / "ca.pem"
    app = (certs / "app" / "cert.pem", certs / "app" / "key.pem")
    assert _handshake(port, ca, app) == b"ok"
    # No client certificate; one from another CA.
    init_certs(tmp_path / "other")
    other = (tmp_path / "other" / "app" / "cert.pem", tmp_path / "other" / "app" / "key.pem")
    for cert in (None, other):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            assert _handshake(port, ca, cert) != b"ok"
    # And the server must prove itself to the app: another CA's server is refused.
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(port, tmp_path / "other" / "ca" / "ca.pem", app)
    assert outcomes[0] == "app"
    assert all(outcome.startswith("refused") for outcome in outcomes[1:])


def test_the_apps_temporal_client_uses_the_tls_settings(certs: Path) -> None:
    settings = Settings(
        env="dev",
        temporal_tls_ca_path=certs / "app" / "ca.pem",
        temporal_tls_cert_path=certs / "app" / "cert.pem",
        temporal_tls_key_path=certs / "app" / "key.pem",
        temporal_tls_server_name="temporal",
    )
    tls = temporal_tls(settings)
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == (certs / "ca" / "ca.pem").read_bytes()
    assert tls.client_cert == (certs / "app" / "cert.pem").read_bytes()
    assert tls.client_private_key == (certs / "app" / "key.pem").read_bytes()
    assert tls.domain == "temporal"
    assert temporal_tls(Settings(env="dev")) is False


def test_unusable_tls_files_are_named(certs: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.pem").write_text("")
    settings = Settings(
        env="dev",
        temporal_tls_ca_path=certs / "app" / "ca.pem",
        temporal_tls_cert_path=tmp_path / "missing.pem",
        temporal_tls_key_path=tmp_path / "empty.pem",
    )
    with pytest.raises(TemporalTLSError, match="RECONCILER_TEMPORAL_TLS_CERT_PATH"):
        temporal_tls(settings)
