"""Run a test against both REST clients: ``both`` yields a factory for the sync or the async
client, and ``call`` awaits a method's result only when it is a coroutine."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from token_bowl_chat import AsyncTokenBowlClient, TokenBowlClient

Client = TokenBowlClient | AsyncTokenBowlClient
Handler = Callable[[httpx.Request], httpx.Response]


async def call(client: Client, method: str, *args: Any, **kwargs: Any) -> Any:
    result = getattr(client, method)(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


async def close(client: Client) -> None:
    if isinstance(client, AsyncTokenBowlClient):
        await client.aclose()
    else:
        client.close()


@pytest.fixture(params=["sync", "async"])
async def make_client(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Client]]:
    """``make_client(handler=None, **kwargs)``: the parametrised client kind; with a handler,
    its requests go to an ``httpx.MockTransport``. Closed at the end of the test."""
    made: list[Client] = []

    def make(handler: Handler | None = None, **kwargs: Any) -> Client:
        if handler is not None:
            kwargs["transport"] = httpx.MockTransport(handler)
        client: Client = (
            TokenBowlClient(**kwargs) if request.param == "sync" else AsyncTokenBowlClient(**kwargs)
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await close(client)
