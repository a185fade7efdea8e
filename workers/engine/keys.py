"""The master key, the repository keys it wraps, and the object-id functions they key.

`ZDM_MASTER_KEY` holds 32 random bytes, written as 64 hexadecimal characters or as base64 (standard
or URL-safe alphabet). Generate one with `python -m workers.engine generate-key` (or
`openssl rand -hex 32`). The master key never touches the repository: it only wraps (AES-256-GCM)
the repository's own random data key and id key, stored in the repository's `keys` file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from workers.engine.errors import KeyInvalid, KeyMissing
from workers.engine.settings import MASTER_KEY_ENV, master_key_text

KEY_BYTES = 32
_WRAP_AAD = b"zdm-repository-keys-v1:"


def generate_master_key() -> str:
    """A new master key in the hex form `ZDM_MASTER_KEY` accepts."""
    return secrets.token_hex(KEY_BYTES)


def parse_master_key(value: str | bytes) -> bytes:
    """Turn the textual (hex or base64) or raw 32-byte form of a master key into its 32 bytes."""
    if isinstance(value, bytes) and len(value) == KEY_BYTES:
        return value
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    text = text.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == KEY_BYTES:
        return raw
    raise KeyInvalid(
        f"The master key must be 32 bytes written as 64 hex characters or base64 "
        f"(check {MASTER_KEY_ENV})."
    )


def resolve_master_key(master_key: str | bytes | None) -> bytes | None:
    """The explicit key if given, else the one in `ZDM_MASTER_KEY`, else None."""
    if master_key is None:
        master_key = master_key_text()
    return None if master_key is None else parse_master_key(master_key)


def configured_key_fingerprint(master_key: str | bytes | None = None) -> str | None:
    """The fingerprint (`master_key_fingerprint`) of the master key in `ZDM_MASTER_KEY`, or of
    the one given: what an agent reports, never the key. None when there is no key;
    `KeyInvalid` when it is malformed."""
    key = resolve_master_key(master_key)
    return None if key is None else master_key_fingerprint(key)


@dataclass(frozen=True)
class RepositoryKeys:
    """The keys that encrypt objects (`data_key`) and name them (`id_key`)."""

    data_key: bytes
    id_key: bytes

    @classmethod
    def generate(cls) -> RepositoryKeys:
        return cls(secrets.token_bytes(KEY_BYTES), secrets.token_bytes(KEY_BYTES))


def wrap_keys(master: bytes, keys: RepositoryKeys, repository_id: str) -> dict:
    """The `keys` file record: both keys sealed with AES-256-GCM under the master key."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(12)
    sealed = AESGCM(master).encrypt(
        nonce, keys.data_key + keys.id_key, _WRAP_AAD + repository_id.encode()
    )
    return {
        "format": 1,
        "cipher": "aes-256-gcm",
        "nonce": base64.b64encode(nonce).decode(),
        "sealed": base64.b64encode(sealed).decode(),
        "master_key_check": master_key_fingerprint(master),
    }


def unwrap_keys(master: bytes | None, record: dict, repository_id: str) -> RepositoryKeys:
    """Open the `keys` record; a missing or wrong master key is a clear error."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if master is None:
        raise KeyMissing(
            f"This repository holds encrypted data and no master key was given "
            f"(set {MASTER_KEY_ENV})."
        )
    try:
        plain = AESGCM(master).decrypt(
            base64.b64decode(record["nonce"]),
            base64.b64decode(record["sealed"]),
            _WRAP_AAD + repository_id.encode(),
        )
    except InvalidTag:
        raise KeyInvalid(
            f"The master key does not open this repository's data key (wrong {MASTER_KEY_ENV})."
        ) from None
    return RepositoryKeys(plain[:KEY_BYTES], plain[KEY_BYTES:])


def master_key_fingerprint(master: bytes) -> str:
    """A short public fingerprint that tells which master key wraps a repository."""
    return hmac.new(master, b"zdm-master-key-fingerprint", hashlib.sha256).hexdigest()[:16]
