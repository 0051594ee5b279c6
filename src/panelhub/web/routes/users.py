"""The users page: the accounts, and the forms an admin changes them with.

Every form posts the target's name in a field (not in the path: a user name may hold any
printable character) and the answer is the users page itself, with a notice or an error. A
generated password appears in that one answer only; the page is never cached
(``Cache-Control: no-store`` on every page).
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from panelhub.security.accounts import MAX_NAME_LENGTH, Role
from panelhub.web.access import Access, client_address, context_of, page, session_of
from panelhub.web.templating import render
from panelhub.web.useradmin import (
    REFUSAL_STATUS,
    AccountRefusedError,
    Administration,
    NewPassword,
    parse_role,
)

#: Longest field read from a users form; a name is at most ``MAX_NAME_LENGTH``, so anything
#: longer is refused as too long by the name check, not cut to a different valid name.
MAX_FIELD_LENGTH: Final = 4 * MAX_NAME_LENGTH
MAX_FIELDS: Final = 8


def _administration(request: Request) -> Administration:
    return Administration(context_of(request), session_of(request), client_address(request))


async def _page(
    request: Request,
    *,
    notice: str = "",
    error: str = "",
    new_password: NewPassword | None = None,
    status: int = 200,
) -> Response:
    users = await _administration(request).users()
    return render(
        request,
        "users.html",
        {
            "users": users,
            "roles": [role.value for role in Role],
            "notice": notice,
            "error": error,
            "new_password": new_password,
            "max_name_length": MAX_NAME_LENGTH,
        },
        status_code=status,
    )


async def users_page(request: Request) -> Response:
    return await _page(request)


async def _form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=MAX_FIELDS)


def _field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value[:MAX_FIELD_LENGTH] if isinstance(value, str) else ""


async def _refused(request: Request, exc: AccountRefusedError) -> Response:
    return await _page(request, error=str(exc), status=REFUSAL_STATUS[exc.reason])


async def create_user(request: Request) -> Response:
    form = await _form(request)
    try:
        role = parse_role(_field(form, "role"))
        created = await _administration(request).create(_field(form, "name"), role)
    except AccountRefusedError as exc:
        return await _refused(request, exc)
    notice = f"Account {created.user.name!r} created."
    return await _page(request, notice=notice, new_password=created)


async def set_role(request: Request) -> Response:
    form = await _form(request)
    name = _field(form, "name")
    try:
        role = parse_role(_field(form, "role"))
        user = await _administration(request).change(name, role=role)
    except AccountRefusedError as exc:
        return await _refused(request, exc)
    return await _page(request, notice=f"{user.name!r} is now {user.role}.")


async def set_enabled(request: Request) -> Response:
    form = await _form(request)
    name = _field(form, "name")
    is_enabled = _field(form, "enabled") == "yes"
    try:
        user = await _administration(request).change(name, is_enabled=is_enabled)
    except AccountRefusedError as exc:
        return await _refused(request, exc)
    state = "enabled" if user.is_enabled else "disabled; their sessions ended"
    return await _page(request, notice=f"{user.name!r} is {state}.")


async def unlock(request: Request) -> Response:
    form = await _form(request)
    try:
        user = await _administration(request).unlock(_field(form, "name"))
    except AccountRefusedError as exc:
        return await _refused(request, exc)
    return await _page(request, notice=f"{user.name!r} is unlocked.")


async def reset_password(request: Request) -> Response:
    form = await _form(request)
    try:
        reset = await _administration(request).reset_password(_field(form, "name"))
    except AccountRefusedError as exc:
        return await _refused(request, exc)
    notice = f"New password for {reset.user.name!r}; their sessions ended."
    return await _page(request, notice=notice, new_password=reset)


async def end_sessions(request: Request) -> Response:
    form = await _form(request)
    name = _field(form, "name")
    try:
        count = await _administration(request).end_sessions(name)
    except AccountRefusedError as exc:
        return await _refused(request, exc)
    return await _page(request, notice=f"{count} session(s) of {name!r} ended.")


def routes() -> list[BaseRoute]:
    """The users page and its forms: admins only."""
    forms = {
        "/users": create_user,
        "/users/role": set_role,
        "/users/enabled": set_enabled,
        "/users/unlock": unlock,
        "/users/reset-password": reset_password,
        "/users/end-sessions": end_sessions,
    }
    return [
        page("/users", users_page, access=Access.ADMIN),
        *(page(path, form, access=Access.ADMIN, methods=["POST"]) for path, form in forms.items()),
    ]
