"""Per-client call rate limits: one token bucket per client, time passed in.

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens a second; each call takes
one. A call that finds less than one token is refused with the time until one will be there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """One client's bucket (mutable: it is the client's running balance)."""

    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by client identity."""

    __slots__ = ("_buckets", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now: float) -> float:
        """Take one token for ``key`` at ``now`` (seconds, monotonic).

        Returns 0.0 when the call may go ahead, else the seconds until a token is available.
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = TokenBucket(self.burst - 1, now)
            return 0.0
        tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return 0.0
        bucket.tokens = tokens
        return (1.0 - tokens) / self.rate

    def forget_full(self, now: float) -> int:
        """Drop the buckets that have refilled (their clients went quiet); returns how many.

        Keeps the table bounded when clients are keyed by peer address.
        """
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        return len(full)

    def __len__(self) -> int:
        return len(self._buckets)
