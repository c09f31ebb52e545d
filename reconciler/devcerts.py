"""A private CA and the certificates of the compose stack's mutual TLS to
Temporal (``reconciler certs init``), made with the ``cryptography`` package.

Layout (one directory per process, each with a copy of the CA certificate,
so each container mounts exactly its own)::

    DIR/                      mode 0700: other users of the host see nothing
    DIR/ca/ca.pem             the CA certificate
    DIR/ca/ca-key.pem         the CA key (0600; never mounted anywhere)
    DIR/temporal/             server: cert.pem, key.pem, ca.pem (serverAuth +
                              clientAuth: Temporal's services also call each other)
    DIR/app/                  client: api, worker, prober (clientAuth)
    DIR/temporal-ui/          client: the web UI (clientAuth)

Leaf keys are 0644 inside their 0755 directories because each container
runs as its own user (temporal, the UI, our app user): the mount, not the
file mode, decides who reads a key, and the 0700 top directory keeps the
host's other users out. Keys are ECDSA P-256, which Go's TLS (Temporal, its
UI) and rustls (the Temporal SDK's core) both accept.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME_DEFAULT: Final = "temporal"
LEAF_DAYS_DEFAULT: Final = 365
CA_DAYS: Final = 5 * 365
CLIENTS: Final = ("app", "temporal-ui")


class CertsExistError(Exception):
    """The directory already has certificates (``--force`` replaces them)."""


@dataclass(frozen=True)
class Issued:
    directory: Path
    server_name: str
    not_after: datetime.datetime


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fine-reconciler dev CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _signing_only(*, certificates: bool) -> x509.KeyUsage:
    """Signatures only (ECDSA keys encipher nothing); a CA also signs
    certificates and revocation lists."""
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=certificates,
        crl_sign=certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _ca(now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = _name("fine-reconciler dev CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_signing_only(certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    names: list[x509.GeneralName],
    usages: list[x509.ObjectIdentifier],
    not_after: datetime.datetime,
    now: datetime.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_only(certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.chmod(mode)
    tmp.replace(path)


def init_certs(
    directory: Path,
    *,
    server_name: str = SERVER_NAME_DEFAULT,
    days: int = LEAF_DAYS_DEFAULT,
    force: bool = False,
    now: datetime.datetime | None = None,
) -> Issued:
    """Make the CA, the server's and each client's certificate in ``directory``."""
    if not 1 <= days <= CA_DAYS:
        raise ValueError(f"certificates last 1..{CA_DAYS} days")
    if (directory / "ca" / "ca.pem").exists() and not force:
        raise CertsExistError(f"{directory} already has a CA (--force makes new ones)")
    now = now or datetime.datetime.now(datetime.UTC)
    not_after = now + datetime.timedelta(days=days)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca, ca_key = _ca(now)
    (directory / "ca").mkdir(mode=0o700, exist_ok=True)
    _write(directory / "ca" / "ca-key.pem", _key_pem(ca_key), 0o600)
    _write(directory / "ca" / "ca.pem", _pem(ca), 0o644)
    server_names: list[x509.GeneralName] = [
        x509.DNSName(server_name),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    leaves = {"temporal": _leaf(ca, ca_key, server_name, server_names, both, not_after, now)}
    for client in CLIENTS:
        names: list[x509.GeneralName] = [x509.DNSName(client)]
        usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
        leaves[client] = _leaf(ca, ca_key, client, names, usage, not_after, now)
    for name, (cert, key) in leaves.items():
        leaf_dir = directory / name
        leaf_dir.mkdir(exist_ok=True)
        leaf_dir.chmod(0o755)
        _write(leaf_dir / "key.pem", _key_pem(key), 0o644)
        _write(leaf_dir / "cert.pem", _pem(cert), 0o644)
        _write(leaf_dir / "ca.pem", _pem(ca), 0o644)
    return Issued(directory, server_name, not_after)
