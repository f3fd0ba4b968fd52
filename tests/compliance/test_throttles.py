"""API throttles: a sliding-window count per token or client address, shared through the cache.

Each test spends its own bucket (a fresh token prefix or address), so tests share the cache, the
per-process one or Redis (CACHE_URL, as in CI's PostgreSQL + Redis run), without clearing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from typing import Any
from unittest.mock import patch
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from compliance import throttles
from compliance.checks import throttles_shared
from compliance.models import ApiToken
from compliance.throttles import AnonymousRateThrottle, TokenRateThrottle, parse_rate

PERIODS = {1: "second", 60: "minute", 3600: "hour"}
START = 1_800_000_000.0  # a window boundary for every period used here (divisible by 86,400)


class Clock:
    def __init__(self, at: float = START) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


class Caller:
    """What a throttle reads of a request: the token, the user, the client's address."""

    def __init__(self, *, token: str | None = None, address: str = "192.0.2.1") -> None:
        self.auth = ApiToken(prefix=token) if token else None
        self.user = None
        self.META = {"REMOTE_ADDR": address}
        self.headers: dict[str, str] = {}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    turned = Clock()
    monkeypatch.setattr(throttles, "now", turned)
    return turned


def rates(settings: Any, *, token: str | None = None, anon: str | None = None) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": anon, "token": token},
    }


def fresh_token() -> Caller:
    return Caller(token=f"smr_{uuid.uuid4().hex[:16]}")


def ask(caller: Caller) -> tuple[bool, float | None]:
    throttle = TokenRateThrottle()
    allowed = throttle.allow_request(caller, None)  # type: ignore[arg-type]
    return allowed, throttle.wait()


# --- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("60/minute", (60, 60)), ("1/s", (1, 1)), ("5/hour", (5, 3600)), ("2/day", (2, 86400))],
)
def test_a_rate_is_a_count_per_period_in_seconds(rate: str, parsed: tuple[int, int]) -> None:
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["lots", "0/minute", "10/fortnight", "-1/s", "/minute"])
def test_a_rate_that_is_not_one_is_refused(rate: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="not a throttle rate"):
        parse_rate(rate)


def test_a_scope_without_a_rate_setting_is_a_configuration_error(settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}

    with pytest.raises(ImproperlyConfigured, match="no throttle rate for 'token'"):
        ask(fresh_token())


# --- one window, then the sliding period ------------------------------------------------------


def test_the_rate_is_allowed_then_refused_with_the_wait_until_the_window_ends(
    settings: Any, clock: Clock
) -> None:
    rates(settings, token="3/minute")
    caller = fresh_token()
    clock.at = START + 15

    answers = [ask(caller) for _ in range(4)]

    assert [allowed for allowed, _ in answers] == [True, True, True, False]
    # full this window: it ends in 45 s, then weighs 3 until a third of the next has passed
    assert answers[-1][1] == pytest.approx(45 + 20)


def test_the_last_window_weighs_as_much_as_the_sliding_period_still_covers_of_it(
    settings: Any, clock: Clock
) -> None:
    rates(settings, token="4/minute")
    caller = fresh_token()
    clock.at = START + 59
    assert all(ask(caller)[0] for _ in range(4))

    clock.at = START + 60 + 15  # the last window's 4 weigh 3
    first = [ask(caller)[0] for _ in range(2)]
    clock.at = START + 60 + 45  # they weigh 1
    later = [ask(caller)[0] for _ in range(3)]

    assert first == [True, False]
    assert later == [True, True, False]


def test_refused_requests_are_not_counted(settings: Any, clock: Clock) -> None:
    rates(settings, token="2/minute")
    caller = fresh_token()
    assert [ask(caller)[0] for _ in range(2)] == [True, True]
    refused = [ask(caller)[0] for _ in range(50)]

    clock.at = START + 60 + 30  # the last window's 2 weigh 1: one more fits

    assert not any(refused)
    assert [ask(caller)[0] for _ in range(2)] == [True, False]


def test_each_token_and_each_address_has_its_own_budget(settings: Any, clock: Clock) -> None:
    rates(settings, token="1/minute", anon="1/minute")
    one, two = fresh_token(), fresh_token()
    here, there = Caller(address="198.51.100.7"), Caller(address="198.51.100.8")
    anonymous = AnonymousRateThrottle()

    tokens = [ask(one)[0], ask(one)[0], ask(two)[0]]
    addresses = [anonymous.allow_request(c, None) for c in (here, here, there)]  # type: ignore[arg-type]

    assert tokens == [True, False, True]
    assert addresses == [True, False, True]


