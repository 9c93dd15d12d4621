"""Ed25519 signatures of webhook requests, as Telnyx signs them.

"The signature for the payload is calculated by building a string that is the combination of the
timestamp ..., the pipe `|` character and the JSON payload", base64, in `telnyx-signature-ed25519`,
with the timestamp (Unix seconds) in `telnyx-timestamp`
(https://developers.telnyx.com/development/api-fundamentals/webhooks/receiving-webhooks). The public key
is base64 of its 32 raw bytes: what the official SDK takes as TELNYX_PUBLIC_KEY or `key=`.

The private key lives in the database (store/webhook_keys.py) and in a Signer; neither a Signer's repr
nor anything this module returns or logs contains it.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trunkline.store import webhook_keys
from trunkline.store.db import Conn

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"

_RAW = serialization.Encoding.Raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def generate() -> tuple[str, str]:
    """A new key pair: (public, private), each base64 of its 32 raw bytes."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return _b64(key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)), _b64(private)


class Signer:
    """Signs request bodies with the server's private key."""

    __slots__ = ("_key", "public_key")

    def __init__(self, private_key_b64: str) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key_b64, validate=True))
        self.public_key = _b64(self._key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw))

    def __repr__(self) -> str:
        return f"Signer(public_key={self.public_key!r})"

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        """The two signature headers of a request carrying exactly `body`, sent at `timestamp`."""
        signature = self._key.sign(str(timestamp).encode("ascii") + b"|" + body)
        return {SIGNATURE_HEADER: _b64(signature), TIMESTAMP_HEADER: str(timestamp)}


async def server_signer(conn: Conn) -> Signer:
    """The signer of the server's key pair, generating and storing the pair on first use."""
    public, private = generate()
    _, stored = await webhook_keys.keep_first(conn, public_key=public, private_key=private)
    return Signer(stored)


async def server_public_key(conn: Conn) -> str:
    """The server's public key (base64), generating the pair on first use."""
    return (await server_signer(conn)).public_key
