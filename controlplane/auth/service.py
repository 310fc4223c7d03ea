"""Rules of authentication: sign-up, password login, refresh rotation, logout, and the
OAuth 2.0 authorization-code flow with PKCE (S256 only, exact redirect-URI match).

Every outcome that matters to security (login failure, refresh-token reuse, logout) is
written to the audit trail. Messages never say whether an e-mail exists.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg
from argon2 import PasswordHasher

from controlplane.audit import service as audit
from controlplane.auth import crypto, repository
from controlplane.auth.keys import KeyRing
from controlplane.auth.repository import AuthCode, SessionStore
from controlplane.auth.schemas import Login, SignUp, TokenResponse
from controlplane.context import RequestInfo
from controlplane.errors import AuditNote, Conflict, OAuthError, Unauthenticated
from controlplane.users import repository as users
from controlplane.users.schemas import UserOut

PASSWORD_CLIENT = "password"  # noqa: S105 (a client id, not a secret)


@dataclass(frozen=True)
class Auth:
    """What the auth services need besides a connection."""

    keys: KeyRing
    sessions: SessionStore
    hasher: PasswordHasher


async def sign_up(conn: asyncpg.Connection, auth: Auth, body: SignUp, info: RequestInfo) -> UserOut:
    hashed = await asyncio.to_thread(auth.hasher.hash, body.password)
    row = await users.insert(conn, email=body.email, name=body.name, password_hash=hashed)
    if row is None:
        raise Conflict("an account with this e-mail already exists")
    await audit.record(
        conn,
        org_id=None,
        actor=str(row.id),
        action="auth.signup",
        target=f"user/{row.id}",
        info=info,
    )
    return UserOut(id=row.id, email=row.email, name=row.name, created_at=row.created_at)


async def check_password(
    conn: asyncpg.Connection, auth: Auth, *, email: str, password: str
) -> uuid.UUID:
    """The user id for valid credentials; raises (with an audit note) otherwise."""
    row = await users.by_email(conn, email)
    # Verify against something even for an unknown e-mail: same cost, no user enumeration.
    stored = row.password_hash if row else _DUMMY_HASH.get(auth.hasher)
    ok = await asyncio.to_thread(crypto.verify_password, auth.hasher, stored, password)
    if row is None or not ok or row.disabled:
        raise Unauthenticated("invalid e-mail or password").noted(
            AuditNote(
                org_id=None,
                actor=f"email:{email.lower()}",
                action="auth.login",
                target="session",
                outcome="failure",
            )
        )
    if auth.hasher.check_needs_rehash(row.password_hash):
        await users.update_password_hash(
            conn, row.id, await asyncio.to_thread(auth.hasher.hash, password)
        )
    return row.id


class _Dummy:
    """A lazily computed hash with the current parameters, for unknown e-mails."""

    def __init__(self) -> None:
        self._hash: dict[int, str] = {}

    def get(self, hasher: PasswordHasher) -> str:
        key = id(hasher)
        if key not in self._hash:
            self._hash[key] = hasher.hash(crypto.new_token())
        return self._hash[key]


_DUMMY_HASH = _Dummy()


async def _tokens(auth: Auth, *, user_id: uuid.UUID, family: str, client_id: str) -> TokenResponse:
    access, ttl = await auth.keys.sign(user_id=user_id, sid=family, client_id=client_id)
    refresh = await auth.sessions.issue(family=family, user_id=str(user_id), client_id=client_id)
    return TokenResponse(access_token=access, expires_in=ttl, refresh_token=refresh)


async def login(
    conn: asyncpg.Connection, auth: Auth, body: Login, info: RequestInfo
) -> TokenResponse:
    user_id = await check_password(conn, auth, email=body.email, password=body.password)
    family = await auth.sessions.new_family(user_id)
    await audit.record(
        conn,
        org_id=None,
        actor=str(user_id),
        action="auth.login",
        target=f"session/{family}",
        info=info,
    )
    return await _tokens(auth, user_id=user_id, family=family, client_id=PASSWORD_CLIENT)


async def refresh(
    conn: asyncpg.Connection, auth: Auth, *, token: str, client_id: str, info: RequestInfo
) -> TokenResponse:
    """Rotate a refresh token. A second use of the same token revokes its family."""
    use = await auth.sessions.use(token)
    if use.outcome != "ok" or use.client_id != client_id:
        if use.outcome == "ok":  # presented by another client: treat as theft
            await auth.sessions.revoke_family(use.family)
        error = OAuthError("invalid_grant", "refresh token is invalid, expired or revoked")
        if use.outcome == "reuse":
            error.noted(
                AuditNote(
                    org_id=None,
                    actor=use.user_id,
                    action="auth.refresh_reuse",
                    target=f"session/{use.family}",
                    outcome="denied",
                )
            )
        raise error
    await audit.record(
        conn,
        org_id=None,
        actor=use.user_id,
        action="auth.refresh",
        target=f"session/{use.family}",
        info=info,
    )
    return await _tokens(
        auth, user_id=uuid.UUID(use.user_id), family=use.family, client_id=use.client_id
    )


async def refresh_owner(auth: Auth, token: str) -> str | None:
    """The account a refresh token belongs to (what the token endpoint rate-limits)."""
    return await auth.sessions.owner(token) if token else None


async def logout(
    conn: asyncpg.Connection, auth: Auth, *, user_id: uuid.UUID, family: str, info: RequestInfo
) -> None:
    await auth.sessions.revoke_family(family)
    await audit.record(
        conn,
        org_id=None,
        actor=str(user_id),
        action="auth.logout",
        target=f"session/{family}",
        info=info,
    )


async def end_every_session(
    conn: asyncpg.Connection, auth: Auth, *, user_id: uuid.UUID, info: RequestInfo
) -> int:
    """Revoke every session of the user, the caller's too: refresh tokens of every
    family (password and OAuth clients alike) and the access tokens they carry."""
    ended = await auth.sessions.revoke_all(user_id)
    await audit.record(
        conn,
        org_id=None,
        actor=str(user_id),
        action="auth.logout_all",
        target=f"user/{user_id}",
        info=info,
        detail={"sessions": len(ended)},
    )
    return len(ended)


async def _client_and_redirect(
    conn: asyncpg.Connection, client_id: str, redirect_uri: str
) -> repository.ClientRow:
    client = await repository.client(conn, client_id)
    if client is None:
        raise OAuthError("invalid_client", "unknown client_id", status=401)
    if redirect_uri not in client.redirect_uris:  # exact string match, no prefix/pattern
        raise OAuthError("invalid_request", "redirect_uri is not registered for this client")
    return client


async def authorize(
    conn: asyncpg.Connection,
    auth: Auth,
    *,
    user_id: uuid.UUID,
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    info: RequestInfo,
) -> str:
    """Issue a single-use authorization code bound to client, redirect URI and challenge."""
    code = crypto.new_token()
    await auth.sessions.store_code(
        code,
        AuthCode(
            user_id=str(user_id),
            client_id=client_id,
            redirect_uri=redirect_uri,
            challenge=code_challenge,
        ),
    )
    await audit.record(
        conn,
        org_id=None,
        actor=str(user_id),
        action="oauth.authorize",
        target=f"client/{client_id}",
        info=info,
    )
    return code


async def validate_authorize_request(
    conn: asyncpg.Connection, *, client_id: str, redirect_uri: str
) -> None:
    await _client_and_redirect(conn, client_id, redirect_uri)


async def exchange_code(
    conn: asyncpg.Connection,
    auth: Auth,
    *,
    code: str,
    client_id: str,
    redirect_uri: str,
    code_verifier: str,
    info: RequestInfo,
) -> TokenResponse:
    grant = await auth.sessions.take_code(code)
    if (
        grant is None
        or grant.client_id != client_id
        or grant.redirect_uri != redirect_uri
        or not crypto.pkce_matches(verifier=code_verifier, challenge=grant.challenge)
    ):
        raise OAuthError("invalid_grant", "authorization code is invalid, expired or used")
    user_id = uuid.UUID(grant.user_id)
    family = await auth.sessions.new_family(user_id)
    await audit.record(
        conn,
        org_id=None,
        actor=grant.user_id,
        action="oauth.token",
        target=f"session/{family}",
        info=info,
    )
    return await _tokens(auth, user_id=user_id, family=family, client_id=client_id)
