"""``TokenBowlClient``: the synchronous REST client (httpx).

Every method is one call into the shared no-I/O core (``token_bowl_chat._base``); this module
only sends. ``AsyncTokenBowlClient`` in ``async_client.py`` is the same with ``await``.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import TypeVar

import httpx

from token_bowl_chat._base import DEFAULT_TIMEOUT, Call, ClientCore, request_error
from token_bowl_chat.protocol.models import (
    AdminUpdateUserRequest,
    AssignRoleResponse,
    BotProfileResponse,
    ConversationResponse,
    CreateBotResponse,
    InviteUserResponse,
    MessageResponse,
    PaginatedConversationsResponse,
    PaginatedMessagesResponse,
    PublicUserProfile,
    Role,
    StytchAuthenticateResponse,
    StytchLoginResponse,
    UnreadCountResponse,
    UserProfileResponse,
    UserRegistrationResponse,
    WebhookDelivery,
    WebSocketConnectionsResponse,
)

__all__ = ["TokenBowlClient"]

T = TypeVar("T")


class TokenBowlClient:
    """Synchronous client for the Token Bowl Chat REST API.

    ``api_key`` falls back to ``$TOKEN_BOWL_CHAT_API_KEY``; ``base_url`` to
    ``$TOKEN_BOWL_CHAT_BASE_URL``, then ``http://localhost:8000``. ``base_url`` may be the
    server's ``ws(s)://.../ws`` URL. ``timeout`` is in seconds per request (``None``: wait
    forever). Pass ``transport`` (tests: ``httpx.MockTransport``) or a ready ``http_client``,
    not both; an injected ``http_client`` stays the caller's to close and its own timeout
    applies.

    Use it as a context manager, or call :meth:`close`. Every method may raise:

    * ``AuthenticationError``: the endpoint needs a key and none is set (raised before any
      request), or the server answered 401 (wrong or rotated key);
    * ``NetworkError`` (``TimeoutError`` for timeouts): no usable answer;
    * ``ServerError`` (5xx), ``RateLimitError`` (429), ``ProtocolError`` (an answer that is
      not the protocol), and the other status errors listed per method.

    ``ValueError`` is raised before any I/O for arguments that cannot form a request: a base
    URL that is not http(s)/ws(s) (at construction) or an empty id.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        if transport is not None and http_client is not None:
            raise ValueError("pass transport or http_client, not both")
        self._core = ClientCore(api_key=api_key, base_url=base_url)
        self.timeout = timeout
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport)

    @property
    def api_key(self) -> str | None:
        """The key in use; :meth:`regenerate_api_key` replaces it with the new one."""
        return self._core.api_key

    @property
    def base_url(self) -> str:
        """The normalised REST base URL (``http(s)://host[/prefix]``, no trailing ``/``)."""
        return self._core.base_url

    def __enter__(self) -> TokenBowlClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool (unless it was injected). Idempotent."""
        if self._owns_http:
            self._http.close()

    def _send(self, call: Call[T]) -> T:
        prepared = self._core.prepare(call)
        try:
            response = self._http.request(
                prepared.method,
                prepared.url,
                params=prepared.params,
                json=prepared.json,
                headers=prepared.headers,
            )
        except httpx.RequestError as exc:
            raise request_error(exc, prepared) from exc
        return self._core.handle(call, response)

    # -- registration and magic link (public) ------------------------------------------------

    def register(
        self, username: str, webhook_url: str | None = None, logo: str | None = None
    ) -> UserRegistrationResponse:
        """Create a member account; the result carries its API key (shown only here).

        The client keeps using its own key: build a new client with the returned one.
        Raises ``ConflictError`` (name taken), ``ValidationError`` (bad field),
        ``BadRequestError`` / ``PermissionDeniedError`` (role refused by the server).
        """
        return self._send(self._core.register(username, webhook_url, logo))

    def send_magic_link(self, email: str, username: str | None = None) -> StytchLoginResponse:
        """E-mail a login link. Raises ``ServerError`` (503) when the server has no identity
        provider configured, ``ValidationError`` for a bad address."""
        return self._send(self._core.send_magic_link(email, username))

    def authenticate_magic_link(self, token: str) -> StytchAuthenticateResponse:
        """Trade a magic-link token for a session token and API key. Raises
        ``AuthenticationError`` for a bad or expired token, ``ServerError`` (503) when the
        server has no identity provider configured."""
        return self._send(self._core.authenticate_magic_link(token))

    # -- messages ----------------------------------------------------------------------------

    def send_message(
        self,
        content: str,
        to_username: str | None = None,
        *,
        client_message_id: str | None = None,
    ) -> MessageResponse:
        """Send to the room, or a DM when ``to_username`` is given; returns the stored message.

        ``client_message_id`` (any string unique per sender, e.g. a UUID) makes a retry after a
        ``NetworkError`` safe: the server stores the message once and answers a repeat with
        the original. Raises ``PermissionDeniedError`` (role may not send), ``NotFoundError``
        (no such recipient), ``BadRequestError`` (recipient is a viewer), ``ValidationError``
        (empty or over 10 000 characters).
        """
        return self._send(self._core.send_message(content, to_username, client_message_id))

    def get_messages(
        self, limit: int = 50, offset: int = 0, since: str | datetime | None = None
    ) -> PaginatedMessagesResponse:
        """Room history, **newest first**; ``offset`` counts back from the newest message.

        ``since`` (ISO-8601 string or datetime; naive means UTC) keeps only later messages.
        Pages can overlap when messages arrive between requests: deduplicate by ``id``.
        Raises ``BadRequestError`` for an unreadable ``since``, ``ValidationError`` for a
        ``limit`` / ``offset`` out of the server's range.
        """
        return self._send(self._core.get_messages(limit, offset, since))

    def get_direct_messages(
        self, limit: int = 50, offset: int = 0, since: str | datetime | None = None
    ) -> PaginatedMessagesResponse:
        """DMs the caller sent or received, newest first; parameters as :meth:`get_messages`."""
        return self._send(self._core.get_direct_messages(limit, offset, since))

    def get_message(self, message_id: str) -> MessageResponse:
        """One message by id. Raises ``NotFoundError`` when it does not exist or is a DM the
        caller neither sent nor received (the server does not reveal which)."""
        return self._send(self._core.get_message(message_id))

    def get_unread_messages(self, limit: int = 50, offset: int = 0) -> list[MessageResponse]:
        """Unread room messages, **oldest first**."""
        return self._send(self._core.get_unread_messages(limit, offset))

    def get_unread_direct_messages(self, limit: int = 50, offset: int = 0) -> list[MessageResponse]:
        """Unread DMs addressed to the caller, oldest first."""
        return self._send(self._core.get_unread_direct_messages(limit, offset))

    def get_unread_count(self) -> UnreadCountResponse:
        return self._send(self._core.get_unread_count())

    def edit_message(self, message_id: str, content: str) -> MessageResponse:
        """Replace the content of your own message (an admin: anyone's); returns it as it now
        reads, with ``edited_at``. Raises ``PermissionDeniedError`` for someone else's message,
        ``NotFoundError`` for an unknown or deleted one (code ``message_deleted``)."""
        return self._send(self._core.edit_message(message_id, content))

    def delete_message(self, message_id: str) -> None:
        """Delete your own message (an admin: anyone's): it leaves history, unread lists and
        counts. Raises like :meth:`edit_message`; deleting twice is ``NotFoundError``."""
        return self._send(self._core.delete_message(message_id))

    def mark_message_read(self, message_id: str) -> None:
        """Mark one message read (a no-op if it already is). Raises ``NotFoundError``."""
        return self._send(self._core.mark_message_read(message_id))

    def mark_all_messages_read(self) -> dict[str, int]:
        """Mark every unread room message and DM read; returns ``{"marked_as_read": n}``."""
        return self._send(self._core.mark_all_messages_read())

    # -- users, presence, profile ------------------------------------------------------------

    def get_users(self) -> list[PublicUserProfile]:
        """Every chat user (viewers excluded), oldest account first."""
        return self._send(self._core.get_users())

    def get_online_users(self) -> list[PublicUserProfile]:
        """Users with at least one open WebSocket, viewers included."""
        return self._send(self._core.get_online_users())

    def get_available_logos(self) -> list[str]:
        """The logo names ``update_my_logo`` accepts. Needs no key."""
        return self._send(self._core.get_available_logos())

    def get_my_profile(self) -> UserProfileResponse:
        """The caller's own profile. Its ``api_key`` may be masked by the server."""
        return self._send(self._core.get_my_profile())

    def get_user_profile(self, user_id: str) -> PublicUserProfile:
        """Raises ``BadRequestError`` (not a UUID) or ``NotFoundError``."""
        return self._send(self._core.get_user_profile(user_id))

    def update_my_logo(self, logo: str | None = None) -> dict[str, str]:
        """Set the logo (one of :meth:`get_available_logos`), or clear it with ``None``.
        Returns ``{"message", "logo"}`` (``""`` when cleared). Raises ``ValidationError``
        (unknown logo), ``PermissionDeniedError`` (viewers)."""
        return self._send(self._core.update_my_logo(logo))

    def update_my_webhook(self, webhook_url: str | None) -> dict[str, str]:
        """Set the http(s) URL that receives a POST per message for the caller, or clear it
        with ``None``. Returns ``{"message", "webhook_url"}`` with the URL as the server
        normalised it and, when a URL was set, ``"webhook_secret"``: the key that signs every
        request to it, shown only here. Raises ``ValidationError`` (also for a URL the server
        will not call, such as a loopback or private address), ``PermissionDeniedError``
        (viewers)."""
        return self._send(self._core.update_my_webhook(webhook_url))

    def rotate_webhook_secret(self) -> dict[str, str]:
        """Replace the caller's webhook secret; the old one stops signing at once. Returns
        ``{"message", "webhook_secret"}``. Raises ``BadRequestError`` without a webhook."""
        return self._send(self._core.rotate_webhook_secret())

    def get_my_webhook_deliveries(self, limit: int = 50) -> list[WebhookDelivery]:
        """The caller's newest webhook deliveries, newest first: delivery id, message id,
        URL (scheme, host and port), outcome (``delivered``, ``failed``,
        ``refused_address``), attempts, last status or error."""
        return self._send(self._core.get_my_webhook_deliveries(limit))

    def update_my_username(self, username: str) -> UserProfileResponse:
        """Rename the caller. Raises ``ConflictError`` (taken, including the current name),
        ``ValidationError``, ``PermissionDeniedError`` (viewers)."""
        return self._send(self._core.update_my_username(username))

    def regenerate_api_key(self) -> dict[str, str]:
        """Replace the caller's key; the old one stops working at once. Returns
        ``{"message", "api_key"}``, and this client switches to the new key."""
        return self._send(self._core.regenerate_api_key())

    # -- admin (PermissionDeniedError for non-admins) -----------------------------------------

    def admin_get_all_users(self) -> list[UserProfileResponse]:
        return self._send(self._core.admin_get_all_users())

    def admin_get_user(self, user_id: str) -> UserProfileResponse:
        """Raises ``BadRequestError`` (not a UUID) or ``NotFoundError``."""
        return self._send(self._core.admin_get_user(user_id))

    def admin_update_user(
        self, user_id: str, update_request: AdminUpdateUserRequest
    ) -> UserProfileResponse:
        """Change the fields set (non-``None``) in ``update_request``. Raises
        ``BadRequestError`` (nothing to change), ``NotFoundError``, ``ConflictError``."""
        return self._send(self._core.admin_update_user(user_id, update_request))

    def admin_delete_user(self, user_id: str) -> None:
        return self._send(self._core.admin_delete_user(user_id))

    def admin_get_message(self, message_id: str) -> MessageResponse:
        return self._send(self._core.admin_get_message(message_id))

    def admin_update_message(self, message_id: str, content: str) -> MessageResponse:
        return self._send(self._core.admin_update_message(message_id, content))

    def admin_delete_message(self, message_id: str) -> None:
        return self._send(self._core.admin_delete_message(message_id))

    def admin_delete_conversation(self, conversation_id: str) -> None:
        return self._send(self._core.admin_delete_conversation(conversation_id))

    def admin_assign_role(self, user_id: str, role: Role | str) -> AssignRoleResponse:
        """Raises ``ValidationError`` (unknown role), ``NotFoundError``."""
        return self._send(self._core.admin_assign_role(user_id, role))

    def admin_invite_user(
        self, email: str, signup_url: str, role: Role | str = Role.MEMBER
    ) -> InviteUserResponse:
        """Raises ``ServerError`` (503) when the server has no identity provider."""
        return self._send(self._core.admin_invite_user(email, signup_url, role))

    def admin_get_websocket_connections(self) -> WebSocketConnectionsResponse:
        """Every open WebSocket connection on the server (extension of the upstream API)."""
        return self._send(self._core.admin_get_websocket_connections())

    # -- bots --------------------------------------------------------------------------------

    def create_bot(
        self, username: str, emoji: str | None = None, webhook_url: str | None = None
    ) -> CreateBotResponse:
        """Create a bot owned by the caller; the result carries the bot's API key.
        Raises ``ConflictError``, ``ValidationError``, ``PermissionDeniedError`` (viewers,
        bots)."""
        return self._send(self._core.create_bot(username, emoji, webhook_url))

    def get_my_bots(self) -> list[BotProfileResponse]:
        return self._send(self._core.get_my_bots())

    def update_bot(
        self, bot_id: str, emoji: str | None = None, webhook_url: str | None = None
    ) -> BotProfileResponse:
        """Change the fields given; ``None`` leaves a field unchanged. Raises
        ``NotFoundError``, ``PermissionDeniedError`` (not the owner or an admin)."""
        return self._send(self._core.update_bot(bot_id, emoji, webhook_url))

    def delete_bot(self, bot_id: str) -> None:
        return self._send(self._core.delete_bot(bot_id))

    def regenerate_bot_api_key(self, bot_id: str) -> dict[str, str]:
        """Returns ``{"message", "api_key"}`` with the bot's new key."""
        return self._send(self._core.regenerate_bot_api_key(bot_id))

    # -- conversations -----------------------------------------------------------------------

    def create_conversation(
        self,
        title: str | None = None,
        description: str | None = None,
        message_ids: list[str] | None = None,
    ) -> ConversationResponse:
        """Save a titled list of message ids. Raises ``ValidationError`` (an id that is not
        a UUID), ``NotFoundError`` (no such message)."""
        return self._send(self._core.create_conversation(title, description, message_ids))

    def get_conversations(
        self, limit: int = 100, offset: int = 0
    ) -> PaginatedConversationsResponse:
        """The caller's conversations, newest first (``limit`` 1-100)."""
        return self._send(self._core.get_conversations(limit, offset))

    def get_conversation(self, conversation_id: str) -> ConversationResponse:
        """Raises ``NotFoundError``, ``PermissionDeniedError`` (someone else's)."""
        return self._send(self._core.get_conversation(conversation_id))

    def update_conversation(
        self,
        conversation_id: str,
        title: str | None = None,
        description: str | None = None,
        message_ids: list[str] | None = None,
    ) -> ConversationResponse:
        """Change the fields given; ``None`` leaves a field unchanged."""
        return self._send(
            self._core.update_conversation(conversation_id, title, description, message_ids)
        )

    def delete_conversation(self, conversation_id: str) -> None:
        return self._send(self._core.delete_conversation(conversation_id))

    # -- health ------------------------------------------------------------------------------

    def health_check(self) -> dict[str, str]:
        """``{"status": "healthy"}`` when the server is up. Needs no key."""
        return self._send(self._core.health_check())
