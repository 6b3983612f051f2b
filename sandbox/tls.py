"""The Salesforce emulator's self-signed TLS certificate.

simple-salesforce always speaks `https://`, so the emulator needs a certificate that clients
can trust with `verify=<dir>/salesforce-cert.pem`. It is its own CA (BasicConstraints CA=True)
and carries Key Usage, Subject/Authority Key Identifiers and serverAuth: without those,
OpenSSL's verification of a self-signed server certificate was seen to fail. Names: localhost,
127.0.0.1 and ::1, plus any extra names asked for (e.g. a compose service name). An existing
certificate is reused while it covers the names and has more than 30 days left.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .files import write_atomic

CERT_FILE = "salesforce-cert.pem"
KEY_FILE = "salesforce-key.pem"
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARDS = {"", "0.0.0.0", "::"}
_VALIDITY = timedelta(days=3650)


def ensure_certificate(directory: Path, extra_names: Iterable[str] = ()) -> tuple[Path, Path]:
    """Return (certificate, key) paths in `directory`, generating them when needed."""
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    names = [*DEFAULT_NAMES, *(n for n in extra_names if n not in _WILDCARDS)]
    wanted = [_general_name(name) for name in dict.fromkeys(names)]
    if not (key_path.exists() and _usable(cert_path, wanted)):
        _generate(cert_path, key_path, wanted)
    return cert_path, key_path


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _usable(cert_path: Path, wanted: list[x509.GeneralName]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    fresh = cert.not_valid_after_utc - datetime.now(UTC) > timedelta(days=30)
    return fresh and all(name in san for name in wanted)


def _generate(cert_path: Path, key_path: Path, names: list[x509.GeneralName]) -> None:
    # P-256 rather than RSA: generating it is instant, which keeps per-test sandboxes fast.
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fulfillment sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Salesforce emulator"),
        ]
    )
    # Self-signed: the subject is its own issuer, and the certificate its own CA.
    now = datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    _write(cert_path, key_path, cert, key)


def _write(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(key_path, key_pem, private=True)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
