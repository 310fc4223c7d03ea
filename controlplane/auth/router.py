"""HTTP routes of authentication and OAuth 2.0.

``/v1/oauth/authorize`` is the submit target of the hosted login form: it takes the
credentials together with the PKCE parameters and answers with a 303 redirect carrying
the code. An unknown client or a redirect URI that is not registered byte for byte
gets a JSON error and never a redirect (no open redirector).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Response, status
from fastapi.responses import RedirectResponse

from controlplane.auth import crypto, service
from controlplane.auth.schemas import (
    EMAIL_PATTERN,
    Jwks,
    Login,
    RefreshRequest,
    SessionsEnded,
    SignUp,
    TokenResponse,
)
from controlplane.context import Principal
from controlplane.deps import AppState, Conn, Info, PerIp, State
from controlplane.errors import OAuthError, RateLimited
from controlplane.rbac.dependencies import Authenticated, Public
from controlplane.users.schemas import UserOut
from controlplane.validation import PRINTABLE

router = APIRouter(tags=["auth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post(
    "/v1/auth/signup",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(Public("anyone may create an account")), Depends(PerIp("signup"))],
)
async def sign_up(body: SignUp, conn: Conn, state: State, info: Info) -> UserOut:
    await state.limiter.identity("signup", body.email)
    return await service.sign_up(conn, state.auth, body, info)


@router.post(
    "/v1/auth/login",
    dependencies=[Depends(Public("credentials are the proof")), Depends(PerIp("login"))],
)
async def login(
    body: Login, conn: Conn, state: State, info: Info, response: Response
) -> TokenResponse:
    await state.limiter.identity("login", body.email)
    response.headers.update(NO_STORE)
    return await service.login(conn, state.auth, body, info)


@router.post(
    "/v1/auth/refresh",
    dependencies=[Depends(Public("the refresh token is the proof")), Depends(PerIp("refresh"))],
)
async def refresh(
    body: RefreshRequest, conn: Conn, state: State, info: Info, response: Response
) -> TokenResponse:
    response.headers.update(NO_STORE)
    return await service.refresh(
        conn, state.auth, token=body.refresh_token, client_id=service.PASSWORD_CLIENT, info=info
    )


@router.post("/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    principal: Annotated[Principal, Depends(Authenticated("session:logout"))],
    conn: Conn,
    state: State,
    info: Info,
) -> Response:
    """Revoke the caller's session: its refresh tokens and its access tokens."""
    await service.logout(
        conn, state.auth, user_id=principal.user_id, family=principal.session, info=info
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/v1/auth/sessions")
async def end_every_session(
    principal: Annotated[Principal, Depends(Authenticated("session:logout_all"))],
    conn: Conn,
    state: State,
    info: Info,
) -> SessionsEnded:
    """End every session of the caller, this one included: after it, no refresh token
    or access token issued to the account before works (sign in again)."""
    ended = await service.end_every_session(conn, state.auth, user_id=principal.user_id, info=info)
    return SessionsEnded(ended=ended)


@router.get(
    "/.well-known/jwks.json",
    dependencies=[Depends(Public("public keys are public"))],
    response_model_exclude_none=True,
)
async def jwks(state: State, response: Response) -> Jwks:
    response.headers["Cache-Control"] = "public, max-age=300"
    await state.auth.keys.refresh()
    return Jwks.model_validate(state.auth.keys.jwks())


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    sep = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(
        f"{redirect_uri}{sep}{urlencode(params)}",
        status_code=status.HTTP_303_SEE_OTHER,
        headers=NO_STORE,
    )


Text = Annotated[str, Form(max_length=2000, pattern=PRINTABLE)]


@router.post(
    "/v1/oauth/authorize",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    dependencies=[Depends(Public("the login form posts here")), Depends(PerIp("authorize"))],
)
async def authorize(
    conn: Conn,
    state: State,
    info: Info,
    client_id: Text,
    redirect_uri: Text,
    email: Annotated[str, Form(max_length=320, pattern=EMAIL_PATTERN)],
    password: Annotated[str, Form(max_length=256)],
    response_type: Annotated[str, Form(max_length=50)] = "",
    code_challenge: Annotated[str, Form(max_length=200)] = "",
    code_challenge_method: Annotated[str, Form(max_length=20)] = "",
    oauth_state: Annotated[str, Form(alias="state", max_length=500)] = "",
) -> RedirectResponse:
    await service.validate_authorize_request(conn, client_id=client_id, redirect_uri=redirect_uri)
    extra = {"state": oauth_state} if oauth_state else {}
    if response_type != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", **extra})
    if code_challenge_method != "S256" or not crypto.valid_challenge(code_challenge):
        return _redirect(
            redirect_uri,
            {
                "error": "invalid_request",
                "error_description": "PKCE with code_challenge_method=S256 is required",
                **extra,
            },
        )
    await state.limiter.identity("authorize", email)
    user_id = await service.check_password(conn, state.auth, email=email, password=password)
    code = await service.authorize(
        conn,
        state.auth,
        user_id=user_id,
        client_id=client_id,
        redirect_uri=redirect_uri,
        code_challenge=code_challenge,
        info=info,
    )
    return _redirect(redirect_uri, {"code": code, **extra})


async def _limit_token_identity(
    state: AppState, *, grant_type: str, client_id: str, refresh_token: str
) -> None:
    """The token endpoint's per-identity limit: many machines hammering one identity.

    A refresh token this server issued names its account (one Redis read; a used or
    revoked token still does), so replays of a leaked token are capped per user at the
    per-identity limit, however many addresses and sessions they spread over; a user
    bucket rather than a family bucket, because signing in again makes a new family.
    Authorization codes and refresh tokens we never issued are counted per
    ``client_id``, at the larger per-client limit (every user of a public client shares
    it). So guessed tokens never eat into a real user's budget, and a flood against one
    client cannot outrun its limit by rotating addresses.
    """
    owner = None
    if grant_type == "refresh_token":
        owner = await service.refresh_owner(state.auth, refresh_token)
    try:
        if owner is not None:
            await state.limiter.identity("token", f"user:{owner}")
        else:
            await state.limiter.client("token", client_id)
    except RateLimited as exc:
        raise exc.as_oauth() from None


@router.post(
    "/v1/oauth/token",
    dependencies=[Depends(Public("grants are the proof")), Depends(PerIp("token", oauth=True))],
)
async def token(
    conn: Conn,
    state: State,
    info: Info,
    response: Response,
    grant_type: Annotated[str, Form(max_length=50)],
    client_id: Annotated[str, Form(max_length=200, pattern=PRINTABLE)],
    code: Annotated[str, Form(max_length=200)] = "",
    redirect_uri: Text = "",
    code_verifier: Annotated[str, Form(max_length=200)] = "",
    refresh_token: Annotated[str, Form(max_length=200)] = "",
) -> TokenResponse:
    response.headers.update(NO_STORE)
    await _limit_token_identity(
        state, grant_type=grant_type, client_id=client_id, refresh_token=refresh_token
    )
    if grant_type == "authorization_code":
        return await service.exchange_code(
            conn,
            state.auth,
            code=code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            info=info,
        )
    if grant_type == "refresh_token":
        return await service.refresh(
            conn, state.auth, token=refresh_token, client_id=client_id, info=info
        )
    raise OAuthError(
        "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
    )
