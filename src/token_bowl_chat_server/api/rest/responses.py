"""The error responses each REST operation documents in ``/openapi.json``.

FastAPI documents only the success status and its own 422 shape. Our errors all share one
body, ``{"detail": ..., "code": ...}`` (api/errors.py), with ``code`` from the stable set in
``token_bowl_chat.protocol.errors``; routers list the statuses an operation can answer with
``responses=errors(...)``, so clients (and schemathesis) can rely on the document.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat_server.api.errors import ErrorJSONResponse
from token_bowl_chat_server.services.messages import Published, SendOutcome, reply_wire


class ErrorResponse(BaseModel):
    """Every REST error body. ``detail`` is upstream's human-readable text, or for 422 the
    list of validation errors; ``code`` is what a program should branch on."""

    detail: str | list[dict[str, Any]]
    code: ErrorCode


_DESCRIPTIONS = {
    400: "Refused input; `code` says why (invalid_timestamp, invalid_id, ...)",
    401: "Missing or unknown API key (authentication_required)",
    403: "The caller's role may not do this",
    404: "Unknown, or not visible to the caller",
    409: "Conflicts with existing state (username_taken, client_message_id_conflict)",
    422: "Validation failed (validation_error, invalid_json, ...)",
    429: "Rate limited (rate_limited); retry after the Retry-After header's seconds",
    503: "Not available on this server",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: each status with the shared error body."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        for status in statuses
    }


def encoded(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as a JSON response, encoded once. Returning a ``Response`` skips FastAPI's
    response-model pass, which validates the model again before encoding it; the hot routes
    (a send, the unread count) keep ``response_model=`` for the document."""
    try:
        body = model.model_dump_json()
    except PydanticSerializationError:
        # Text with a lone surrogate (JSON's "\ud800" escape decodes to one) cannot be UTF-8.
        return ErrorJSONResponse(model.model_dump(mode="json"), status_code)
    return Response(body, status_code, media_type="application/json")


def sent_message(outcome: SendOutcome) -> Response:
    """201 with the message a send stored, in the JSON text it was delivered in if this send
    delivered it (raises the error of a send refused in its commit). Both replace a lone
    surrogate with U+FFFD, so the text is the same as ``encoded`` would make."""
    if isinstance(outcome, Published):
        return Response(outcome.text, 201, media_type="application/json")
    return encoded(reply_wire(outcome), 201)
