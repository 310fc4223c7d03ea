"""Pure helpers for secrets: password hashing, PKCE, JWT signing keys, token digests.

Kept free of I/O so unit tests can pin the exact rules (S256 only, verifier alphabet,
algorithm allow-list) without servers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

# Only these may appear in an access token's header; "none" and HMAC algorithms never
# verify, whatever the token says.
ALLOWED_ALGORITHMS = ("EdDSA", "ES256")

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def digest(token: str) -> str:
    """SHA-256 of a high-entropy token: what storage keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier (RFC 7636 section 4.2)."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.match(challenge))


def pkce_matches(*, verifier: str, challenge: str) -> bool:
    """True when ``verifier`` is well-formed and hashes to ``challenge`` (S256)."""
    if not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(pkce_challenge(verifier), challenge)


def password_hasher(*, time_cost: int, memory_kib: int) -> PasswordHasher:
    """argon2id (the library's default type) with the configured cost."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def verify_password(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class KeyMaterial:
    kid: str
    algorithm: str
    private_pem: str
    public_jwk: dict[str, Any]


def generate_key(algorithm: str) -> KeyMaterial:
    """A fresh signing key; ``kid`` is the RFC 7638 thumbprint of its public JWK."""
    if algorithm == "EdDSA":
        priv_ed = ed25519.Ed25519PrivateKey.generate()
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(priv_ed.public_key(), as_dict=True)
        pem = priv_ed.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        required: tuple[str, ...] = ("crv", "kty", "x")
    elif algorithm == "ES256":
        priv_ec = ec.generate_private_key(ec.SECP256R1())
        jwk = ECAlgorithm.to_jwk(priv_ec.public_key(), as_dict=True)
        pem = priv_ec.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        required = ("crv", "kty", "x", "y")
    else:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    canonical = "{" + ",".join(f'"{k}":"{jwk[k]}"' for k in required) + "}"
    kid = b64url(hashlib.sha256(canonical.encode()).digest())
    public = {**{k: jwk[k] for k in required}, "kid": kid, "alg": algorithm, "use": "sig"}
    return KeyMaterial(kid=kid, algorithm=algorithm, private_pem=pem.decode(), public_jwk=public)


_SEALED = "fernet:"


def seal(pem: str, secret: str | None) -> str:
    """The private key as stored: encrypted with ``secret`` (a Fernet key) when one is
    configured, so a database dump alone cannot mint tokens."""
    if not secret:
        return pem
    return _SEALED + Fernet(secret.encode()).encrypt(pem.encode()).decode()


def unseal(stored: str, secret: str | None) -> str:
    if not stored.startswith(_SEALED):
        return stored
    if not secret:
        raise RuntimeError(
            "signing keys are encrypted but TENANTRY_CP_SIGNING_KEY_SECRET is not set"
        )
    try:
        return Fernet(secret.encode()).decrypt(stored[len(_SEALED) :].encode()).decode()
    except InvalidToken:
        raise RuntimeError(
            "TENANTRY_CP_SIGNING_KEY_SECRET does not decrypt the signing keys"
        ) from None


def load_private(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, or {} for something that is not a JWT."""
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        return {}
