"""The account lockout rule (the guide's procedure) and the per-address rate limit."""

from __future__ import annotations

import asyncio
import dataclasses
from enum import Enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.security.lockout import (
    MAX_ADDRESS_KEY_LENGTH,
    AddressRateLimiter,
    LockoutPolicy,
    address_key,
    is_locked,
    register_failure,
)

T0 = 1_700_000_000.0


class Outcome(Enum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"


class Account:
    """What the login code does with the rule: check the lock first, then the password."""

    def __init__(self, policy: LockoutPolicy | None = None) -> None:
        self.policy = policy or LockoutPolicy()
        self.failures = 0
        self.locked_until = 0.0

    def login(self, now: float, *, is_right: bool) -> Outcome:
        if is_locked(self.locked_until, now):
            return Outcome.LOCKED
        if is_right:
            self.failures, self.locked_until = 0, 0.0
            return Outcome.OK
        self.failures, locked_until = register_failure(self.failures, now, self.policy)
        self.locked_until = locked_until or self.locked_until
        return Outcome.LOCKED if is_locked(self.locked_until, now) else Outcome.WRONG

    def fail(self, times: int, now: float) -> list[Outcome]:
        return [self.login(now, is_right=False) for _ in range(times)]


def test_the_guides_procedure():
    account = Account()
    # 10 wrong passwords: the 10th locks for 10 minutes.
    assert account.fail(9, T0) == [Outcome.WRONG] * 9
    assert account.login(T0, is_right=False) is Outcome.LOCKED
    assert account.locked_until == T0 + 600
    # While locked, even the right password is refused, and nothing counts.
    assert account.login(T0 + 1, is_right=True) is Outcome.LOCKED
    assert account.fail(50, T0 + 2) == [Outcome.LOCKED] * 50
    assert account.failures == 10
    assert account.login(T0 + 599.9, is_right=True) is Outcome.LOCKED
    # After the lock, 5 more wrong passwords lock for 60 minutes.
    now = T0 + 600
    assert account.fail(4, now) == [Outcome.WRONG] * 4
    assert account.login(now, is_right=False) is Outcome.LOCKED
    assert account.locked_until == now + 3600
    assert account.login(now + 3599, is_right=True) is Outcome.LOCKED
    # And again: 5 more after that lock, 60 minutes again.
    now += 3600
    assert account.fail(4, now) == [Outcome.WRONG] * 4
    assert account.login(now, is_right=False) is Outcome.LOCKED
    assert account.locked_until == now + 3600
    assert account.failures == 20


def test_a_success_resets_the_count():
    account = Account()
    account.fail(9, T0)
    assert account.login(T0, is_right=True) is Outcome.OK
    assert account.failures == 0
    # The next lock is again the first one: 10 failures, 10 minutes.
    assert account.fail(9, T0) == [Outcome.WRONG] * 9
    assert account.login(T0, is_right=False) is Outcome.LOCKED
    assert account.locked_until == T0 + 600


def test_a_success_after_a_long_lock_starts_over_at_the_first_lock():
    account = Account()
    account.fail(15, T0)  # the 15th is refused as locked: only 10 counted
    now = T0 + 600
    account.fail(5, now)
    assert account.locked_until == now + 3600
    now += 3600
    assert account.login(now, is_right=True) is Outcome.OK
    account.fail(10, now)
    assert account.locked_until == now + 600


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        (0, (1, 0.0)),
        (8, (9, 0.0)),
        (9, (10, T0 + 600)),
        (10, (11, 0.0)),
        (13, (14, 0.0)),
        (14, (15, T0 + 3600)),
        (17, (18, 0.0)),
        (19, (20, T0 + 3600)),
        (104, (105, T0 + 3600)),
    ],
)
def test_register_failure(failures, expected):
    assert register_failure(failures, T0, LockoutPolicy()) == expected


def test_a_failure_while_locked_does_not_count():
    assert register_failure(10, T0 + 10, locked_until=T0 + 600) == (10, T0 + 600)
    assert register_failure(10, T0 + 600, locked_until=T0 + 600) == (11, 0.0)


def test_is_locked_until_the_exact_end():
    assert is_locked(T0 + 600, T0)
    assert is_locked(T0 + 600, T0 + 599.999)
    assert not is_locked(T0 + 600, T0 + 600)
    assert not is_locked(0.0, T0)


def test_a_custom_policy():
    policy = LockoutPolicy(first_lock_failures=3, first_lock_s=60, further_lock_failures=2,
                           further_lock_s=120)  # fmt: skip
    counts = [register_failure(n, T0, policy) for n in range(6)]
    assert counts == [(1, 0.0), (2, 0.0), (3, T0 + 60), (4, 0.0), (5, T0 + 120), (6, 0.0)]


@pytest.mark.parametrize(
    "fields",
    [
        {"first_lock_failures": 0},
        {"further_lock_failures": 0},
        {"first_lock_s": 0},
        {"further_lock_s": -1},
    ],
)
def test_a_policy_that_never_locks_is_refused(fields):
    with pytest.raises(ValueError, match="lock"):
        LockoutPolicy(**fields)


def test_the_policy_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LockoutPolicy().first_lock_s = 1  # type: ignore[misc]  # the point of the test


# -- address groups


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8::ffff:1234:1", "2001:db8::/64"),
        ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", "testclient"),
        ("x" * 500, "x" * MAX_ADDRESS_KEY_LENGTH),
    ],
)
def test_address_key(address, key):
    assert address_key(address) == key


# -- the rate limiter


