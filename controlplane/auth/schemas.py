"""Wire models of the auth domain. Request bodies reject unknown fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from controlplane.validation import OptionalName

EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$"

Email = Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=320)]
Password = Annotated[str, Field(min_length=12, max_length=256)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignUp(Strict):
    email: Email
    password: Password
    name: OptionalName = ""


class Login(Strict):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=256)]


class RefreshRequest(Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class TokenResponse(BaseModel):
    """RFC 6749 section 5.1."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105
    expires_in: int
    refresh_token: str


class SessionsEnded(BaseModel):
    """What "end every session" did: how many sessions were still active."""

    ended: int


class Jwk(BaseModel):
    model_config = ConfigDict(extra="allow")

    kty: str
    kid: str
    alg: str
    use: str


class Jwks(BaseModel):
    keys: list[Jwk]
