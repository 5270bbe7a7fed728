"""Routes of the accounts context: thin — parse, call one service function, render."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Router, get, post, put
from litestar.params import FromPath

from goticket.accounts.domain import ensure_admin
from goticket.accounts.schemas import (
    LoginRequest,
    RegisterRequest,
    RoleChangeRequest,
    TokenResponse,
    UserResponse,
)
from goticket.accounts.service import AccountService
from goticket.kit.bearer import principal_of
from goticket.kit.bodies import read_json
from goticket.kit.openapi import body, errors, links
from goticket.kit.routes import with_options

AnyRequest = Request[Any, Any, Any]


def accounts_router(service: AccountService) -> Router:
    @post(
        "/auth/register",
        status_code=201,
        tags=["auth"],
        opt=body(RegisterRequest)
        | links(201, "user_id", "$response.body#/id", "PUT /users/{user_id}/role"),
        responses=errors(409, 422),
    )
    async def register(request: AnyRequest) -> UserResponse:
        """Create an account with the role `user`."""
        data = await read_json(request, RegisterRequest)
        return UserResponse.of(await service.register(data.email, data.password, data.name))

    @post(
        "/auth/login",
        status_code=200,
        tags=["auth"],
        opt=body(LoginRequest),
        responses=errors(401, 422),
    )
    async def login(request: AnyRequest) -> TokenResponse:
        """Exchange an email and password for an access token."""
        data = await read_json(request, LoginRequest)
        token = await service.login(data.email, data.password)
        return TokenResponse(token.token, "Bearer", token.expires_in)

    @get("/auth/me", tags=["auth"], security=[{"bearerAuth": []}], responses=errors(401, 404))
    async def me(request: AnyRequest) -> UserResponse:
        """The caller's own account."""
        return UserResponse.of(await service.get(principal_of(request).user_id))

    @put(
        "/users/{user_id:uuid}/role",
        tags=["users"],
        security=[{"bearerAuth": []}],
        opt=body(RoleChangeRequest),
        responses=errors(401, 403, 404, 422),
    )
    async def change_role(request: AnyRequest, user_id: FromPath[UUID]) -> UserResponse:
        """Give a user another role (admins only). Tokens issued afterwards carry it."""
        actor = principal_of(request)
        ensure_admin(actor)  # 403 before the body is read
        data = await read_json(request, RoleChangeRequest)
        return UserResponse.of(await service.change_role(actor, user_id, data.role))

    return Router("/", route_handlers=with_options([register, login, me, change_role]))
