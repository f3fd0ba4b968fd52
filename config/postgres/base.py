"""PostgreSQL, as Django's backend runs it, with a health check that costs no round trip.

Django's health check (``CONN_HEALTH_CHECKS``) sends ``SELECT 1`` before the first query of
every request that reuses a connection: a round trip on every request, to learn about the rare
connection closed while it sat idle (a database restart, a failover, PgBouncer's idle timeout).
A server that closes a connection says so on the socket first — PostgreSQL sends its FATAL
message, then the kernel its FIN — so the socket of an idle connection has something to read
exactly when the connection may be gone. This backend looks (``poll`` with no timeout, no
round trip) and only when there is something to read, or the connection is not idle, asks
the server with Django's own ``SELECT 1``.

A peer that vanished without a word (a cable cut) is no more detectable by ``SELECT 1`` than
by this: that one waits for TCP's timeout either way.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        raw = self.connection
        if raw is None or raw.closed or raw.broken:
            return False
        if raw.info.transaction_status != TransactionStatus.IDLE or _readable(raw.fileno()):
            return bool(super().is_usable())
        return True


def _readable(fd: int) -> bool:
    """Whether the socket has something to read (or is closed), without waiting."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
