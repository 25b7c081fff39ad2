"""The no-I/O core shared by ``TokenBowlClient`` and ``AsyncTokenBowlClient``.

The core resolves settings, describes every endpoint as a :class:`Call` (method, path, query,
JSON body, whether a key is needed, how to read the answer), prepares the request and turns the
response into a model or an exception. It never touches the network: each client only sends
what :meth:`ClientCore.prepare` returns and hands the response back to
:meth:`ClientCore.handle`, so the sync and async clients differ in one ``_send`` method
(the httpx design, STYLE habit 8).

Arguments that cannot form a request at all (an empty id) raise ``ValueError`` before any I/O;
everything else is left to the server to judge, so its answer (a ``ValidationError``) is the one
source of truth for limits.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from token_bowl_chat._version import __version__
from token_bowl_chat.exceptions import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ServerError,
    TimeoutError,
    TokenBowlError,
    ValidationError,
    response_body,
)
from token_bowl_chat.protocol.models import (
    AdminUpdateUserRequest,
    ApiKeyResponse,
    AssignRoleResponse,
    BotProfileResponse,
    ConversationResponse,
    CreateBotResponse,
    HealthResponse,
    InviteUserResponse,
    LogoUpdateResponse,
    MarkAllReadResponse,
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
    WebhookSecretResponse,
    WebhookUpdateResponse,
    WebSocketConnectionsResponse,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
V = TypeVar("V")

API_KEY_ENV = "TOKEN_BOWL_CHAT_API_KEY"
BASE_URL_ENV = "TOKEN_BOWL_CHAT_BASE_URL"
DEFAULT_BASE_URL = "http://localhost:8000"
DEFAULT_TIMEOUT = 30.0
API_KEY_HEADER = "X-API-Key"

# One table from HTTP status to exception class; >= 500 is ServerError, other 4xx the root.
STATUS_ERRORS: dict[int, type[TokenBowlError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}

_WS_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


# --- settings -------------------------------------------------------------------------------


def normalize_base_url(url: str) -> str:
    """The REST base for ``url``: ``ws``/``wss`` become ``http``/``https``, and a trailing ``/``
    and ``/ws`` are dropped, so the WebSocket URL of a server works as its REST URL too.

    Raises ``ValueError`` for another scheme, a missing host, or a query string or fragment
    (a key belongs in ``api_key=``, never in a URL that ends up in logs).
    """
    parts = urlsplit(url.strip())
    scheme = _WS_SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"base_url must be an http(s):// or ws(s):// URL with a host: {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not carry a query string or fragment: {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/ws"):
        path = path[: -len("/ws")].rstrip("/")
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def resolve_api_key(api_key: str | None, environ: Mapping[str, str]) -> str | None:
    """``api_key`` if given and non-empty, else ``$TOKEN_BOWL_CHAT_API_KEY``, else ``None``."""
    return api_key or environ.get(API_KEY_ENV) or None


def resolve_base_url(base_url: str | None, environ: Mapping[str, str]) -> str:
    """``base_url``, else ``$TOKEN_BOWL_CHAT_BASE_URL``, else ``http://localhost:8000``,
    normalised by :func:`normalize_base_url`."""
    return normalize_base_url(base_url or environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL)


USER_AGENT = f"token-bowl-chat-python/{__version__}"


# --- request descriptions -------------------------------------------------------------------

Params = dict[str, str | int]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One endpoint call, described without I/O. ``parse`` turns the decoded JSON body into
    the result; for ``expects_body=False`` (204 endpoints) it receives ``None``."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Params | None = None
    json: dict[str, Any] | None = None
    auth: bool = True
    expects_body: bool = True


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the adapter passes to httpx: everything needed to send, nothing to interpret."""

    method: str
    url: str
    params: Params | None
    json: dict[str, Any] | None
    headers: dict[str, str]


