"""The bot-turn cap as a pure function: who is admitted, and the streak afterwards."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from token_bowl_chat_server.domain.bot_turns import Turn, admit_turns, streak_after

B, H, D = Turn.BOT_ROOM, Turn.HUMAN_ROOM, Turn.OTHER  # D: a DM


def test_the_turn_after_the_cap_is_refused_until_a_human_posts() -> None:
    outcome = admit_turns(0, [B, B, B, B, D, B, H, B, B, B, B], cap=3)
    assert outcome.admitted == (
        True, True, True, False, True, False, True, True, True, True, False
    )  # fmt: skip
    assert outcome.streak == 3


def test_a_streak_carried_in_from_earlier_batches_counts() -> None:
    assert admit_turns(2, [B, B], cap=3).admitted == (True, False)
    assert admit_turns(3, [B], cap=3).admitted == (False,)
    assert admit_turns(5, [H, B], cap=3) == admit_turns(0, [H, B], cap=3)


def test_refused_turns_do_not_lengthen_the_streak() -> None:
    outcome = admit_turns(3, [B, B, B], cap=3)
    assert outcome.admitted == (False, False, False)
    assert outcome.streak == 3


def test_dms_are_not_turns_in_the_room() -> None:
    outcome = admit_turns(1, [D, D, B, D], cap=2)
    assert outcome.admitted == (True, True, True, True)
    assert outcome.streak == 2


def test_cap_zero_admits_everything_and_still_counts() -> None:
    outcome = admit_turns(0, [B] * 50, cap=0)
    assert all(outcome.admitted)
    assert outcome.streak == 50


turns = st.lists(st.sampled_from([B, H, D]), max_size=60)


@given(start=st.integers(0, 30), cap=st.integers(1, 10), batch=turns)
def test_never_more_than_cap_bot_turns_in_a_row(start: int, cap: int, batch: list[Turn]) -> None:
    """Over the admitted room turns, a run of bot turns never exceeds the cap (counting the
    streak carried in, when it is within the cap), and a bot turn is refused only when the
    run is at the cap."""
    outcome = admit_turns(start, batch, cap)
    run = start
    for turn, admitted in zip(batch, outcome.admitted, strict=True):
        if turn is B:
            assert admitted == (run < cap)
            run += admitted
        elif turn is H:
            assert admitted
            run = 0
        else:
            assert admitted
    assert outcome.streak == run


@given(start=st.integers(0, 30), batch=turns)
def test_streak_after_agrees_with_admit_turns_without_a_cap(start: int, batch: list[Turn]) -> None:
    """The store's no-read shortcut (``reset``, ``added``) gives the same streak as judging."""
    reset, added = streak_after(batch)
    assert (added if reset else start + added) == admit_turns(start, batch, cap=0).streak
