"""Token Bowl Chat: the Python SDK.

    from token_bowl_chat import TokenBowlClient

    with TokenBowlClient(api_key="...", base_url="http://localhost:8000") as client:
        client.send_message("hello")

``TokenBowlClient`` / ``AsyncTokenBowlClient`` speak REST; ``TokenBowlWebSocket`` is the
real-time connection. Every error raised on purpose is a ``TokenBowlError`` (see
``token_bowl_chat.exceptions`` for the tree). All wire models live in ``token_bowl_chat.models``;
the most used ones are re-exported here. Importing this package never imports the server.
"""

from token_bowl_chat._version import __version__
from token_bowl_chat.async_client import AsyncTokenBowlClient
from token_bowl_chat.client import TokenBowlClient
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
)
from token_bowl_chat.models import (
    AdminMessageUpdate,
    AdminUpdateUserRequest,
    ConversationResponse,
    CreateConversationRequest,
    HTTPValidationError,
    MessageResponse,
    MessageType,
    PaginatedConversationsResponse,
    PaginatedMessagesResponse,
    PaginationMetadata,
    PublicUserProfile,
    Role,
    SendMessageRequest,
    StytchAuthenticateRequest,
    StytchAuthenticateResponse,
    StytchLoginRequest,
    StytchLoginResponse,
    UnreadCountResponse,
    UpdateConversationRequest,
    UpdateLogoRequest,
    UpdateUsernameRequest,
    UpdateWebhookRequest,
    UserProfileResponse,
    UserRegistration,
    UserRegistrationResponse,
)
from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.websocket import TokenBowlWebSocket

__all__ = [
    "AdminMessageUpdate",
    "AdminUpdateUserRequest",
    "AsyncTokenBowlClient",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ConversationResponse",
    "CreateConversationRequest",
    "ErrorCode",
    "HTTPValidationError",
    "MessageResponse",
    "MessageType",
    "NetworkError",
    "NotFoundError",
    "PaginatedConversationsResponse",
    "PaginatedMessagesResponse",
    "PaginationMetadata",
    "PermissionDeniedError",
    "ProtocolError",
    "PublicUserProfile",
    "RateLimitError",
    "Role",
    "SendMessageRequest",
    "ServerError",
    "StytchAuthenticateRequest",
    "StytchAuthenticateResponse",
    "StytchLoginRequest",
    "StytchLoginResponse",
    "TimeoutError",
    "TokenBowlClient",
    "TokenBowlError",
    "TokenBowlWebSocket",
    "UnreadCountResponse",
    "UpdateConversationRequest",
    "UpdateLogoRequest",
    "UpdateUsernameRequest",
    "UpdateWebhookRequest",
    "UserProfileResponse",
    "UserRegistration",
    "UserRegistrationResponse",
    "ValidationError",
    "__version__",
]
