from __future__ import annotations

from token_bowl_chat_server.domain.presence import Presence


def test_online_until_the_last_connection_closes() -> None:
    presence = Presence()
    assert presence.connect("a")
    assert not presence.connect("a")
    assert not presence.disconnect("a")
    assert presence.is_online("a")
    assert presence.disconnect("a")
    assert not presence.is_online("a")
    assert not presence.disconnect("a")


def test_order_is_when_users_came_online() -> None:
    presence = Presence()
    for user in ("a", "b", "c"):
        presence.connect(user)
    presence.connect("a")  # a second tab keeps a's place
    assert presence.online() == ["a", "b", "c"]
    presence.disconnect("a")
    presence.disconnect("a")
    presence.connect("a")  # back after being offline: now last
    assert presence.online() == ["b", "c", "a"]
