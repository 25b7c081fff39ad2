"""The inbound frame budget and the connection caps, as pure rules of (state, now)."""

from __future__ import annotations

from token_bowl_chat_server.domain.frame_budget import FrameBudget, Verdict
from token_bowl_chat_server.realtime.admission import ConnectionCaps, Refusal


def test_a_burst_is_accepted_then_refused_then_refilled() -> None:
    budget = FrameBudget(rate=10, burst=5, now=0.0)
    assert [budget.admit(0.0) for _ in range(5)] == [Verdict.ACCEPT] * 5
    assert budget.admit(0.0) is Verdict.REFUSE
    assert budget.retry_after() > 0
    assert budget.admit(0.1) is Verdict.ACCEPT  # one token per 1/rate seconds


def test_sustained_abuse_closes_and_occasional_overshoot_does_not() -> None:
    budget = FrameBudget(rate=10, burst=5, now=0.0)
    verdicts = [budget.admit(0.0) for _ in range(11)]
    assert verdicts[:5] == [Verdict.ACCEPT] * 5
    assert verdicts[5:10] == [Verdict.REFUSE] * 5  # burst refusals, each answered
    assert verdicts[10] is Verdict.CLOSE

    polite = FrameBudget(rate=10, burst=5, now=0.0)
    now = 0.0
    for _ in range(1000):  # 5 % over the rate, for 100 s: refused now and then, never closed
        now += 1 / 10.5
        assert polite.admit(now) is not Verdict.CLOSE


def test_caps_refuse_per_user_and_per_address_and_release_slots() -> None:
    caps = ConnectionCaps(per_user=2, per_address=3)
    assert caps.acquire("alice", "a") is None
    assert caps.acquire("alice", "a") is None
    assert caps.acquire("alice", "b") is Refusal.USER
    assert caps.acquire("bob", "a") is None
    assert caps.acquire("carol", "a") is Refusal.ADDRESS
    caps.release("alice", "a")
    assert caps.acquire("carol", "a") is None
    assert caps.refused == 2
    for user in ("alice", "bob", "carol"):
        caps.release(user, "a")
    assert caps.acquire("alice", "a") is None and caps.acquire("alice", "a") is None
