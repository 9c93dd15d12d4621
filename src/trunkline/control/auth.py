"""Who a control call acts for: the account of its API key, or, with the admin token, any account.

`Authorization: Bearer <credential>`. The admin token (TRUNKLINE_ADMIN_TOKEN) is compared in
constant time (hmac.compare_digest) and acts on the account named by `?account=<user_id>`, or on
every account where the call allows it. An API key acts on its own account only, passes the same
front door as a /v2 request (lockout, access gate, rate limit; http/front_door.py), and a read-only
key may only read.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from trunkline.config import Settings
from trunkline.errors import InvalidParameter, NotAuthorized
from trunkline.http.deps import SAFE_METHODS, admit_key, bearer

# Account ids as the control API accepts them: printable ASCII without spaces, as the CLI makes them.
USER_ID_PATTERN = r"^[!-~]{1,64}$"


@dataclass(frozen=True, slots=True)
class ControlCaller:
    admin: bool
    # The account acted on; None: every account (the admin token without `account`).
    user_id: str | None

    def account(self) -> str:
        """The one account this call needs; the admin token must name it."""
        if self.user_id is None:
            raise InvalidParameter(
                "Name the account this call acts on with ?account=<user_id>.", parameter="account"
            )
        return self.user_id


def _is_admin(settings: Settings, credential: str) -> bool:
    token = settings.admin_token
    return bool(token) and hmac.compare_digest(credential.encode(), (token or "").encode())


async def control_caller(
    request: Request,
    account: Annotated[
        str | None,
        Query(pattern=USER_ID_PATTERN, description="With the admin token: the account to act on."),
    ] = None,
) -> ControlCaller:
    address, credential = bearer(request)
    if _is_admin(request.app.state.settings, credential):
        return ControlCaller(admin=True, user_id=account)
    principal = await admit_key(request, address, credential, writing=request.method not in SAFE_METHODS)
    if account is not None and account != principal.user_id:
        raise NotAuthorized("An API key acts on its own account only; the admin token may name another.")
    return ControlCaller(admin=False, user_id=principal.user_id)


def admin_only(caller: ControlCaller) -> None:
    if not caller.admin:
        raise NotAuthorized("Only the admin token (TRUNKLINE_ADMIN_TOKEN) may do this.")


Caller = Annotated[ControlCaller, Depends(control_caller)]
