"""The public API is a contract (STYLE habit 9): the export list is checked name by name, and
importing the package must stay light (no server, web framework or ORM)."""

from __future__ import annotations

import json
import subprocess
import sys

import token_bowl_chat
import token_bowl_chat.models

EXPECTED = {
    # clients
    "AsyncTokenBowlClient",
    "TokenBowlClient",
    "TokenBowlWebSocket",
    # exceptions
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "ServerError",
    "TimeoutError",
    "TokenBowlError",
    "ValidationError",
    "ErrorCode",
    # models (the upstream client's top-level set)
    "AdminMessageUpdate",
    "AdminUpdateUserRequest",
    "ConversationResponse",
    "CreateConversationRequest",
    "HTTPValidationError",
    "MessageResponse",
    "MessageType",
    "PaginatedConversationsResponse",
    "PaginatedMessagesResponse",
    "PaginationMetadata",
    "PublicUserProfile",
    "Role",
    "SendMessageRequest",
    "StytchAuthenticateRequest",
    "StytchAuthenticateResponse",
    "StytchLoginRequest",
    "StytchLoginResponse",
    "UnreadCountResponse",
    "UpdateConversationRequest",
    "UpdateLogoRequest",
    "UpdateUsernameRequest",
    "UpdateWebhookRequest",
    "UserProfileResponse",
    "UserRegistration",
    "UserRegistrationResponse",
    "__version__",
}

# Upstream v2.1.1 defined these in token_bowl_chat.models without exporting them at the top.
UPSTREAM_MODELS_ONLY = {
    "AssignRoleRequest",
    "AssignRoleResponse",
    "BotProfileResponse",
    "CreateBotRequest",
    "CreateBotResponse",
    "InviteUserRequest",
    "InviteUserResponse",
    "UpdateBotRequest",
    "ValidationError",
}


def test_exported_names_are_exactly_the_expected_set() -> None:
    assert set(token_bowl_chat.__all__) == EXPECTED
    assert len(token_bowl_chat.__all__) == len(EXPECTED)  # no duplicates


def test_every_exported_name_exists() -> None:
    for name in token_bowl_chat.__all__:
        assert getattr(token_bowl_chat, name) is not None, name


def test_models_module_reexports_the_protocol_models() -> None:
    from token_bowl_chat.protocol import models as protocol_models

    for name in token_bowl_chat.models.__all__:
        assert getattr(token_bowl_chat.models, name) is getattr(protocol_models, name), name
    for name in set(token_bowl_chat.__all__) & set(token_bowl_chat.models.__all__):
        assert getattr(token_bowl_chat, name) is getattr(token_bowl_chat.models, name)
    for name in UPSTREAM_MODELS_ONLY:
        assert hasattr(token_bowl_chat.models, name), name
    # The 422 item model keeps its upstream name in the models module only.
    assert token_bowl_chat.models.ValidationError is token_bowl_chat.models.ValidationErrorItem
    assert "ValidationError" not in token_bowl_chat.models.__all__
    assert issubclass(token_bowl_chat.ValidationError, token_bowl_chat.TokenBowlError)


def test_exceptions_share_one_root() -> None:
    for name in token_bowl_chat.__all__:
        obj = getattr(token_bowl_chat, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, token_bowl_chat.TokenBowlError), name


def test_version_is_a_string() -> None:
    assert isinstance(token_bowl_chat.__version__, str)
    assert token_bowl_chat.__version__


def test_import_does_not_load_the_server_stack() -> None:
    # httpx itself loads its optional command line (rich, click) when those are installed,
    # so measure only what importing our package adds on top of httpx.
    code = (
        "import json, sys; import httpx; before = set(sys.modules); "
        "import token_bowl_chat, token_bowl_chat.models; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    loaded = {name.split(".")[0] for name in json.loads(out)}
    forbidden = {
        "token_bowl_chat_server",
        "fastapi",
        "starlette",
        "sqlalchemy",
        "uvicorn",
        "typer",
        "rich",
    }
    assert loaded.isdisjoint(forbidden), loaded & forbidden
    assert "token_bowl_chat" in loaded
