"""Retry policy: exponential backoff with full jitter, honouring a server's Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt; delay for retry i (0-based) is uniform in
    ``[0, min(max_delay_s, base_s * 2**i)]`` (full jitter), or the server's Retry-After (capped at
    ``max_retry_after_s``) when it sent one."""

    max_retries: int = 5
    base_s: float = 0.25
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0

    def delay(
        self, retry_index: int, retry_after_s: float | None, rand: random.Random | None = None
    ) -> float:
        if retry_after_s is not None and retry_after_s >= 0:
            return min(retry_after_s, self.max_retry_after_s)
        r = rand or random
        return r.uniform(0.0, min(self.max_delay_s, self.base_s * (2**retry_index)))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header value (delta-seconds, possibly fractional, or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
