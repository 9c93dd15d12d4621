"""sip.certs: the self-signed certificate of the edge's TLS listener, made once, its key private."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from cryptography import x509

from trunkline.sip import certs


def test_made_once_with_the_realm_and_address_and_a_private_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = tmp_path / "tls" / "edge.crt", tmp_path / "tls" / "edge.key"
    with caplog.at_level(logging.WARNING, logger="trunkline.sip"):
        assert certs.ensure_self_signed(cert, key, host="192.0.2.10", realm="sip.example.net")
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["sip.example.net"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["192.0.2.10"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "self-signed" in caplog.text and str(cert) in caplog.text
    assert key.read_text().splitlines()[1] not in caplog.text
    first = cert.read_bytes()
    assert not certs.ensure_self_signed(cert, key, host="192.0.2.10", realm="sip.example.net")
    assert cert.read_bytes() == first