def test_one_address_meets_the_account_lock_before_the_rate_limit():
    # The guide's check from one browser: 10 wrong, see the lock, a few more tries.
    limiter, account = AddressRateLimiter(), Account()
    outcomes = [
        account.login(T0, is_right=False) if limiter.allow("192.0.2.1", T0) else None
        for _ in range(15)
    ]
    assert outcomes == [Outcome.WRONG] * 9 + [Outcome.LOCKED] * 6


def test_a_burst_then_one_attempt_per_second():
    limiter = AddressRateLimiter(burst=10, refill_per_s=1.0)
    assert [limiter.allow("192.0.2.1", T0) for _ in range(11)] == [True] * 10 + [False]
    assert not limiter.allow("192.0.2.1", T0 + 0.5)
    assert limiter.allow("192.0.2.1", T0 + 1.0)
    assert not limiter.allow("192.0.2.1", T0 + 1.0)


def test_a_refused_attempt_costs_nothing():
    limiter = AddressRateLimiter(burst=2, refill_per_s=1.0)
    limiter.allow("192.0.2.1", T0)
    limiter.allow("192.0.2.1", T0)
    assert not any(limiter.allow("192.0.2.1", T0 + 0.1 * n) for n in range(10))
    assert limiter.allow("192.0.2.1", T0 + 1.0)


def test_refill_stops_at_the_burst():
    limiter = AddressRateLimiter(burst=3, refill_per_s=1.0)
    limiter.allow("192.0.2.1", T0)
    results = [limiter.allow("192.0.2.1", T0 + 1000) for _ in range(4)]
    assert results == [True, True, True, False]


def test_addresses_have_their_own_buckets_and_a_64_shares_one():
    limiter = AddressRateLimiter(burst=1, refill_per_s=1.0)
    assert limiter.allow("2001:db8::1", T0)
    assert not limiter.allow("2001:db8::2", T0)  # same /64
    assert limiter.allow("2001:db8:0:1::1", T0)  # the next /64
    assert limiter.allow("192.0.2.1", T0)
    assert not limiter.allow("::ffff:192.0.2.1", T0)  # the same client over IPv6
    assert limiter.allow("192.0.2.2", T0)


def test_retry_after():
    limiter = AddressRateLimiter(burst=2, refill_per_s=0.5)
    assert limiter.retry_after("192.0.2.1", T0) == 0.0  # never seen
    limiter.allow("192.0.2.1", T0)
    assert limiter.retry_after("192.0.2.1", T0) == 0.0  # one attempt left
    limiter.allow("192.0.2.1", T0)
    assert limiter.retry_after("192.0.2.1", T0) == pytest.approx(2.0)
    assert limiter.retry_after("192.0.2.1", T0 + 1.5) == pytest.approx(0.5)
    assert limiter.retry_after("192.0.2.1", T0 + 5) == 0.0
    assert not limiter.allow("192.0.2.1", T0 + 1.5)
    assert limiter.allow("192.0.2.1", T0 + 2.0)


def test_memory_is_bounded_and_the_least_recently_seen_goes_first():
    limiter = AddressRateLimiter(burst=1, refill_per_s=0.001, max_addresses=3)
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert limiter.allow(address, T0)
    assert not limiter.allow("192.0.2.1", T0 + 1)  # seen again: now the most recent
    assert limiter.allow("192.0.2.4", T0 + 2)  # forgets 192.0.2.2
    assert len(limiter) == 3
    assert not limiter.allow("192.0.2.1", T0 + 3)  # still tracked, still empty
    # A forgotten address starts afresh: accepted, as documented.
    assert limiter.allow("192.0.2.2", T0 + 4)
    assert len(limiter) == 3


def test_a_flood_of_addresses_keeps_the_table_bounded():
    limiter = AddressRateLimiter(max_addresses=100)
    for n in range(5_000):
        limiter.allow(f"2001:db8:{n:x}::1", T0)
    assert len(limiter) == 100


def test_a_clock_going_backwards_refills_nothing():
    limiter = AddressRateLimiter(burst=1, refill_per_s=1.0)
    assert limiter.allow("192.0.2.1", T0)
    assert not limiter.allow("192.0.2.1", T0 - 100)
    assert limiter.retry_after("192.0.2.1", T0 - 100) == pytest.approx(1.0)
    assert not limiter.allow("192.0.2.1", T0 + 0.5)
    assert limiter.allow("192.0.2.1", T0 + 1)


@pytest.mark.parametrize(
    "fields", [{"burst": 0}, {"refill_per_s": 0}, {"refill_per_s": -1}, {"max_addresses": 0}]
)
def test_limits_must_be_positive(fields):
    with pytest.raises(ValueError, match="positive"):
        AddressRateLimiter(**fields)


async def test_concurrent_attempts_are_each_counted_once():
    limiter = AddressRateLimiter(burst=10, refill_per_s=1.0)

    async def attempt() -> bool:
        await asyncio.sleep(0)
        return limiter.allow("192.0.2.1", T0)

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    assert results.count(True) == 10


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), max_size=200),
    burst=st.integers(min_value=1, max_value=20),
    rate=st.floats(min_value=0.1, max_value=10),
)
def test_never_more_than_the_burst_plus_the_refill(steps, burst, rate):
    limiter = AddressRateLimiter(burst=burst, refill_per_s=rate)
    now, allowed = T0, 0
    for step in steps:
        now += step
        allowed += limiter.allow("192.0.2.1", now)
    assert allowed <= burst + (now - T0) * rate + 1e-6
