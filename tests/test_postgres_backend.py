"""config/postgres: the health check that costs no round trip, yet still replaces a connection
the server closed while it sat idle."""

from __future__ import annotations

import time
from unittest import mock

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, connection, connections, transaction
from django.db.backends.postgresql import base as django_postgres

from config.postgres import base

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the PostgreSQL backend's own check"
)


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def terminate(pid: int) -> None:
    """Close ``pid``'s connection from the server's side, as a restart or an idle timeout
    would, and wait until its socket says so."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while not base._readable(connection.connection.fileno()):
        assert time.monotonic() < deadline, "the server never closed the connection"
        time.sleep(0.01)


def test_the_database_runs_on_this_backend() -> None:
    assert isinstance(connections["default"], base.DatabaseWrapper)
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


@pytest.mark.django_db(transaction=True)
def test_an_idle_healthy_connection_is_usable_without_a_round_trip() -> None:
    backend_pid()  # connected, and idle between statements (autocommit)
    with mock.patch.object(django_postgres.DatabaseWrapper, "is_usable") as select_one:
        assert connection.is_usable() is True
    select_one.assert_not_called()


@pytest.mark.django_db
def test_inside_a_transaction_the_server_is_asked() -> None:
    backend_pid()
    with mock.patch.object(
        django_postgres.DatabaseWrapper, "is_usable", return_value=True
    ) as select_one:
        assert connection.is_usable() is True
    select_one.assert_called_once()


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    old = backend_pid()
    terminate(old)
    assert connection.is_usable() is False

    # What Django does at the start and on the first query of the next request.
    connection.close_if_unusable_or_obsolete()
    assert backend_pid() != old
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(transaction=True)
def test_without_the_check_the_next_query_would_fail() -> None:
    """The case the check exists for: the same closed connection, not checked, fails."""
    terminate(backend_pid())
    try:
        with pytest.raises((InterfaceError, OperationalError)), connection.cursor() as c:
            c.execute("SELECT 1")
    finally:
        connection.close()  # what the check would have done, for the test's own clean-up
