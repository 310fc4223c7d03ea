"""PKCE, password hashing and signing keys: the exact rules, without servers."""

from __future__ import annotations

import jwt
import pytest
from cryptography.fernet import Fernet

from controlplane.auth import crypto


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert crypto.pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert crypto.pkce_matches(verifier=verifier, challenge=crypto.pkce_challenge(verifier))
    assert not crypto.pkce_matches(verifier=verifier, challenge=verifier)  # "plain" never works
    assert not crypto.pkce_matches(verifier="short", challenge=crypto.pkce_challenge("short"))
    bad = "a" * 42 + "!"
    assert not crypto.pkce_matches(verifier=bad, challenge=crypto.pkce_challenge(bad))
    assert crypto.valid_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not crypto.valid_challenge("too-short")


def test_passwords_use_argon2id() -> None:
    hasher = crypto.password_hasher(time_cost=1, memory_kib=8192)
    stored = hasher.hash("a long enough password")
    assert stored.startswith("$argon2id$")
    assert crypto.verify_password(hasher, stored, "a long enough password")
    assert not crypto.verify_password(hasher, stored, "wrong")
    assert not crypto.verify_password(hasher, "not-a-hash", "x")


def test_generated_keys_sign_and_publish_their_jwk() -> None:
    for alg in ("EdDSA", "ES256"):
        key = crypto.generate_key(alg)
        assert key.public_jwk["kid"] == key.kid
        assert key.public_jwk["alg"] == alg
        assert "d" not in key.public_jwk  # never the private part
        private = crypto.load_private(key.private_pem)
        token = jwt.encode({"sub": "x"}, private, algorithm=alg, headers={"kid": key.kid})
        public = jwt.PyJWK(key.public_jwk).key
        assert jwt.decode(token, public, algorithms=[alg])["sub"] == "x"
    assert crypto.generate_key("EdDSA").kid != crypto.generate_key("EdDSA").kid
    assert crypto.unverified_header("garbage") == {}
    assert set(crypto.ALLOWED_ALGORITHMS) == {"EdDSA", "ES256"}


def test_sealed_private_keys_need_the_secret() -> None:
    secret = Fernet.generate_key().decode()
    pem = crypto.generate_key("EdDSA").private_pem
    sealed = crypto.seal(pem, secret)
    assert sealed.startswith("fernet:")
    assert "PRIVATE KEY" not in sealed
    assert crypto.unseal(sealed, secret) == pem
    assert crypto.seal(pem, None) == pem  # local runs: stored as is
    with pytest.raises(RuntimeError, match="not set"):
        crypto.unseal(sealed, None)
    with pytest.raises(RuntimeError, match="does not decrypt"):
        crypto.unseal(sealed, Fernet.generate_key().decode())
