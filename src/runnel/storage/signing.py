"""Signing what runnel reads back from disk: HMAC-SHA256 with a key from the environment.

Checkpoints hold pickles (the stored program, object columns of state
tables) and the write-ahead log holds received data that may have object
columns too; reading either back can run code. Whoever can write the
checkpoint directory can therefore run code as the user — unless the files
are signed. With a key in the environment variable :data:`KEY_ENV`
(``RUNNEL_CHECKPOINT_KEY``), every checkpoint file and every log entry is
written with an HMAC-SHA256 of its bytes, and checked *before* anything in
it is unpickled or decoded: a missing or wrong signature is a
:class:`SignatureError` naming the file.

Why the environment and not a conf key: ``get_or_create`` reads the
checkpoint before any context exists (the conf stored in it cannot vouch for
itself), and a conf key would be written into every manifest in plain text.
One source means the writer and every reader agree. Without a key nothing
is signed or checked (CRC-32 still catches damage, not tampering).

Each kind of signed thing starts its MAC with its own label, so a signature
made for one (a log entry) is never valid for another (a checkpoint file).
"""

from __future__ import annotations

import hashlib
import hmac
import os

__all__ = ["KEY_ENV", "SignatureError", "key_from_env", "mac", "check"]

KEY_ENV = "RUNNEL_CHECKPOINT_KEY"
MAC_BYTES = hashlib.sha256().digest_size


class SignatureError(ValueError):
    """A signed file or entry whose signature is missing or wrong."""


def key_from_env() -> bytes | None:
    """The signing key (UTF-8 bytes of ``$RUNNEL_CHECKPOINT_KEY``), or None when it is not set."""
    value = os.environ.get(KEY_ENV)
    if value is None:
        return None
    if not value:
        raise SignatureError(f"{KEY_ENV} is set but empty: unset it, or set it to a secret of 32+ random bytes")
    return value.encode("utf-8")


def mac(key: bytes, label: bytes, *parts) -> bytes:
    """HMAC-SHA256 of ``label`` and the bytes-like ``parts``, in order (each length-prefixed).

    Examples
    --------
    >>> mac(b"k", b"x", b"ab", b"c") == mac(b"k", b"x", b"a", b"bc")
    False
    """
    h = hmac.new(key, label, hashlib.sha256)
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.digest()


def check(key: bytes, signature: bytes | str | None, label: bytes, *parts, what: str) -> None:
    """Raise :class:`SignatureError` (``what`` names the file or entry) unless ``signature`` is right."""
    if signature is None:
        raise SignatureError(f"{what}: not signed, but {KEY_ENV} is set (written without the key, or not by "
                             "runnel); refusing to load it")
    if isinstance(signature, str):
        try:
            signature = bytes.fromhex(signature)
        except ValueError:
            signature = b""
    if not hmac.compare_digest(signature, mac(key, label, *parts)):
        raise SignatureError(f"{what}: signature mismatch (written with another {KEY_ENV}, or altered); "
                             "refusing to load it")
