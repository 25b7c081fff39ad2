"""A key rotated while a socket is being opened with it (suspected defect of issue 7).

The rotation closes the user's sockets in the hub right after it commits. A connect that
authenticated just before the rotation, but joined the hub just after that sweep, would live
on with the dead key. The interleaving is forced: the server (real uvicorn) runs in the test's
own process, and the key is rotated right after the connect's authentication returns, before
the socket joins the hub.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets
from websockets.exceptions import ConnectionClosed

from tests.waiting import eventually
from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat_server.app import create_app
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.settings import Settings


async def test_a_socket_that_joins_after_the_rotation_sweep_is_closed(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws_ping_interval=None)
    )
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, 20, "the server did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            resp = await http.post("/register", json={"username": "alice"})
        assert resp.status_code == 201, resp.text
        key = resp.json()["api_key"]

        accounts = app.state.services.accounts
        authenticate = accounts.authenticate
        rotated: list[str] = []

        async def authenticate_then_rotate(api_key: str | None) -> User:
            found: User = await authenticate(api_key)
            if not rotated:  # the connect's own authentication: now the rotation wins
                rotated.append(await accounts.rotate_key(found))
            return found

        accounts.authenticate = authenticate_then_rotate
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws?api_key={key}&protocol_version=1.1"
        )
        assert rotated, "the rotation did not run inside the connect"
        with pytest.raises(ConnectionClosed):
            await ws.send(json.dumps({"type": "ping", "request_id": "alive?"}))
            async with asyncio.timeout(10):
                while True:
                    frame = json.loads(await ws.recv())
                    assert frame.get("type") != "pong", "the socket lives on with a dead key"
        assert ws.close_code == CloseCode.POLICY_VIOLATION
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 20)
