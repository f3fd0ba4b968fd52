"""Django's Redis cache (``CACHE_URL=redis://…``), with one Redis client per connection pool
and a counter in one round trip.

Django's client makes a new ``redis.Redis`` for every cache call. Since redis-py 5 each one
builds its table of about 170 response callbacks first, which took longer than the round trip
to a local Redis. A client is safe to share: every command takes a connection from the pool and
gives it back.

``count`` is what the API throttles (compliance/throttles.py) do on every request: add one to a
counter, creating it with an expiry, and read another. Through Django's API that is three round
trips (``incr`` asks whether the key exists first, then ``get``), four on a window's first
request (``add``); here it is one pipeline.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis import Redis


class _SharedClient(RedisCacheClient):
    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._one_server = len(servers) == 1  # then reads go where writes go
        self._clients: dict[bool, Redis] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Redis:
        writer = write or self._one_server
        client = self._clients.get(writer)
        if client is None:
            client = self._clients[writer] = super().get_client(key, write=writer)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _SharedClient

    @property
    def client(self) -> Redis:
        """The Redis client the cache writes with."""
        # Django's own attribute, which its type stubs leave out
        shared: _SharedClient = self._cache  # type: ignore[attr-defined]
        return shared.get_client(write=True)

    def count(self, key: str, *, timeout: int, other: str) -> tuple[int, int]:
        """``key`` plus one (created at 0 to expire in ``timeout`` seconds, which adding does
        not extend), and the number at ``other`` (0 when there is none): one round trip. Both
        are the keys Django's own calls (``get``, ``decr``) use."""
        key = self.make_and_validate_key(key)
        other = self.make_and_validate_key(other)
        pipeline = self.client.pipeline(transaction=False)
        pipeline.set(key, 0, ex=timeout, nx=True)
        pipeline.incr(key)
        pipeline.get(other)
        _, counted, found = pipeline.execute()
        return int(counted), int(found or 0)
