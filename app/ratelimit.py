"""Per-key rate limits on ingestion: a token bucket per write key, counted in events, so a
runaway client is told to slow down (429 with Retry-After, which SDKs honour) before it
crowds out everyone else."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

# Buckets kept before those that have refilled are forgotten.
MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`rate` events per second per key, with bursts up to `burst` events; rate 0 disables it."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, rate)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def retry_after(self, key: str, events: int) -> int | None:
        """None when `events` may pass now (and takes them), else whole seconds to wait."""
        if self.rate <= 0:
            return None
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if events <= bucket.tokens:
            bucket.tokens -= events
            return None
        needed = min(events, self.burst) - bucket.tokens
        return max(1, math.ceil(needed / self.rate))

    def _forget_full(self, now: float) -> None:
        # Keyed by client address, buckets would grow without end; a bucket that has refilled
        # is the same as a new one, so it can go.
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