def _segment(name: str, value: str) -> str:
    # Quote everything, "/" included: an id must never reach a different route.
    if not value:
        raise ValueError(f"{name} must be a non-empty string")
    return quote(str(value), safe="")


def _since(value: str | datetime | None) -> str | None:
    # The server compares timestamps in UTC; a naive datetime is taken to be UTC already.
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return value


def _page(limit: int, offset: int, since: str | datetime | None = None) -> Params:
    params: Params = {"limit": limit, "offset": offset}
    since_text = _since(since)
    if since_text is not None:
        params["since"] = since_text
    return params


def _without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _nothing(_: Any) -> None:
    return None


def _model(cls: type[M]) -> Callable[[Any], M]:
    return cls.model_validate


def _as_dict(cls: type[BaseModel], _values: type[V]) -> Callable[[Any], dict[str, V]]:
    """Check the body against ``cls`` but return the body itself: these endpoints return
    plain dicts in the upstream client's API, so callers index them (``result["api_key"]``)."""

    def parse(data: Any) -> dict[str, V]:
        cls.model_validate(data)
        return cast(dict[str, V], data)

    return parse


_messages = TypeAdapter(list[MessageResponse]).validate_python
_public_profiles = TypeAdapter(list[PublicUserProfile]).validate_python
_private_profiles = TypeAdapter(list[UserProfileResponse]).validate_python
_bots = TypeAdapter(list[BotProfileResponse]).validate_python
_strings = TypeAdapter(list[str]).validate_python


# --- responses to results or exceptions -----------------------------------------------------


def error_message(response: httpx.Response) -> str:
    """The server's ``detail`` when it is a string; otherwise the body as text."""
    body = response_body(response)
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return cast(str, body["detail"])
    if body is not None:
        return str(body)
    return response.text or f"HTTP {response.status_code}"


def error_from_response(response: httpx.Response) -> TokenBowlError:
    """The exception for an error response (status >= 400), per :data:`STATUS_ERRORS`."""
    status = response.status_code
    cls = STATUS_ERRORS.get(status) or (ServerError if status >= 500 else TokenBowlError)
    return cls(error_message(response), response)


