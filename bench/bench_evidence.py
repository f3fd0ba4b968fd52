"""Evidence: building a bundle for a model with 200 versions, 2,000 attestations, 20,000 events.

Targets (issue 8): the bundle for the registered model is built in at most 30 s with a peak
memory of at most 400 MB, and the peak at 20,000 log events is at most 1.3x the peak at 2,000
(the log extract is streamed, not held). Each build runs in a fresh child process (a worker's
view: Django set up, nothing cached), which reports its wall time and its peak resident memory
(``VmHWM``, the process image's own high-water mark). The two builds cover the same versions
and attestations; only the period, and so the number of log entries in the bundle, differs.
The baseline, in the same run, is the floor of any bundle: the child process starting Django
and reading the same rows (attestations with their envelopes, log entries) without writing
anything. The bundle is then checked with its own ``verify.py``, timed too.
BENCH_EVIDENCE_VERSIONS, BENCH_EVIDENCE_ATTESTATIONS, BENCH_EVIDENCE_EVENTS change the sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

VERSIONS = int(os.environ.get("BENCH_EVIDENCE_VERSIONS", "200"))
ATTESTATIONS = int(os.environ.get("BENCH_EVIDENCE_ATTESTATIONS", "2000"))
EVENTS = int(os.environ.get("BENCH_EVIDENCE_EVENTS", "20000"))
MODEL = "bench-evidence"

CHILD = """
import json, os, resource, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
started = time.perf_counter()
mode, bundle_id = sys.argv[1], int(sys.argv[2])
if mode == "build":
    from compliance.evidence.services import evidence_build
    bundle = evidence_build(bundle_id=bundle_id)
    result = {"sha256": bundle.sha256, "size": bundle.size}
else:
    from compliance.evidence import collect
    from compliance.models import EvidenceBundle
    bundle = EvidenceBundle.objects.select_related("checkpoint").get(pk=bundle_id)
    scope = collect.scope_of(bundle)
    ids = collect.attestation_ids(scope)
    size = sum(len(bytes(a.envelope)) for a in collect.attestation_rows(ids))
    digests = [a.envelope_digest for a in collect.attestation_rows(ids)]
    condition = collect.log_condition(scope, digests)
    entries = sum(len(e) for _, _, e in collect.log_rows(condition, bundle.checkpoint.tree_size))
    result = {"bytes": size + entries}
result["seconds"] = time.perf_counter() - started
# VmHWM is this process image's own peak; ru_maxrss would carry the parent's over execve.
try:
    status = open("/proc/self/status").read()
    peak_kb = int(status.split("VmHWM:")[1].split()[0])
except (OSError, IndexError, ValueError):
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result["peak_mb"] = peak_kb / 1024
print(json.dumps(result))
"""


def _child(mode: str, bundle_id: int) -> dict[str, Any]:
    from django.db import connections

    connections.close_all()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(bundle_id)],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _setup() -> tuple[Any, Any, Any]:
    """The model, its versions and attestations; returns (officer, start, middle)."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from compliance.models import SecurityRole
    from compliance.services import role_grant
    from provenance import predicates
    from provenance.attestation_verify import (
        PREDICATE_TEST_RESULT,
        generate_signing_key,
        sign_statement,
        signer_from_pem,
    )
    from provenance.log_format import Actor, Event
    from provenance.models import Artifact, ArtifactKind
    from provenance.services import (
        attestation_ingest,
        log_append_many,
        trusted_signer_add,
        version_node_ensure,
    )
    from registry.models import ModelVersion, RegisteredModel

    actor = Actor.system("bench")
    start = timezone.now() - timedelta(seconds=1)
    officer = User.objects.create_user("bench-evidence-officer", password="x")  # noqa: S106
    role_grant(
        user=officer,
        role=SecurityRole.objects.get(key="compliance_officer"),
        acting_user=None,
        actor_name="bench",
    )
    model = RegisteredModel.objects.create(name=MODEL)
    digests = []
    for number in range(1, VERSIONS + 1):
        digest = f"{number:064x}"
        artifact = Artifact.objects.create(
            digest=digest,
            kind=ArtifactKind.MODEL,
            name=f"{MODEL}/{number}",
            size=1,
            created_at=timezone.now(),
        )
        ModelVersion.objects.create(
            registered_model=model, version=number, user_id="alice", model_artifact=artifact
        )
        version_node_ensure(name=MODEL, version=number, artifact=artifact)
        digests.append(digest)
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="bench-evidence-pipeline",
        public_key=public_key,
        predicate_types=[PREDICATE_TEST_RESULT],
        actor=actor,
    )
    signer = signer_from_pem(private_pem)
    for index in range(ATTESTATIONS):
        number = index % VERSIONS + 1
        statement = predicates.statement(
            subjects=[(f"{MODEL}/{number}", digests[number - 1])],
            predicate_type=PREDICATE_TEST_RESULT,
            predicate={
                "result": "PASSED",
                "configuration": [{"name": f"suite-{index}"}],
                "metrics": {"auc": 0.9 + (index % 10) / 100},
            },
        )
        raw = sign_statement(statement, signer)
        attestation_ingest(raw=raw, media_type="application/json", actor=actor)
    middle = timezone.now()
    remaining = max(EVENTS - ATTESTATIONS, 0)  # each attestation was one accepted event
    batch = 1000
    for offset in range(0, remaining, batch):
        events = [
            Event(
                event_type="model_version.observed",
                actor=actor,
                object_type="model_version",
                object_id=f"{MODEL}/{(offset + i) % VERSIONS + 1}",
                after={"n": offset + i},
            )
            for i in range(min(batch, remaining - offset))
        ]
        log_append_many(events)
    return officer, start, middle


