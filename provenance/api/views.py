"""The governance log over HTTP: checkpoints, entries, RFC 9162 proofs, the log's public key.

Checkpoints, proofs and the public key hold hashes only and are public, so anyone can check
the log without an account; entries name people and need a sign-in.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import NotFound
from config.schema import ErrorOutput
from provenance import selectors
from provenance.merkle import leaf_hash
from provenance.models import Checkpoint, LogEntry
from provenance.signed_note import NoteVerifier

MAX_PAGE = 1000


def b64(data: bytes | memoryview) -> str:
    return base64.b64encode(bytes(data)).decode()


def checkpoint_json(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "origin": checkpoint.note.split("\n", 1)[0],
        "tree_size": checkpoint.tree_size,
        "root_hash": b64(checkpoint.root_hash),
        "issued_at": checkpoint.issued_at.isoformat(),
        "key_name": checkpoint.key.name,
        "note": checkpoint.note,
    }


def entry_json(entry: LogEntry) -> dict[str, Any]:
    data = bytes(entry.entry)
    return {
        "index": entry.index,
        "leaf_hash": b64(leaf_hash(data)),
        "entry_b64": b64(data),
        "entry": selectors.entry_document(entry),
    }


@extend_schema_serializer(component_name="LogCheckpoint")
class CheckpointOutput(serializers.Serializer[Any]):
    origin = serializers.CharField()
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField(help_text="base64 SHA-256 root")
    issued_at = serializers.DateTimeField()
    key_name = serializers.CharField()
    note = serializers.CharField(help_text="C2SP signed note, verbatim")


class LatestCheckpointApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: CheckpointOutput, 404: ErrorOutput}, operation_id="log_checkpoint_latest"
    )
    def get(self, request: Request) -> Response:
        checkpoint = selectors.checkpoint_latest()
        if checkpoint is None:
            raise NotFound("no checkpoint has been issued yet", code="log_no_checkpoint")
        return Response(checkpoint_json(checkpoint))


class EntriesApi(APIView):
    # The default permissions: a signed-in user, or a token with the read scope.

    @extend_schema_serializer(component_name="LogEntriesQuery")
    class Input(serializers.Serializer[Any]):
        start = serializers.IntegerField(min_value=0, default=0)
        limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=100)

    @extend_schema_serializer(component_name="LogEntriesPage")
    class Output(serializers.Serializer[Any]):
        @extend_schema_serializer(component_name="LogEntry")
        class Entry(serializers.Serializer[Any]):
            index = serializers.IntegerField()
            leaf_hash = serializers.CharField()
            entry_b64 = serializers.CharField(help_text="the exact canonical bytes hashed")
            entry = serializers.JSONField()

        entries = Entry(many=True)
        next_start = serializers.IntegerField(allow_null=True)

    @extend_schema(parameters=[Input], responses=Output, operation_id="log_entries")
    def get(self, request: Request) -> Response:
        params = self.Input(data=request.query_params)
        params.is_valid(raise_exception=True)
        start, limit = params.validated_data["start"], params.validated_data["limit"]
        entries = list(selectors.entries_range(start=start, limit=limit))
        next_start = entries[-1].index + 1 if len(entries) == limit else None
        return Response({"entries": [entry_json(e) for e in entries], "next_start": next_start})


class InclusionProofApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="InclusionProofQuery")
    class Input(serializers.Serializer[Any]):
        leaf_index = serializers.IntegerField(min_value=0)
        tree_size = serializers.IntegerField(min_value=1)

    @extend_schema_serializer(component_name="InclusionProof")
    class Output(serializers.Serializer[Any]):
        leaf_index = serializers.IntegerField()
        tree_size = serializers.IntegerField()
        leaf_hash = serializers.CharField()
        inclusion_path = serializers.ListField(child=serializers.CharField())

    @extend_schema(parameters=[Input], responses=Output, operation_id="log_proof_inclusion")
    def get(self, request: Request) -> Response:
        params = self.Input(data=request.query_params)
        params.is_valid(raise_exception=True)
        index, size = params.validated_data["leaf_index"], params.validated_data["tree_size"]
        path = selectors.inclusion(index=index, tree_size=size)
        entry = selectors.entry_at(index)
        return Response(
            {
                "leaf_index": index,
                "tree_size": size,
                "leaf_hash": b64(leaf_hash(bytes(entry.entry))),
                "inclusion_path": [b64(node) for node in path],
            }
        )


class ConsistencyProofApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="ConsistencyProofQuery")
    class Input(serializers.Serializer[Any]):
        tree_size_1 = serializers.IntegerField(min_value=1)
        tree_size_2 = serializers.IntegerField(min_value=1)

    @extend_schema_serializer(component_name="ConsistencyProof")
    class Output(serializers.Serializer[Any]):
        tree_size_1 = serializers.IntegerField()
        tree_size_2 = serializers.IntegerField()
        consistency_path = serializers.ListField(child=serializers.CharField())

    @extend_schema(parameters=[Input], responses=Output, operation_id="log_proof_consistency")
    def get(self, request: Request) -> Response:
        params = self.Input(data=request.query_params)
        params.is_valid(raise_exception=True)
        first, second = params.validated_data["tree_size_1"], params.validated_data["tree_size_2"]
        path = selectors.consistency(first=first, second=second)
        return Response(
            {
                "tree_size_1": first,
                "tree_size_2": second,
                "consistency_path": [b64(node) for node in path],
            }
        )


class PublicKeyApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="LogPublicKeys")
    class Output(serializers.Serializer[Any]):
        @extend_schema_serializer(component_name="LogPublicKey")
        class Key(serializers.Serializer[Any]):
            name = serializers.CharField()
            algorithm = serializers.CharField()
            verifier_key = serializers.CharField(help_text="signed-note verifier key")
            public_key_pem = serializers.CharField()
            created_at = serializers.DateTimeField()
            retired_at = serializers.DateTimeField(allow_null=True)

        keys = Key(many=True)

    @extend_schema(responses=Output, operation_id="log_public_keys")
    def get(self, request: Request) -> Response:
        keys = []
        for key in selectors.log_keys():
            verifier = NoteVerifier.from_verifier_key(key.verifier_key)
            pem = Ed25519PublicKey.from_public_bytes(verifier.public_key_bytes).public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            keys.append(
                {
                    "name": key.name,
                    "algorithm": "Ed25519",
                    "verifier_key": key.verifier_key,
                    "public_key_pem": pem.decode(),
                    "created_at": key.created_at.isoformat(),
                    "retired_at": key.retired_at.isoformat() if key.retired_at else None,
                }
            )
        return Response({"keys": keys})


class SigningKeysApi(APIView):
    """The registry's attestation keys (public halves), current and retired."""

    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="SigningKeys")
    class Output(serializers.Serializer[Any]):
        @extend_schema_serializer(component_name="SigningKey")
        class Key(serializers.Serializer[Any]):
            key_id = serializers.CharField()
            scheme = serializers.CharField()
            public_key = serializers.JSONField(help_text="securesystemslib key dict")
            public_key_pem = serializers.CharField()
            created_at = serializers.DateTimeField()
            retired_at = serializers.DateTimeField(allow_null=True)

        keys = Key(many=True)

    @extend_schema(responses=Output, operation_id="signing_keys")
    def get(self, request: Request) -> Response:
        keys = [
            {
                "key_id": key.key_id,
                "scheme": key.scheme,
                "public_key": key.public_key,
                "public_key_pem": key.public_pem,
                "created_at": key.created_at.isoformat(),
                "retired_at": key.retired_at.isoformat() if key.retired_at else None,
            }
            for key in selectors.signing_keys()
        ]
        return Response({"keys": keys})
