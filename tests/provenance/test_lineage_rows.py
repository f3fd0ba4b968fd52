"""The walks' rows (provenance/selectors/lineage.py ``walk_rows``): the same values and types
from PostgreSQL and SQLite, timestamps as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from psycopg.abc import Buffer

from provenance.models import Attestation, LineageEdge, LineageNode, SigningKey
from provenance.selectors import lineage
from provenance.selectors.lineage import EdgeRow, _TimestamptzLoader, walk_rows

pytestmark = pytest.mark.django_db
CREATED = datetime(2026, 12, 7, 17, 36, 1, 123456, tzinfo=UTC)
# Stored in another zone: read back in UTC.
ENDED = datetime(2026, 12, 8, 3, 0, 0, 500, tzinfo=timezone(timedelta(hours=5, minutes=30)))
WHOLE_SECOND = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def chain() -> list[LineageNode]:
    key = SigningKey.objects.create(
        key_id="k", scheme="ecdsa-sha2-nistp256", public_key={}, public_pem="", created_at=CREATED
    )
    attestation = Attestation.objects.create(
        envelope=b"{}",
        envelope_digest="ab" * 32,
        format="dsse",
        predicate_type="https://slsa.dev/provenance/v1",
        statement={},
        signing_key=key,
        received_at=CREATED,
    )
    nodes = [
        LineageNode.objects.create(kind=kind, key=key_, label=key_, created_at=CREATED)
        for kind, key_ in [
            ("dataset", "sha256:" + "01" * 32),
            ("run", "r"),
            ("model_version", "m/1"),
        ]
    ]
    times = [(CREATED, ENDED), (WHOLE_SECOND, None)]
    for (upstream, downstream), (created, ended) in zip(pairwise(nodes), times, strict=True):
        LineageEdge.objects.create(
            upstream=upstream,
            downstream=downstream,
            relation="produced",
            attestation=attestation,
            created_at=created,
            ended_at=ended,
        )
    return nodes


def test_timestamps_are_aware_utc_datetimes_equal_to_those_stored(
    chain: list[LineageNode],
) -> None:
    edges, _ = walk_rows([chain[0].pk], "downstream", 5)

    assert [(edge.created_at, edge.ended_at) for edge in edges] == [
        (CREATED, ENDED),
        (WHOLE_SECOND, None),
    ]
    for edge in edges:
        assert type(edge.created_at) is datetime
        assert edge.created_at.tzinfo is UTC
    assert edges[0].ended_at is not None
    assert edges[0].ended_at.tzinfo is UTC


def test_rows_are_the_orms_values(chain: list[LineageNode]) -> None:
    edges, nodes = walk_rows([chain[2].pk], "upstream", 5)

    stored = LineageEdge.objects.select_related("attestation").order_by("pk")
    assert sorted(edges, key=lambda edge: edge.id) == [
        EdgeRow(
            edge.pk,
            edge.upstream_id,
            edge.downstream_id,
            edge.relation,
            edge.attestation_id,
            edge.created_at,
            edge.ended_at,
            2 - index,
            edge.attestation.envelope_digest,
            edge.attestation.predicate_type,
            None,
            edge.attestation.verification_status,
        )
        for index, edge in enumerate(stored)
    ]
    assert [(node.id, node.kind, node.key) for node in nodes.values()] == [
        (node.pk, node.kind, node.key) for node in sorted(chain, key=lambda node: node.key)
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's loader")
def test_what_pythons_parser_cannot_read_psycopg_reads() -> None:
    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("timestamptz", _TimestamptzLoader)
        cursor.execute(
            "SELECT '0099-01-01 00:00:00+00'::timestamptz, "
            "'2026-12-07 12:00:00.5-03:30'::timestamptz"
        )
        old, offset = cursor.fetchone()

    assert old == datetime(99, 1, 1, tzinfo=UTC)
    assert offset == datetime(2026, 12, 7, 15, 30, 0, 500000, tzinfo=UTC)
    assert offset.tzinfo is UTC


def test_one_query_per_walk(chain: list[LineageNode]) -> None:
    with CaptureQueriesContext(connection) as queries:
        walk_rows([chain[0].pk], "downstream", 5)

    assert len(queries) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's loader")
def test_the_walk_reads_timestamps_with_the_fast_loader(
    chain: list[LineageNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[datetime] = []

    class Counting(_TimestamptzLoader):
        def load(self, data: Buffer) -> datetime:
            read.append(super().load(data))
            return read[-1]

    monkeypatch.setattr(lineage, "_TimestamptzLoader", Counting)

    edges, _ = walk_rows([chain[0].pk], "downstream", 5)

    assert sorted(read) == sorted([CREATED, ENDED, WHOLE_SECOND])
    assert [edge.created_at for edge in edges] == [CREATED, WHOLE_SECOND]
