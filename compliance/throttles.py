"""How often tokens and anonymous callers may call the API: a sliding-window counter in the cache.

Anonymous callers are limited per client address (``anon`` rate), token callers per token
(``token`` rate); signed-in people are not limited. The rates are read from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` on every request, so changing the setting (in a
test, say) takes effect at once; a rate of None turns that throttle off.

The count of a caller is kept per fixed window of the rate's period, in Django's cache (the
``CACHE_URL`` setting). A request is allowed while the estimate of the requests in the sliding
period that ends now stays within the rate: this window's count, plus the last window's count
weighted by how much of the last window the sliding period still covers. DRF's own throttles
keep a list of every request's time instead, read and rewritten whole on every request (a
1,200/minute token rewrote up to 1,200 numbers) and by two processes at once without a lock, so
concurrent requests lost each other's counts. Here each request costs one atomic increment and
one read of the last window's count, whatever the rate (one round trip to Redis), and the limit
holds across every worker and machine that shares the cache: a Redis ``CACHE_URL``. With the
default per-process cache, each process counts on its own.

A refused request takes its increment back: a caller that keeps retrying while refused is
allowed again as soon as its earlier requests age out, and ``Retry-After`` says when.

A cache that does not answer lets requests through (the throttle guards against floods, it
decides no access) and is logged, at most once a minute per process. For ten seconds after a
failure the process does not ask it again: a cache host that drops packets would otherwise cost
every request its connection timeout.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from compliance.models import ApiToken
from config.cache import RedisCache

if TYPE_CHECKING:
    from rest_framework.views import APIView

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_log = logging.getLogger(__name__)
_LOG_EVERY = 60.0  # seconds between two reports of a cache that does not answer
_ASK_AGAIN_AFTER = 10.0  # seconds a process lets requests through after the cache failed
_unanswered = {"reported_at": -_LOG_EVERY, "until": -_ASK_AGAIN_AFTER}
_monotonic = time.monotonic
_AT_LEAST = 0.001  # seconds: a refusal never says "retry now"


def now() -> float:
    """The time the windows are counted in (tests turn it)."""
    return time.time()


def parse_rate(rate: str) -> tuple[int, int]:
    """``"60/minute"`` → (60, 60): requests allowed, and the period in seconds."""
    count, _, period = rate.partition("/")
    seconds = _SECONDS.get(period[:1])
    if not count.isdigit() or int(count) < 1 or seconds is None:
        raise ImproperlyConfigured(f"not a throttle rate: {rate!r}")
    return int(count), seconds


class SlidingWindowThrottle(BaseThrottle):
    """One caller's budget of ``rate`` requests per sliding period (see the module)."""

    scope: str = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def bucket(self, request: Request) -> str | None:
        """Whose budget a request spends; None: not limited by this throttle."""
        raise NotImplementedError

    def rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope not in rates:
            raise ImproperlyConfigured(f"REST_FRAMEWORK has no throttle rate for {self.scope!r}")
        rate = rates[self.scope]
        return None if rate is None else str(rate)

    def allow_request(self, request: Request, view: APIView) -> bool:
        rate = self.rate()
        if rate is None:
            return True
        bucket = self.bucket(request)
        if bucket is None:
            return True
        allowed, period = parse_rate(rate)
        if _monotonic() < _unanswered["until"]:
            return True
        try:
            return self._allow(f"throttle:{self.scope}:{bucket}", allowed, period)
        except (RedisError, OSError) as exc:
            _unanswered_by_cache(exc)
            return True

    def _allow(self, prefix: str, allowed: int, period: int) -> bool:
        window, into = divmod(now(), period)
        key, last = f"{prefix}:{int(window)}", f"{prefix}:{int(window) - 1}"
        current, previous = _count(key, timeout=2 * period, other=last)
        covered = 1 - into / period  # how much of the last window the sliding period covers
        if previous * covered + current <= allowed:
            return True
        _take_back(key)
        self._wait = _wait(allowed, period, into, previous, current - 1)
        return False

    def wait(self) -> float | None:
        return self._wait


def _count(key: str, *, timeout: int, other: str) -> tuple[int, int]:
    """The count at ``key`` after adding one (created to expire after ``timeout`` seconds), and
    the count at ``other``: one round trip to Redis; atomic there and in the per-process cache."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        return backend.count(key, timeout=timeout, other=other)
    try:
        counted = backend.incr(key)
    except ValueError:  # the window's first request
        counted = 1 if backend.add(key, 1, timeout=timeout) else backend.incr(key)
    return counted, int(backend.get(other) or 0)


def _take_back(key: str) -> None:
    with contextlib.suppress(ValueError):  # expired meanwhile: nothing to take back
        caches[DEFAULT_CACHE_ALIAS].decr(key)


def _unanswered_by_cache(exc: Exception) -> None:
    at = _monotonic()
    _unanswered["until"] = at + _ASK_AGAIN_AFTER
    if at - _unanswered["reported_at"] >= _LOG_EVERY:
        _unanswered["reported_at"] = at
        _log.error("API throttles off: the cache does not answer (%s)", type(exc).__name__)


def _wait(allowed: int, period: int, into: float, previous: int, current: int) -> float:
    """Seconds until one more request fits, if no other is made meanwhile (DRF rounds them up
    for ``Retry-After``)."""
    if current < allowed:
        # the last window's weight falls until previous * covered + current + 1 <= allowed
        covered = (allowed - current - 1) / previous if previous else 1.0
        return max(_AT_LEAST, (1 - covered) * period - into)
    # this window is full: once it has ended it weighs as the last window does now
    covered = (allowed - 1) / current
    return (period - into) + (1 - covered) * period


class AnonymousRateThrottle(SlidingWindowThrottle):
    """Anonymous callers, by client address (``NUM_PROXIES`` says which address to trust)."""

    scope = "anon"

    def bucket(self, request: Request) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.get_ident(request)


class TokenRateThrottle(SlidingWindowThrottle):
    """Token callers, one bucket per token, keyed by its public prefix."""

    scope = "token"

    def bucket(self, request: Request) -> str | None:
        token = request.auth
        return token.prefix if isinstance(token, ApiToken) else None
