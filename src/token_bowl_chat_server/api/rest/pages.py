"""Pagination query parameters shared by the list endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from token_bowl_chat.protocol.commands import DEFAULT_PAGE_LIMIT, MAX_OFFSET, MAX_PAGE_LIMIT

# Upstream accepts any integer (a negative limit returns everything, gap 17); we bound them.
# An offset beyond 64 bits would overflow the query's OFFSET: 422, not 500.
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
DEFAULT_LIMIT = DEFAULT_PAGE_LIMIT