def request_error(exc: httpx.RequestError, prepared: Prepared) -> TokenBowlError:
    """The exception for a request that got no usable response."""
    where = f"{prepared.method} {prepared.url}"
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(f"{where}: request timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.TransportError):
        return NetworkError(f"{where}: could not reach the server ({exc or type(exc).__name__})")
    # e.g. httpx.DecodingError: bytes arrived, but not a body we can read.
    return ProtocolError(f"{where}: unreadable response ({exc or type(exc).__name__})")


class ClientCore:
    """Settings plus one method per endpoint returning its :class:`Call`.

    ``api_key`` is mutable: a successful :meth:`regenerate_api_key` call replaces it, because
    the old key stops working at once and the client would otherwise be unusable.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.api_key = resolve_api_key(api_key, env)
        self.base_url = resolve_base_url(base_url, env)

    # -- the two steps around the adapter's send ---------------------------------------------

    def prepare(self, call: Call[Any]) -> Prepared:
        """The request to send. Raises ``AuthenticationError`` (before any I/O) when the call
        needs a key and there is none."""
        if call.auth and not self.api_key:
            raise AuthenticationError("API key required for this operation")
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.api_key:
            # The header, never the query string: query strings end up in access logs.
            headers[API_KEY_HEADER] = self.api_key
        return Prepared(
            method=call.method,
            url=self.base_url + call.path,
            params=call.params,
            json=call.json,
            headers=headers,
        )

    def handle(self, call: Call[T], response: httpx.Response) -> T:
        """The call's result from a read response. Raises the :data:`STATUS_ERRORS` exception
        for status >= 400, and ``ProtocolError`` for a redirect or a body that is not JSON of
        the expected shape."""
        if response.status_code >= 400:
            raise error_from_response(response)
        if response.status_code >= 300:
            # Redirects are not followed: re-sending a POST and the key to another URL is not
            # something to do silently. Usually base_url is http:// for an https:// server.
            location = response.headers.get("Location", "?")
            raise ProtocolError(
                f"unexpected redirect {response.status_code} to {location}; check base_url",
                response,
            )
        if not call.expects_body:
            return call.parse(None)
        try:
            data = response.json()
        except ValueError:
            raise ProtocolError(
                f"{call.method} {call.path}: response is not JSON", response
            ) from None
        try:
            return call.parse(data)
        except PydanticValidationError as exc:
            raise ProtocolError(
                f"{call.method} {call.path}: unexpected response shape: {exc}", response
            ) from exc

    # -- registration and magic link (public) ------------------------------------------------

    def register(
        self, username: str, webhook_url: str | None = None, logo: str | None = None
    ) -> Call[UserRegistrationResponse]:
        body = _without_none(username=username, webhook_url=webhook_url, logo=logo)
        return Call("POST", "/register", _model(UserRegistrationResponse), json=body, auth=False)

    def send_magic_link(self, email: str, username: str | None = None) -> Call[StytchLoginResponse]:
        body = _without_none(email=email, username=username)
        return Call(
            "POST", "/auth/magic-link/send", _model(StytchLoginResponse), json=body, auth=False
        )

    def authenticate_magic_link(self, token: str) -> Call[StytchAuthenticateResponse]:
        return Call(
            "POST",
            "/auth/magic-link/authenticate",
            _model(StytchAuthenticateResponse),
            json={"token": token},
            auth=False,
        )

    # -- messages ----------------------------------------------------------------------------

    def send_message(
        self, content: str, to_username: str | None = None, client_message_id: str | None = None
    ) -> Call[MessageResponse]:
        body = _without_none(
            content=content, to_username=to_username, client_message_id=client_message_id
        )
        return Call("POST", "/messages", _model(MessageResponse), json=body)

    def get_messages(
        self, limit: int, offset: int, since: str | datetime | None
    ) -> Call[PaginatedMessagesResponse]:
        params = _page(limit, offset, since)
        return Call("GET", "/messages", _model(PaginatedMessagesResponse), params=params)

    def get_direct_messages(
        self, limit: int, offset: int, since: str | datetime | None
    ) -> Call[PaginatedMessagesResponse]:
        params = _page(limit, offset, since)
        return Call("GET", "/messages/direct", _model(PaginatedMessagesResponse), params=params)

    def get_message(self, message_id: str) -> Call[MessageResponse]:
        path = f"/messages/{_segment('message_id', message_id)}"
        return Call("GET", path, _model(MessageResponse))

    def edit_message(self, message_id: str, content: str) -> Call[MessageResponse]:
        path = f"/messages/{_segment('message_id', message_id)}"
        return Call("PATCH", path, _model(MessageResponse), json={"content": content})

    def delete_message(self, message_id: str) -> Call[None]:
        path = f"/messages/{_segment('message_id', message_id)}"
        return Call("DELETE", path, _nothing, expects_body=False)

    def get_unread_messages(self, limit: int, offset: int) -> Call[list[MessageResponse]]:
        return Call("GET", "/messages/unread", _messages, params=_page(limit, offset))

    def get_unread_direct_messages(self, limit: int, offset: int) -> Call[list[MessageResponse]]:
        return Call("GET", "/messages/direct/unread", _messages, params=_page(limit, offset))

    def get_unread_count(self) -> Call[UnreadCountResponse]:
        return Call("GET", "/messages/unread/count", _model(UnreadCountResponse))

    def mark_message_read(self, message_id: str) -> Call[None]:
        path = f"/messages/{_segment('message_id', message_id)}/read"
        return Call("POST", path, _nothing, expects_body=False)

    def mark_all_messages_read(self) -> Call[dict[str, int]]:
        return Call("POST", "/messages/mark-all-read", _as_dict(MarkAllReadResponse, int))

    # -- users, presence, profile ------------------------------------------------------------

    def get_users(self) -> Call[list[PublicUserProfile]]:
        return Call("GET", "/users", _public_profiles)

    def get_online_users(self) -> Call[list[PublicUserProfile]]:
        return Call("GET", "/users/online", _public_profiles)

    def get_available_logos(self) -> Call[list[str]]:
        return Call("GET", "/logos", _strings, auth=False)

    def get_my_profile(self) -> Call[UserProfileResponse]:
        return Call("GET", "/users/me", _model(UserProfileResponse))

    def get_user_profile(self, user_id: str) -> Call[PublicUserProfile]:
        path = f"/users/{_segment('user_id', user_id)}"
        return Call("GET", path, _model(PublicUserProfile))

    def update_my_logo(self, logo: str | None) -> Call[dict[str, str]]:
        return Call(
            "PATCH", "/users/me/logo", _as_dict(LogoUpdateResponse, str), json={"logo": logo}
        )

    def update_my_webhook(self, webhook_url: str | None) -> Call[dict[str, str]]:
        return Call(
            "PATCH",
            "/users/me/webhook",
            _as_dict(WebhookUpdateResponse, str),
            json={"webhook_url": webhook_url},
        )

    def rotate_webhook_secret(self) -> Call[dict[str, str]]:
        return Call("POST", "/users/me/webhook/secret", _as_dict(WebhookSecretResponse, str))

    def get_my_webhook_deliveries(self, limit: int) -> Call[list[WebhookDelivery]]:
        return Call(
            "GET",
            "/users/me/webhook/deliveries",
            TypeAdapter(list[WebhookDelivery]).validate_python,
            params={"limit": limit},
        )

    def update_my_username(self, username: str) -> Call[UserProfileResponse]:
        return Call(
            "PATCH",
            "/users/me/username",
            _model(UserProfileResponse),
            json={"username": username},
        )

    def regenerate_api_key(self) -> Call[dict[str, str]]:
        check = _as_dict(ApiKeyResponse, str)

        def adopt(data: Any) -> dict[str, str]:
            result = check(data)
            self.api_key = result["api_key"]
            return result

        return Call("POST", "/users/me/regenerate-api-key", adopt)

    # -- admin -------------------------------------------------------------------------------

    def admin_get_all_users(self) -> Call[list[UserProfileResponse]]:
        return Call("GET", "/admin/users", _private_profiles)

    def admin_get_user(self, user_id: str) -> Call[UserProfileResponse]:
        path = f"/admin/users/{_segment('user_id', user_id)}"
        return Call("GET", path, _model(UserProfileResponse))

    def admin_update_user(
        self, user_id: str, update_request: AdminUpdateUserRequest
    ) -> Call[UserProfileResponse]:
        path = f"/admin/users/{_segment('user_id', user_id)}"
        body = update_request.model_dump(mode="json", exclude_none=True)
        return Call("PATCH", path, _model(UserProfileResponse), json=body)

    def admin_delete_user(self, user_id: str) -> Call[None]:
        path = f"/admin/users/{_segment('user_id', user_id)}"
        return Call("DELETE", path, _nothing, expects_body=False)

    def admin_get_message(self, message_id: str) -> Call[MessageResponse]:
        path = f"/admin/messages/{_segment('message_id', message_id)}"
        return Call("GET", path, _model(MessageResponse))

    def admin_update_message(self, message_id: str, content: str) -> Call[MessageResponse]:
        path = f"/admin/messages/{_segment('message_id', message_id)}"
        return Call("PATCH", path, _model(MessageResponse), json={"content": content})

    def admin_delete_message(self, message_id: str) -> Call[None]:
        path = f"/admin/messages/{_segment('message_id', message_id)}"
        return Call("DELETE", path, _nothing, expects_body=False)

    def admin_delete_conversation(self, conversation_id: str) -> Call[None]:
        path = f"/admin/conversations/{_segment('conversation_id', conversation_id)}"
        return Call("DELETE", path, _nothing, expects_body=False)

    def admin_assign_role(self, user_id: str, role: Role | str) -> Call[AssignRoleResponse]:
        path = f"/admin/users/{_segment('user_id', user_id)}/role"
        return Call("PATCH", path, _model(AssignRoleResponse), json={"role": str(role)})

    def admin_invite_user(
        self, email: str, signup_url: str, role: Role | str
    ) -> Call[InviteUserResponse]:
        body = {"email": email, "role": str(role), "signup_url": signup_url}
        return Call("POST", "/admin/invite", _model(InviteUserResponse), json=body)

    def admin_get_websocket_connections(self) -> Call[WebSocketConnectionsResponse]:
        return Call("GET", "/admin/websocket/connections", _model(WebSocketConnectionsResponse))

    # -- bots --------------------------------------------------------------------------------

    def create_bot(
        self, username: str, emoji: str | None, webhook_url: str | None
    ) -> Call[CreateBotResponse]:
        body = _without_none(username=username, emoji=emoji, webhook_url=webhook_url)
        return Call("POST", "/bots", _model(CreateBotResponse), json=body)

    def get_my_bots(self) -> Call[list[BotProfileResponse]]:
        return Call("GET", "/bots/me", _bots)

    def update_bot(
        self, bot_id: str, emoji: str | None, webhook_url: str | None
    ) -> Call[BotProfileResponse]:
        path = f"/bots/{_segment('bot_id', bot_id)}"
        body = _without_none(emoji=emoji, webhook_url=webhook_url)
        return Call("PATCH", path, _model(BotProfileResponse), json=body)

    def delete_bot(self, bot_id: str) -> Call[None]:
        path = f"/bots/{_segment('bot_id', bot_id)}"
        return Call("DELETE", path, _nothing, expects_body=False)

    def regenerate_bot_api_key(self, bot_id: str) -> Call[dict[str, str]]:
        path = f"/bots/{_segment('bot_id', bot_id)}/regenerate-api-key"
        return Call("POST", path, _as_dict(ApiKeyResponse, str))

    # -- conversations -----------------------------------------------------------------------

    def create_conversation(
        self, title: str | None, description: str | None, message_ids: list[str] | None
    ) -> Call[ConversationResponse]:
        body = _without_none(title=title, description=description)
        body["message_ids"] = list(message_ids or [])
        return Call("POST", "/conversations", _model(ConversationResponse), json=body)

    def get_conversations(self, limit: int, offset: int) -> Call[PaginatedConversationsResponse]:
        return Call(
            "GET",
            "/conversations",
            _model(PaginatedConversationsResponse),
            params=_page(limit, offset),
        )

    def get_conversation(self, conversation_id: str) -> Call[ConversationResponse]:
        path = f"/conversations/{_segment('conversation_id', conversation_id)}"
        return Call("GET", path, _model(ConversationResponse))

    def update_conversation(
        self,
        conversation_id: str,
        title: str | None,
        description: str | None,
        message_ids: list[str] | None,
    ) -> Call[ConversationResponse]:
        path = f"/conversations/{_segment('conversation_id', conversation_id)}"
        body = _without_none(title=title, description=description, message_ids=message_ids)
        return Call("PATCH", path, _model(ConversationResponse), json=body)

    def delete_conversation(self, conversation_id: str) -> Call[None]:
        path = f"/conversations/{_segment('conversation_id', conversation_id)}"
        return Call("DELETE", path, _nothing, expects_body=False)

    # -- health ------------------------------------------------------------------------------

    def health_check(self) -> Call[dict[str, str]]:
        return Call("GET", "/health", _as_dict(HealthResponse, str), auth=False)
