"""Provider credentials encrypted at rest: AES-256-GCM under keys derived from the secret key.

``SecretBox`` is built from an ordered list of secret keys (``TIDINGS_SECRET_KEY`` first, then
any previous keys kept for rotation). The first key encrypts; every key decrypts. A token is
self-describing ASCII, safe in a text column::

    v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag), no padding>

- ``v1`` names this format: AES-256-GCM, 96-bit random nonce, 128-bit tag.
- ``<key id>`` is 8 hex characters: the first 32 bits of SHA-256 over a second HKDF output of the
  secret key (never over the secret key or the AES key itself), so a token says which key made
  it without revealing anything about that key.
- The associated data is the token header ``v1.<key id>.`` followed by the caller's ``context``
  (e.g. ``b"channel_account:<id>"``): a token copied to another row, or under another header,
  does not decrypt.

Key derivation is HKDF-SHA256 with a fixed salt. A fixed salt is fine here because the secret
key is a long random value (``Settings`` generates 32 random bytes when none is set), so HKDF's
extract step has full entropy to work with; the salt must also be fixed for the same secret key
to give the same AES key after a restart. HKDF is not a password hash: it does not make a short,
guessable secret key any stronger.

Random 96-bit nonces are safe for up to about 2**32 encryptions per key, far beyond the number of
credential writes a deployment makes between rotations.

Every failure to decrypt raises ``DecryptionError`` with a fixed message; no message names the
plaintext, a key or the token, and no other exception is chained to it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
KEY_ID_LENGTH = 8
NONCE_BYTES = 12
TAG_BYTES = 16

_SALT = b"tidings.domain.crypto fixed salt"
_AES_INFO = b"tidings credentials v1"
_KEY_ID_INFO = b"tidings credentials v1 key id"
_VERSION_RE = re.compile(r"v[0-9]+")
_KEY_ID_RE = re.compile(r"[0-9a-f]{8}")  # KEY_ID_LENGTH
_BASE64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
_MASK = "\u2022" * 4
_MASK_MIN_LENGTH = 12
_MASK_SHOWN = 4


class DecryptionError(ValueError):
    """A token could not be decrypted: malformed, unknown version or key, wrong context, or
    tampered with. The message never contains the plaintext, a key or the token."""


class SecretBox:
    """Encrypts and decrypts small secrets (provider credentials) under rotating keys.

    ``secret_keys`` is ordered: the first is current and used by ``encrypt``; the rest are
    previous keys, still accepted by ``decrypt`` until every token has been ``rotate``d.
    Raises ``ValueError`` when there is no key, a key is empty or blank, or two keys share a key
    id (the same key listed twice); ``TypeError`` when given a single ``str``. Instances keep
    only derived keys, never the secret keys, and their ``repr`` shows only key ids.
    """

    __slots__ = ("_current_id", "_keys")

    def __init__(self, secret_keys: Sequence[str]) -> None:
        if isinstance(secret_keys, str):
            raise TypeError("secret_keys is a sequence of keys, not one key string")
        if not secret_keys:
            raise ValueError("at least one secret key is required")
        keys: dict[str, AESGCM] = {}
        for position, secret_key in enumerate(secret_keys):
            if not secret_key.strip():
                raise ValueError(f"secret key #{position + 1} is empty")
            material = secret_key.encode("utf-8")
            key_id = _key_id(material)
            if key_id in keys:
                raise ValueError(
                    f"secret key #{position + 1} has the same key id as an earlier key; "
                    "is the same key listed twice?")
            keys[key_id] = AESGCM(_derive(material, _AES_INFO))
        self._keys = keys
        self._current_id = next(iter(keys))

    def __repr__(self) -> str:
        return f"SecretBox(key_ids={list(self._keys)!r})"

    @property
    def current_key_id(self) -> str:
        """The key id that ``encrypt`` writes into new tokens."""
        return self._current_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every configured key id, current first, in the order the keys were given."""
        return tuple(self._keys)

    def encrypt(self, plaintext: bytes, *, context: bytes) -> str:
        """Encrypt ``plaintext`` under the current key, bound to ``context``.

        ``context`` names where the token will be stored (``b"channel_account:<id>"``); the same
        context must be given to ``decrypt``. Returns a ``v1.<key id>.<payload>`` token; two
        calls with the same input give different tokens (random nonce). Raises ``ValueError``
        for an empty context.
        """
        _require_context(context)
        nonce = secrets.token_bytes(NONCE_BYTES)
        header = _header(self._current_id)
        sealed = self._keys[self._current_id].encrypt(nonce, plaintext, _aad(header, context))
        return header + _b64encode(nonce + sealed)

    def decrypt(self, token: str, *, context: bytes) -> bytes:
        """The plaintext of a token made by ``encrypt`` with the same ``context``.

        Decrypts with whichever configured key the token names. Raises ``DecryptionError`` when
        the token is malformed, has an unknown version, names a key that is not configured, or
        fails authentication (wrong context, another key, tampering); ``ValueError`` for an
        empty context.
        """
        _require_context(context)
        key_id, raw = _parse(token)
        key = self._keys.get(key_id)
        if key is None:
            raise DecryptionError(
                f"token was encrypted with a key that is not configured (key id {key_id})")
        plaintext: bytes | None
        try:
            plaintext = key.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                    _aad(_header(key_id), context))
        except InvalidTag:
            plaintext = None
        if plaintext is None:  # raised here, outside the except, so nothing is chained
            raise DecryptionError(
                "token failed authentication: wrong context, wrong key or tampered with")
        return plaintext

    def encrypt_json(self, value: Mapping[str, Any], *, context: bytes) -> str:
        """``encrypt`` of ``value`` as compact, sorted-key UTF-8 JSON.

        Raises ``TypeError`` when ``value`` is not JSON-serialisable and ``ValueError`` when it
        holds NaN or infinity (neither is valid JSON).
        """
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
        return self.encrypt(text.encode("utf-8"), context=context)

    def decrypt_json(self, token: str, *, context: bytes) -> dict[str, Any]:
        """The JSON object encrypted by ``encrypt_json``.

        Raises ``DecryptionError`` as ``decrypt`` does, and when the plaintext is not a UTF-8
        JSON object.
        """
        plaintext = self.decrypt(token, context=context)
        value: object
        try:
            value = json.loads(plaintext.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError both hold the plaintext
            value = None
        if not isinstance(value, dict):
            raise DecryptionError("decrypted value is not a JSON object")
        return value

    def needs_rotation(self, token: str) -> bool:
        """Whether ``token`` names a key other than the current one.

        Reads only the header; it does not authenticate the token. True also for a key that is
        not configured (``rotate`` then raises). Raises ``DecryptionError`` for a malformed token
        or an unknown version.
        """
        key_id, _ = _parse(token)
        return key_id != self._current_id

    def rotate(self, token: str, *, context: bytes) -> str:
        """``token``'s plaintext re-encrypted under the current key, with the same ``context``.

        Always makes a new token (callers skip tokens for which ``needs_rotation`` is False).
        Raises as ``decrypt`` does.
        """
        return self.encrypt(self.decrypt(token, context=context), context=context)


def mask(value: str) -> str:
    """How a stored secret is shown: four bullets, then its last 4 characters when it has at
    least 12 (so at most a third of it shows), else the bullets alone.

    ``mask("sk_live_abcdefgh1234") == "••••1234"``; ``mask("short") == "••••"``. The result tells
    nothing of the length beyond "at least 12", nor whether the value is empty: callers show
    "not set" separately.
    """
    if len(value) >= _MASK_MIN_LENGTH:
        return _MASK + value[-_MASK_SHOWN:]
    return _MASK


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info).derive(material)


