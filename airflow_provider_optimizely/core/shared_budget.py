"""One rate budget for every process and host that uses one vendor account, kept in Redis.

``SharedRateLimiter`` is a ``core.ratelimit.RateLimiter`` whose three rules read and write a shared store
instead of this process's memory, so hooks use it unchanged:

1. **Client budget**: the ``limits`` library's moving window on Redis (``MovingWindowRateLimiter``): no
   span of ``period`` seconds holds more than ``max_requests`` sends, counted over every worker.
2. **Server headers**: what any worker last learnt from ``X-RateLimit-Remaining``/``Reset`` is one
   Redis hash, read and spent atomically by a Lua script (the same rules as the in-process limiter:
   spread over the window, nothing sent once spent, the requests in flight counted as spent).
3. **Retry-After**: a pause asked of one worker is written to the hash and holds every worker.

Wall clocks are compared across hosts (keep them NTP-synchronised; the in-process limiter already
trusts the local one against the server's ``Reset``).

If the store fails (connection refused, timeout), the limiter logs one warning and goes on in this
process alone with a conservative share of the budget: ``1/workers`` of the client budget and of what
the server says remains. It never fails the sync because of the store.

Airflow-free: it takes a redis-py client (``hooks.rate_store`` finds one from an Airflow connection).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from airflow_provider_optimizely.core.ratelimit import (
    RESET_MARGIN,
    RESET_ROUNDING,
    Budget,
    RateLimiter,
    _float_header,
    _int_header,
)

log = logging.getLogger(__name__)

#: What a failing store raises (redis-py's errors, or ``limits``' wrapping of them): the limiter degrades.
STORE_ERRORS = (RedisError, StorageError, OSError)

# The hash outlives a quiet account for this long, then the next worker starts afresh.
_STATE_TTL_SECONDS = 600
# Stores (redis clients) whose failure this process already reported: one warning line, not one a limiter.
_warned_stores: weakref.WeakSet[Any] = weakref.WeakSet()
_warned_lock = threading.Lock()
DEFAULT_WORKERS = 2

# KEYS[1]: the hash. ARGV: now (wall), margin, rounding, ttl. Returns seconds to wait ("0": sent).
# Fields: paused_until, reset (the server's latest window end), remaining, limit, rolled (1: that window is
# over, the next one's end is not yet known), last (last send), reported (lowest Remaining said in the
# window), in_flight (sends not yet answered, every worker's).
_TAKE = """
local h = KEYS[1]
local now, margin, rounding, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', h, 'paused_until', 'reset', 'remaining', 'limit', 'rolled', 'last', 'in_flight')
local paused = tonumber(s[1]) or 0
if now < paused then return tostring(paused - now) end
local reset, remaining, limit = tonumber(s[2]), tonumber(s[3]), tonumber(s[4])
local rolled, last, in_flight = s[5] == '1', tonumber(s[6]) or -1e18, tonumber(s[7]) or 0
if remaining then
  if rolled then
    if remaining <= 0 and in_flight > 0 then return tostring(margin) end
  elseif now >= reset + margin then
    if limit then
      -- a request still in flight (any worker's) may land in the new window: counted there
      remaining = math.max(0, limit - in_flight)
      redis.call('HSET', h, 'remaining', remaining, 'rolled', 1)
    else
      remaining = nil
      redis.call('HDEL', h, 'remaining')
      redis.call('HSET', h, 'rolled', 1)
    end
    redis.call('HDEL', h, 'reported')
  elseif remaining <= 0 then
    return tostring(reset + margin - now)
  else
    local spacing = math.max(0, reset - rounding - now) / remaining
    if last + spacing > now then return tostring(last + spacing - now) end
  end
end
redis.call('HINCRBY', h, 'in_flight', 1)
if remaining then
  redis.call('HSET', h, 'remaining', remaining - 1, 'last', now)
  if redis.call('HEXISTS', h, 'reported') == 1 then redis.call('HINCRBY', h, 'reported', -1) end
end
redis.call('EXPIRE', h, ttl)
return '0'
"""

# ARGV: remaining, reset, limit ('' when not sent), ttl. The in-process limiter's observe(), shared.
_OBSERVE = """
local h = KEYS[1]
local said, reset_wall, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local s = redis.call('HMGET', h, 'reset', 'rolled', 'remaining', 'reported', 'in_flight')
local known, rolled, remaining = tonumber(s[1]), s[2] == '1', tonumber(s[3])
local reported, in_flight = tonumber(s[4]), tonumber(s[5]) or 0
if known and (reset_wall < known or (reset_wall == known and rolled)) then return 0 end
local estimate = math.max(0, said - math.max(0, in_flight - 1))
local same = known == reset_wall and not rolled and remaining ~= nil
if same then estimate = math.min(estimate, remaining) end
if same and reported then said = math.min(said, reported) end
redis.call('HSET', h, 'remaining', estimate, 'reported', said, 'reset', ARGV[2], 'rolled', 0)
if ARGV[3] ~= '' then redis.call('HSET', h, 'limit', ARGV[3]) end
redis.call('EXPIRE', h, ttl)
return 1
"""

# Once no request of any worker is in flight, the lowest Remaining said is exact (core.ratelimit).
_RELEASE = """
local h = KEYS[1]
local in_flight = redis.call('HINCRBY', h, 'in_flight', -1)
if in_flight <= 0 then
  redis.call('HSET', h, 'in_flight', 0)
  local s = redis.call('HMGET', h, 'remaining', 'reported')
  local remaining, reported = tonumber(s[1]), tonumber(s[2])
  if remaining and reported and reported > remaining then redis.call('HSET', h, 'remaining', reported) end
end
return 1
"""

_PAUSE = """
local until_ = tonumber(ARGV[1])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until')) or 0
if until_ > paused then redis.call('HSET', KEYS[1], 'paused_until', ARGV[1]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


def account_key(api: str, host: str, identity: Iterable[str], route: str = "") -> str:
    """The store's key of one vendor account (and route): a digest, so no credential is ever stored."""
    digest = hashlib.sha256("\0".join([api, host, *identity]).encode()).hexdigest()[:24]
    return f"optimizely:rate:{digest}" + (f":{route}" if route else "")


def limits_item(budget: Budget) -> RateLimitItemPerSecond:
    """``budget`` as a ``limits`` item, whose window is whole seconds: never looser than the budget."""
    if budget.period < 1:
        return RateLimitItemPerSecond(max(1, math.floor(budget.max_requests / budget.period)), 1)
    return RateLimitItemPerSecond(budget.max_requests, math.ceil(budget.period))


class SharedRateLimiter(RateLimiter):
    """A ``RateLimiter`` whose budget is shared through Redis with every worker of one account."""

    def __init__(
        self,
        budget: Budget | None,
        *,
        redis: Any,
        key: str,
        workers: int = DEFAULT_WORKERS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(budget, clock=clock, wall_clock=wall_clock)
        self.key = key
        self.workers = max(1, int(workers))
        self.degraded = False
        self._log = logger or log
        self._redis = redis
        self._hash = f"{key}:server"
        self._take = redis.register_script(_TAKE)
        self._observe = redis.register_script(_OBSERVE)
        self._release = redis.register_script(_RELEASE)
        self._pause = redis.register_script(_PAUSE)
        self._item = None if budget is None else limits_item(budget)
        self._window: MovingWindowRateLimiter | None = None
        if self._item is not None:
            storage = RedisStorage("redis://", connection_pool=redis.connection_pool)
            self._window = MovingWindowRateLimiter(storage)
        self._held = threading.local()  # this thread's send: already past the server rule, or not

    # -- the rules, shared ----------------------------------------------------------------------------------

    def _wait(self, now: float) -> float:
        if self.degraded:
            return super()._wait(now)
        try:
            if not getattr(self._held, "server", False):
                wall = self._wall_clock()
                args = [wall, RESET_MARGIN, RESET_ROUNDING, _STATE_TTL_SECONDS]
                wait = float(self._take(keys=[self._hash], args=args))
                if wait > 0:
                    return wait
                # Past the server's rule (and counted in flight): only the client budget is left to pass.
                self._held.server = True
            item = self._item
            if self._window is not None and item is not None and not self._window.hit(item, self.key):
                reset, _ = self._window.get_window_stats(item, self.key)
                return max(0.001, reset - self._wall_clock())
            return 0.0
        except STORE_ERRORS as exc:
            self._degrade(exc)
            return super()._wait(now)

    def _reserve(self, now: float) -> None:
        self._held.server = False
        super()._reserve(now)

    def release(self) -> None:
        super().release()
        if not self.degraded:
            self._call(self._release, [])

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        if seconds > 0 and not self.degraded:
            self._call(self._pause, [self._wall_clock() + seconds, _STATE_TTL_SECONDS])

    def observe(self, headers: Mapping[str, str]) -> None:
        if self.degraded:
            super().observe(_share_of(headers, self.workers))
            return
        remaining = _int_header(headers, "X-RateLimit-Remaining")
        reset_wall = _float_header(headers, "X-RateLimit-Reset")
        if remaining is None or reset_wall is None:
            return
        limit = _int_header(headers, "X-RateLimit-Limit")
        args = [remaining, repr(reset_wall), "" if limit is None else limit, _STATE_TTL_SECONDS]
        self._call(self._observe, args)

    # -- when the store fails -----------------------------------------------------------------------------

    def _call(self, script: Any, args: list[Any]) -> None:
        try:
            script(keys=[self._hash], args=args)
        except STORE_ERRORS as exc:
            with self._cond:
                self._degrade(exc)

    def _degrade(self, exc: BaseException) -> None:
        """Go on alone on a conservative share of the budget (called with the lock held)."""
        if self.degraded:
            return
        self.degraded = True
        self._held.server = False
        share = "no client budget"
        if self.budget is not None:
            self.budget = Budget(max(1, self.budget.max_requests // self.workers), self.budget.period)
            share = f"{self.budget.max_requests} per {self.budget.period:g} s"
        with _warned_lock:
            if self._redis in _warned_stores:
                return  # the hook's other limiters on this store: one line says it for all
            _warned_stores.add(self._redis)
        self._log.warning(
            "the shared rate budget's store is unreachable (%s); this worker goes on alone with 1/%d of "
            "the budget (%s) until the end of the task",
            type(exc).__name__,
            self.workers,
            share,
        )


def _share_of(headers: Mapping[str, str], workers: int) -> Mapping[str, str]:
    """``headers`` with ``X-RateLimit-Remaining`` divided among ``workers``: each takes only its share."""
    remaining = _int_header(headers, "X-RateLimit-Remaining")
    if remaining is None or workers <= 1:
        return headers
    return {**headers, "X-RateLimit-Remaining": str(remaining // workers)}
