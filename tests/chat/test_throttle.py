"""The per-user search limit, on a fake clock."""

from __future__ import annotations

from bot.chat.throttle import SearchThrottle, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_user_past_the_limit_is_told_once_then_ignored_until_the_window_passes() -> None:
    clock = Clock()
    throttle = SearchThrottle(limit=3, seconds=30, clock=clock)
    assert [throttle.check(7) for _ in range(3)] == [Verdict.GO] * 3
    assert throttle.check(7) is Verdict.WAIT
    assert [throttle.check(7) for _ in range(20)] == [Verdict.QUIET] * 20
    assert throttle.check(8) is Verdict.GO  # another user is not held up
    assert throttle.retry_in(7) == 30
    clock.now += 29
    assert throttle.check(7) is Verdict.QUIET
    clock.now += 1.5
    assert throttle.check(7) is Verdict.GO
    assert throttle.retry_in(7) == 0


def test_the_window_slides() -> None:
    clock = Clock()
    throttle = SearchThrottle(limit=2, seconds=10, clock=clock)
    assert throttle.check(1) is Verdict.GO
    clock.now += 6
    assert throttle.check(1) is Verdict.GO
    assert throttle.check(1) is Verdict.WAIT
    clock.now += 5  # the first search left the window, the second did not
    assert throttle.check(1) is Verdict.GO
    assert throttle.check(1) is Verdict.WAIT


def test_quiet_users_are_forgotten() -> None:
    clock = Clock()
    throttle = SearchThrottle(limit=1, seconds=10, clock=clock)
    for user in range(1000):
        throttle.check(user)
    clock.now += 11
    throttle.check(5000)
    assert len(throttle._starts) == 1