def test_a_token_caller_is_not_counted_as_anonymous_nor_a_rate_of_none_counted(
    settings: Any, clock: Clock
) -> None:
    rates(settings, token=None, anon="1/minute")
    caller = fresh_token()
    caller.user = type("Someone", (), {"is_authenticated": True})()

    assert all(ask(caller)[0] for _ in range(5))
    assert all(AnonymousRateThrottle().allow_request(caller, None) for _ in range(5))  # type: ignore[arg-type]


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    allowed=st.integers(min_value=1, max_value=12),
    period=st.sampled_from([1, 60, 3600]),
    spent_before=st.integers(min_value=0, max_value=12),
    spent_now=st.integers(min_value=0, max_value=12),
    into=st.floats(min_value=0.0, max_value=0.99),
)
def test_the_wait_is_when_the_next_request_fits_and_not_a_second_sooner(
    allowed: int, period: int, spent_before: int, spent_now: int, into: float
) -> None:
    caller = fresh_token()
    clock = Clock(START - period)
    rate = {"anon": None, "token": f"{allowed}/{PERIODS[period]}"}
    with override_settings(REST_FRAMEWORK={**django_settings.REST_FRAMEWORK,
                                           "DEFAULT_THROTTLE_RATES": rate}), \
            patch.object(throttles, "now", clock):  # fmt: skip
        for _ in range(spent_before):
            ask(caller)
        clock.at = START + into * period
        for _ in range(spent_now):
            ask(caller)
        allowed_now, wait = ask(caller)
        if allowed_now:
            return
        assert wait is not None
        assert wait > 0
        if wait > 1.0:  # a second sooner, it does not fit yet
            clock.at += wait - 1.0
            assert not ask(caller)[0]
            clock.at += 1.0
        else:
            clock.at += wait
        clock.at += 1e-6
        assert ask(caller)[0]


# --- shared and atomic ------------------------------------------------------------------------


def test_concurrent_requests_never_get_more_than_the_rate(settings: Any, clock: Clock) -> None:
    """DRF's throttles read and rewrote a list of times: requests at once lost each other's."""
    rates(settings, token="100/hour")
    caller = fresh_token()
    results: list[bool] = []
    lock = threading.Lock()
    go = threading.Barrier(8)

    def client() -> None:
        go.wait()
        for _ in range(40):
            allowed = ask(caller)[0]
            with lock:
                results.append(allowed)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 320
    assert results.count(True) == 100


_SPEND = """
import django, json, sys
django.setup()
from compliance.models import ApiToken
from compliance.throttles import TokenRateThrottle

class Caller:
    auth, user, META, headers = ApiToken(prefix=sys.argv[1]), None, {}, {}

print(json.dumps([TokenRateThrottle().allow_request(Caller(), None) for _ in range(5)]))
"""


def _spend_in_a_process(cache_url: str, token: str) -> list[bool]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CACHE_URL": cache_url,
        "API_THROTTLE_TOKEN_RATE": "5/hour",
    }
    result = subprocess.run(
        [sys.executable, "-c", _SPEND, token],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answers: list[bool] = json.loads(result.stdout.strip().splitlines()[-1])
    return answers


def test_with_a_redis_cache_two_processes_share_one_budget(redis_url: str) -> None:
    token = f"smr_{uuid.uuid4().hex[:16]}"

    first = _spend_in_a_process(redis_url, token)
    second = _spend_in_a_process(redis_url, token)

    assert first == [True] * 5
    assert second == [False] * 5


def test_with_the_per_process_cache_each_process_counts_on_its_own() -> None:
    token = f"smr_{uuid.uuid4().hex[:16]}"

    first = _spend_in_a_process("locmem://", token)
    second = _spend_in_a_process("locmem://", token)

    assert first == second == [True] * 5


class Monotonic:
    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


def test_a_cache_that_does_not_answer_lets_requests_through_and_is_logged_once(
    settings: Any,
    clock: Clock,
    unused_port: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rates(settings, token="1/minute")
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{unused_port}/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    monotonic = Monotonic()
    monkeypatch.setattr(throttles, "_monotonic", monotonic)
    monkeypatch.setattr(throttles, "_unanswered", {"reported_at": -1e9, "until": -1e9})
    asked: list[str] = []
    count = throttles._count

    def counting(key: str, **kwargs: Any) -> tuple[int, int]:
        asked.append(key)
        return count(key, **kwargs)

    monkeypatch.setattr(throttles, "_count", counting)
    caller = fresh_token()

    first = [ask(caller)[0] for _ in range(3)]
    monotonic.at += throttles._ASK_AGAIN_AFTER + 1
    later = ask(caller)[0]

    assert first == [True, True, True]
    assert later is True
    assert len(asked) == 2  # the first request, and the first after ten seconds
    reports = [r for r in caplog.records if r.name == "compliance.throttles"]
    assert len(reports) == 1  # the second failure came within the minute
    message = "API throttles off: the cache does not answer (ConnectionError)"
    assert reports[0].getMessage() == message


# --- deploy check -----------------------------------------------------------------------------


def test_deploy_check_warns_of_per_process_counts_unless_chosen(settings: Any) -> None:
    rates(settings, token="1200/minute", anon="60/minute")

    settings.CACHE_URL = ""
    unset = throttles_shared()
    settings.CACHE_URL = "locmem://"
    chosen = throttles_shared()
    settings.CACHE_URL = "redis://cache.internal:6379/1"
    shared = throttles_shared()
    settings.CACHE_URL = ""
    rates(settings)
    off = throttles_shared()

    assert [message.id for message in unset] == ["secmlops.W001"]
    assert isinstance(unset[0], checks.Warning)
    assert "CACHE_URL" in (unset[0].hint or "")
    assert chosen == shared == off == []


def test_a_redis_cache_url_configures_the_redis_cache() -> None:
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.CACHES['default']))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CACHE_URL": "redis://:s3cret@cache.internal:6380/2",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)

    assert loaded["BACKEND"] == "config.cache.RedisCache"
    assert urlsplit(loaded["LOCATION"]).port == 6380
    assert loaded["OPTIONS"]["socket_timeout"] <= 1
