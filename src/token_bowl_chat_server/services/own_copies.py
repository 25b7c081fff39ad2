"""Copies of a user's own messages for the connections that asked for them.

The upstream protocol never delivers a message to its sender's connections: the sending one
gets the reply, the others nothing. A person with the page open in two tabs (or on a phone
and a laptop) would not see, in one, what they wrote in the other. A connection opened with
``?own_messages=1`` (extended protocol only) therefore gets a copy of each message its user
sends, from any connection or over REST: the usual delivery frame plus the sender's
``client_message_id``, so the connection that sent it can match the copy to its pending send.

It is opt-in because our SDK, like the published 2.x client, takes every delivery for a
message to report to ``on_message``: a bot answering every message would answer itself.
"""

from __future__ import annotations

import json

from token_bowl_chat_server.domain.entities import Message
from token_bowl_chat_server.realtime.audience import OwnCopies
from token_bowl_chat_server.services.ports import Publisher


def own_copy_text(delivery: str, msg: Message) -> str:
    """The delivery frame ``delivery`` (the message's encoded JSON object) with the message's
    ``client_message_id`` added, spliced in rather than encoded a second time."""
    if msg.client_message_id is None:
        return delivery
    return f'{delivery[:-1]},"client_message_id":{json.dumps(msg.client_message_id)}}}'


def publish_own_copy(publisher: Publisher, msg: Message, delivery: str) -> None:
    """Send the sender's opted-in connections their copy. No ``seq`` is given, on purpose: a
    connection drops a frame whose ``seq`` its replay has passed, and a replay (which sends
    only what upstream delivery would) never holds the sender's own messages."""
    if msg.from_user_id is not None:
        publisher.publish(OwnCopies(msg.from_user_id), own_copy_text(delivery, msg))
