"""Login protection: the per-account lockout rule and the per-address rate limit.

Both are pure arithmetic on numbers the caller passes in (a failure count, a locked-until
time, the current time); the caller stores them and reads the clock.

Rules of the account lockout (the vendor guide's procedure):
- The 10th consecutive failure locks the account for 10 minutes. After that, every further
  5th failure (15th, 20th, ...) locks it for 60 minutes. A success resets the count to zero.
- An attempt made while the account is locked is refused, even with the right password, and
  does NOT count: otherwise an attacker could keep an account locked forever, and a lock
  could never end while someone keeps guessing. ``register_failure`` enforces this when
  given the current ``locked_until``; the caller must check ``is_locked`` before it even
  verifies a password.
- Times are wall-clock seconds, because a lock must survive a restart. Setting the clock back
  lengthens a lock and setting it forward shortens it; the console ``unlock`` command is the
  way out of a lock that lasts too long.

Rules of the address rate limit: see ``AddressRateLimiter``.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

#: A source address that is not an IP address (a Unix socket peer, a test client) is kept by
#: its text, cut to this many characters so a peer cannot make the table hold long strings.
MAX_ADDRESS_KEY_LENGTH: Final = 64
#: An attacker on IPv6 usually holds a whole /64 and can use any address in it.
IPV6_GROUP_PREFIX_LENGTH: Final = 64
#: Attempts one address may make at once. Twice the first lock threshold, so that someone
#: following the guide's check from one browser (10 wrong, then a few more to see the lock)
#: meets the account lock and its "locked until" message, not this limit.
DEFAULT_BURST: Final = 20
#: Sustained attempts per second and address: one client gets one argon2 hash a second (about
#: 2 % of a core with the default parameters); guessing is bounded by the account lockout.
DEFAULT_REFILL_PER_S: Final = 1.0
#: Address groups tracked at once: about 200 bytes each, so a few MB at most.
DEFAULT_MAX_ADDRESSES: Final = 10_000


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """When failed logins lock an account, and for how long; the defaults are the guide's."""

    first_lock_failures: int = 10
    first_lock_s: float = 600.0
    further_lock_failures: int = 5
    further_lock_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.first_lock_failures < 1 or self.further_lock_failures < 1:
            raise ValueError("a lock needs at least one failure")
        if self.first_lock_s <= 0 or self.further_lock_s <= 0:
            raise ValueError("a lock must last a positive time")


DEFAULT_LOCKOUT_POLICY: Final = LockoutPolicy()


def is_locked(locked_until: float, now: float) -> bool:
    """True while the lock lasts; it ends exactly at ``locked_until``."""
    return now < locked_until


def register_failure(
    failures: int,
    now: float,
    policy: LockoutPolicy = DEFAULT_LOCKOUT_POLICY,
    *,
    locked_until: float = 0.0,
) -> tuple[int, float]:
    """Count one failed login; return the new failure count and the locked-until time.

    Args:
        failures: consecutive failures so far (0 after a success).
        now: the current wall-clock time, in seconds.
        policy: the lockout rule.
        locked_until: the account's current lock, if the caller has one. While it lasts the
            attempt does not count and both values come back unchanged.

    Returns:
        ``(failures, locked_until)``; ``locked_until`` is 0.0 when this failure does not
        start a lock.
    """
    if is_locked(locked_until, now):
        return failures, locked_until
    count = failures + 1
    if count == policy.first_lock_failures:
        return count, now + policy.first_lock_s
    beyond_first = count - policy.first_lock_failures
    if beyond_first > 0 and beyond_first % policy.further_lock_failures == 0:
        return count, now + policy.further_lock_s
    return count, 0.0


def address_key(address: str) -> str:
    """The group ``address`` is counted in: an IPv4 address, or an IPv6 /64 network.

    An IPv4-mapped IPv6 address counts as its IPv4 address, so a dual-stack listener does not
    give one client two buckets.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:MAX_ADDRESS_KEY_LENGTH]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        network = ipaddress.IPv6Network((ip, IPV6_GROUP_PREFIX_LENGTH), strict=False)
        return str(network)
    return str(ip)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at: float


class AddressRateLimiter:
    """A token bucket per source address in front of the login check.

    It stops one client from burning the CPU on argon2 or from locking every account out by
    itself; the per-account lockout still stops slow guessing from many addresses.

    Rules:
    - Each address group (see ``address_key``) starts with ``burst`` attempts and gets
      ``refill_per_s`` back per second, up to ``burst``. A refused attempt costs nothing.
    - At most ``max_addresses`` groups are tracked; the least recently seen is forgotten
      first. A forgotten group starts afresh with a full bucket: that gives a flood from very
      many addresses a few more attempts each, which the account lockout still bounds, in
      exchange for memory that no flood can grow.
    - A clock that goes backwards refills nothing; it never takes tokens away.
    - ``allow`` is one synchronous call with no await inside, so concurrent coroutines of one
      event loop cannot interleave within it: each attempt is counted exactly once. It is not
      meant to be shared between threads.
    """

    def __init__(
        self,
        *,
        burst: int = DEFAULT_BURST,
        refill_per_s: float = DEFAULT_REFILL_PER_S,
        max_addresses: int = DEFAULT_MAX_ADDRESSES,
    ) -> None:
        if burst < 1 or refill_per_s <= 0 or max_addresses < 1:
            raise ValueError("burst, refill rate and address limit must be positive")
        self.burst = burst
        self.refill_per_s = refill_per_s
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently seen first

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, bucket: _Bucket, now: float) -> float:
        elapsed_s = max(0.0, now - bucket.updated_at)
        return min(float(self.burst), bucket.tokens + elapsed_s * self.refill_per_s)

    def allow(self, address: str, now: float) -> bool:
        """Take one attempt from ``address``'s bucket; False if it is empty."""
        key = address_key(address)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated_at=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = self._tokens(bucket, now)
            bucket.updated_at = max(bucket.updated_at, now)
            self._buckets.move_to_end(key)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again (0.0 if now): for a 429 Retry-After."""
        bucket = self._buckets.get(address_key(address))
        if bucket is None:
            return 0.0
        return max(0.0, (1.0 - self._tokens(bucket, now)) / self.refill_per_s)