def _bundle(officer: Any, start: Any, end: Any) -> Any:
    from django.utils import timezone

    from compliance.models import EvidenceBundle
    from registry.models import RegisteredModel

    return EvidenceBundle.objects.create(
        scope="registered_model",
        registered_model=RegisteredModel.objects.get(name=MODEL),
        period_start=start,
        period_end=end,
        requested_by=officer,
        requested_by_name=officer.username,
        requested_at=timezone.now(),
    )


def _verify(bundle: Any) -> tuple[float, bool]:
    from django.core.files.storage import storages

    from compliance.evidence import verifier

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bundle.zip"
        with storages["evidence"].open(bundle.file_name, "rb") as source:
            path.write_bytes(source.read())
        started = time.perf_counter()
        report = verifier.verify(path)
        return time.perf_counter() - started, report.passed


def run() -> None:
    from django.test.utils import override_settings
    from django.utils import timezone

    from compliance.models import EvidenceBundle

    print(f"setting up {VERSIONS} versions, {ATTESTATIONS} attestations, {EVENTS} log events…")
    started = time.perf_counter()
    with override_settings(DEBUG=False):
        officer, start, middle = _setup()
    print(f"setup {time.perf_counter() - started:.1f} s")
    results = {}
    for label, end in (("small", middle), ("large", timezone.now() + timedelta(minutes=1))):
        bundle = _bundle(officer, start, end)
        built = _child("build", bundle.pk)  # fixes the checkpoint the floor reads up to
        floor = _child("read", bundle.pk)
        bundle = EvidenceBundle.objects.select_related("checkpoint").get(pk=bundle.pk)
        entries = _entries_in(bundle)
        verify_seconds, verified = _verify(bundle)
        results[label] = built
        print(
            f"{label}: {entries} log entries, {ATTESTATIONS} attestations, {VERSIONS} versions: "
            f"built in {built['seconds']:.1f} s (target ≤ 30 s), peak {built['peak_mb']:.0f} MB "
            f"(target ≤ 400 MB), zip {built['size'] / 1e6:.1f} MB; baseline (start Django, read "
            f"the same rows): {floor['seconds']:.1f} s, peak {floor['peak_mb']:.0f} MB; "
            f"verify.py {verify_seconds:.1f} s, {'passed' if verified else 'FAILED'}"
        )
    ratio = results["large"]["peak_mb"] / results["small"]["peak_mb"]
    print(f"peak memory large/small: {ratio:.2f}x (target ≤ 1.3x)")


def _entries_in(bundle: Any) -> int:
    import io
    import zipfile

    from django.core.files.storage import storages

    with storages["evidence"].open(bundle.file_name, "rb") as source:
        archive = zipfile.ZipFile(io.BytesIO(source.read()))
    return archive.read("log/entries.jsonl").count(b"\n")
