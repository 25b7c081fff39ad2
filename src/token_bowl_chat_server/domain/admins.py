"""What an admin's change does to an account, and the rule that keeps a server
administrable: its last admin can be neither demoted nor deleted.

Pure. The store applies both inside the transaction that makes the change, with the admin
rows locked, so two admins demoting each other at once cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import Conflict, InvalidInput
from token_bowl_chat_server.domain.permissions import Action, allowed

# The profile columns PATCH /admin/users/{id} sets; ``null`` clears all but the username.
PROFILE_FIELDS = ("username", "email", "webhook_url", "logo", "emoji")
# The legacy flags, in upstream's order: when several are true, the last one wins.
_FLAGS = (("viewer", Role.VIEWER), ("admin", Role.ADMIN), ("bot", Role.BOT))
UPDATE_FIELDS = (*PROFILE_FIELDS, "role", *(name for name, _ in _FLAGS))


def check_an_admin_remains(admin_ids: Collection[str], target_id: str, stays_admin: bool) -> None:
    """Raise ``Conflict`` (``last_admin``) when ``target_id`` is the only admin among
    ``admin_ids`` (every admin now) and the change would take that role away."""
    if stays_admin or target_id not in admin_ids or len(admin_ids) > 1:
        return
    raise Conflict(
        "Cannot remove the last admin: make another user an admin first", ErrorCode.LAST_ADMIN
    )


def resolved_role(current: Role, given: Mapping[str, Any]) -> Role:
    """The role a PATCH /admin/users body asks for: ``role`` wins; else the last legacy flag
    that is true; else a flag set to false that names the current role makes a member
    (upstream ignored ``false``); else unchanged."""
    if given.get("role") is not None:
        return Role(given["role"])
    chosen = [role for name, role in _FLAGS if given.get(name) is True]
    if chosen:
        return chosen[-1]
    if any(given.get(name) is False and role is current for name, role in _FLAGS):
        return Role.MEMBER
    return current


def role_values(current: User, role: Role) -> dict[str, Any]:
    """The columns that give ``current`` the ``role``: a role without logos loses its logo."""
    values: dict[str, Any] = {}
    if role is not current.role:
        values["role"] = role.value
    if current.logo is not None and not allowed(role, Action.USE_LOGO):
        values["logo"] = None
    return values


def update_values(current: User, given: Mapping[str, Any]) -> dict[str, Any]:
    """The columns a PATCH /admin/users body sets on ``current``; ``given`` holds the fields
    the body names (``None`` for ``null``). A rename to the current name changes nothing.

    Raises ``InvalidInput`` for a logo on a role that may not show one (bots use emoji).
    """
    values: dict[str, Any] = {}
    for name in PROFILE_FIELDS:
        if name not in given:
            continue
        value = given[name]
        if name == "username" and (value is None or value == current.username):
            continue  # a username cannot be cleared
        values[name] = value
    role = resolved_role(current.role, given)
    if values.get("logo") is not None and not allowed(role, Action.USE_LOGO):
        raise InvalidInput("Bots can only use emoji for avatars, not logos")
    values.update(role_values(current, role))
    if "webhook_url" in values and values["webhook_url"] != current.webhook_url:
        # A signing secret belongs to the URL it was shown for: a URL an admin sets goes
        # unsigned until its owner sets it or rotates the secret (nobody has seen a new one).
        values["webhook_secret"] = None
    return values
