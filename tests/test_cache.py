"""config/cache.py: Django's Redis cache with a shared client and a one-round-trip counter."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis

from config.cache import RedisCache


@pytest.fixture
def backend(redis_url: str) -> RedisCache:
    return RedisCache(redis_url, {"KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}"})


def test_one_redis_client_serves_every_call(redis_url: str, monkeypatch: Any) -> None:
    made: list[Any] = []
    real = redis.Redis

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(redis, "Redis", counting)
    backend = RedisCache(redis_url, {"KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}"})
    for number in range(5):
        backend.set(f"k{number}", number)
        assert backend.get(f"k{number}") == number
        backend.count("counter", timeout=60, other="none")

    assert len(made) == 1


def test_count_adds_one_with_an_expiry_and_reads_the_other_key(backend: RedisCache) -> None:
    backend.set("earlier", 7)

    counts = [backend.count("now", timeout=120, other="earlier") for _ in range(3)]
    missing = backend.count("alone", timeout=120, other="never-set")

    assert counts == [(1, 7), (2, 7), (3, 7)]
    assert missing == (1, 0)
    # the same keys as Django's own calls; the expiry was set once, not extended
    assert backend.get("now") == 3
    assert backend.decr("now") == 2
    client = backend.client
    assert 0 < client.ttl(backend.make_and_validate_key("now")) <= 120


def test_count_keeps_the_first_expiry(backend: RedisCache) -> None:
    backend.count("window", timeout=100, other="x")
    client = backend.client
    key = backend.make_and_validate_key("window")
    client.expire(key, 5)

    backend.count("window", timeout=100, other="x")

    assert client.ttl(key) <= 5
