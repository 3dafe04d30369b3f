"""Login throttling: at most N failed logins per window, per user name and per client address.

In memory, so the limit is per hub process (behind a load balancer with M hubs an attacker gets M×N
tries per window; still far too few for guessing). Failures are remembered, not attempts: a user who
types the password right is never slowed down by others' successes. Bounded memory: past ``max_keys``
distinct keys, the oldest are forgotten.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class LoginLimiter:
    def __init__(
        self, failures: int = 5, window_s: float = 60.0, max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        q = self._seen.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._seen[key]
            return None
        return q

    def retry_after(self, *keys: str) -> int:
        """Seconds until any of ``keys`` may try again; 0 when all may try now."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            q = self._recent(key, now)
            if q is not None and len(q) >= self.failures:
                wait = max(wait, q[-self.failures] + self.window_s - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            q = self._seen.pop(key, None) or deque(maxlen=self.failures)
            q.append(now)
            self._seen[key] = q  # most recent last, so eviction drops the longest quiet keys
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