def _key_id(material: bytes) -> str:
    return hashlib.sha256(_derive(material, _KEY_ID_INFO)).hexdigest()[:KEY_ID_LENGTH]


def _header(key_id: str) -> str:
    return f"{VERSION}.{key_id}."


def _aad(header: str, context: bytes) -> bytes:
    # The header has a fixed length, so header + context is unambiguous.
    return header.encode("ascii") + context


def _require_context(context: bytes) -> None:
    if not context:
        raise ValueError("context must not be empty: it binds a token to where it is stored")


def _parse(token: str) -> tuple[str, bytes]:
    """The key id and raw ``nonce ‖ ciphertext ‖ tag`` of a well-formed v1 token."""
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        raise DecryptionError("token is malformed")
    version, key_id, payload = parts
    if version != VERSION:
        if _VERSION_RE.fullmatch(version):
            raise DecryptionError("token version is not supported")
        raise DecryptionError("token is malformed")
    if not _KEY_ID_RE.fullmatch(key_id):
        raise DecryptionError("token is malformed")
    raw = _b64decode(payload)
    if raw is None or len(raw) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("token is malformed")
    return key_id, raw


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict unpadded base64url: None unless ``text`` is the canonical encoding of its bytes
    (so no two payload strings decode to the same bytes)."""
    if not _BASE64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return raw if _b64encode(raw) == text else None
