"""The TLS listener's certificate when the operator gives none: a self-signed one, made once.

Phones and PBXs that call a trunk over TLS usually skip verification or pin the certificate they
were shown, so a stable self-signed certificate is enough to start with; an operator who wants a
CA-signed one sets TRUNKLINE_SIP_TLS_CERT and TRUNKLINE_SIP_TLS_KEY (docs/sip.md). The key is an ECDSA
P-256 key (RFC 8422), written with mode 0600 before any byte of it is, and never logged.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger("trunkline.sip")

VALID_DAYS = 3650


def ensure_self_signed(cert: Path, key: Path, *, host: str, realm: str) -> bool:
    """Make `cert` and `key` unless both exist; True when they were made."""
    if cert.exists() and key.exists():
        return False
    cert.parent.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(realm)]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, realm)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, realm)]))
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    pem_key = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(key, pem_key)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    log.warning(
        "sip edge: no TLS certificate given (TRUNKLINE_SIP_TLS_CERT, TRUNKLINE_SIP_TLS_KEY): made a "
        "self-signed one for %s at %s (SHA-256 fingerprint %s)",
        realm,
        cert,
        certificate.fingerprint(hashes.SHA256()).hex(":"),
    )
    return True


def _write_private(path: Path, data: bytes) -> None:
    candidate = path.with_name(f".{path.name}.new")
    candidate.unlink(missing_ok=True)
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(candidate, path)
