"""Order tokens: the secret that opens an order, given to the customer once and stored only as its SHA-256.

A token is 32 random bytes (URL-safe base64, 43 characters), so a plain SHA-256 is enough to keep
it from being read back out of the database; a request's token is compared with the stored hash in
constant time. For a retried order request (the same ``Idempotency-Key`` from the same client), the
token is kept sealed beside the key until the key expires: XORed with a keystream that only the app's
secret key, the idempotency key and the client together give (:func:`seal`, :func:`unseal`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh order token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def matches(stored_hash: str, token: str) -> bool:
    """Whether ``token`` is the one whose hash is stored (constant time)."""
    return hmac.compare_digest(stored_hash.encode("ascii"), token_hash(token).encode("ascii"))


def _keystream(secret: bytes, key: str, client: str, order_id: str, length: int) -> bytes:
    message = "\0".join(("order token", key, client, order_id)).encode("utf-8", "replace")
    stream = hmac.new(secret, message, hashlib.sha512).digest()
    if length > len(stream):
        raise ValueError("an order token is longer than its keystream")
    return stream[:length]


def seal(token: str, secret: bytes, key: str, client: str, order_id: str) -> str:
    """The token sealed for replays of ``key`` by ``client`` (hex)."""
    raw = token.encode("ascii")
    return bytes(a ^ b for a, b in zip(raw, _keystream(secret, key, client, order_id, len(raw)), strict=True)).hex()


def unseal(sealed: str, secret: bytes, key: str, client: str, order_id: str, stored_hash: str) -> str | None:
    """The token back from :func:`seal`, or ``None`` when it does not open the order (another key or secret)."""
    try:
        raw = bytes.fromhex(sealed)
        token = bytes(a ^ b for a, b in zip(raw, _keystream(secret, key, client, order_id, len(raw)),
                                            strict=True)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return token if matches(stored_hash, token) else None
