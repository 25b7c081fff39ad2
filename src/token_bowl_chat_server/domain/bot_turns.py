"""The room's bot-turn cap: how many bot messages may follow each other with no human between.

Two bots answering each other would fill the room forever; the cap stops such a loop on the
server, whatever the bots do. The state is one number, the *streak*: room messages by bots
since the room's last message by a non-bot. It lives in the database next to the ``seq``
counter and is read and written in the transaction that stores the messages, under the same
row lock, so the decision is exact under any concurrency and across server processes.

Messages are judged in ``seq`` order. A refused message is not stored, so it does not lengthen
the streak; a human's room message resets it to zero; DMs do not touch it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Turn(Enum):
    """What one message is, as far as the streak is concerned."""

    HUMAN_ROOM = "human_room"  # a non-bot's room message: ends the streak
    BOT_ROOM = "bot_room"  # a bot's room message: one more in the streak, if the cap allows
    OTHER = "other"  # a DM: not a turn in the room


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    admitted: tuple[bool, ...]  # per message, in the order given
    streak: int  # the streak after every admitted message


def admit_turns(streak: int, turns: Sequence[Turn], cap: int) -> TurnOutcome:
    """Judge ``turns`` (in ``seq`` order) against ``cap`` starting from ``streak``.

    ``cap`` is the most bot room messages allowed in a row; the next one is refused until a
    human posts in the room. ``cap`` 0 means no cap: everything is admitted (the streak is
    still counted, so turning the cap on later judges from the truth).
    """
    admitted: list[bool] = []
    for turn in turns:
        if turn is Turn.HUMAN_ROOM:
            streak = 0
        elif turn is Turn.BOT_ROOM:
            if cap and streak >= cap:
                admitted.append(False)
                continue
            streak += 1
        admitted.append(True)
    return TurnOutcome(tuple(admitted), streak)


def streak_after(turns: Sequence[Turn]) -> tuple[bool, int]:
    """For admitted turns without a known starting streak: ``(reset, added)``, meaning the
    streak afterwards is ``added`` if ``reset`` (a human spoke), else the old one plus
    ``added``. Lets the store keep the streak with one UPDATE, without reading it first,
    when there is nothing to refuse."""
    reset = False
    added = 0
    for turn in turns:
        if turn is Turn.HUMAN_ROOM:
            reset, added = True, 0
        elif turn is Turn.BOT_ROOM:
            added += 1
    return reset, added
