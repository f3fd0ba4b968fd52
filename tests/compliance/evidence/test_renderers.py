"""The renderers of an evidence bundle: report (HTML and PDF/A-3b), OSCAL, ML-BOM, model card.

Each is a pure function of the facts: the same facts give the same bytes, and what the facts
lack is said plainly (in the report) or found not satisfied (in OSCAL).
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from jsonschema import Draft7Validator  # type: ignore[import-untyped]  # no stubs installed
from pypdf import PdfReader
from pypdf.generic import ArrayObject
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT7
from trestle.oscal.assessment_plan import AssessmentPlan
from trestle.oscal.assessment_results import AssessmentResults
from weasyprint.urls import FatalURLFetchingError  # type: ignore[import-untyped]

from compliance.evidence import mlbom, oscal, report
from compliance.evidence.controls import CONTROLS, assess
from compliance.evidence.facts import EvidenceFacts
from tests.compliance.evidence.facts_factory import (
    BASE_MODEL,
    DATASET_PROVEN,
    DATASET_UNPROVEN,
    DIGEST_V3,
    bare_facts,
    bundle_files,
    deep,
    large_facts,
    realistic_facts,
    sha,
)

Json = dict[str, Any]


def text_of(html: str) -> str:
    """The visible text of HTML, whitespace collapsed (tags removed, entities kept)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- report ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def realistic_pdf() -> bytes:
    facts = realistic_facts()
    return report.render_pdf(report.render_html(facts), facts)


def test_report_sections_follow_annex_iv_in_order() -> None:
    html = report.render_html(realistic_facts())

    positions = [html.index(f'<section class="part" id="{key}">') for key, _ in report.SECTIONS]
    assert positions == sorted(positions)
    for number, (key, title) in enumerate(report.SECTIONS, start=1):
        heading = html[html.index(f'id="{key}"') :].split("</h2>")[0]
        assert heading.endswith(f"{number}. " + title.replace("'", "&#x27;"))


def test_report_states_who_requested_and_who_approved_in_which_role() -> None:
    text = text_of(report.render_html(realistic_facts()))

    assert "Requested by paul at 2026-03-02 09:00:00 UTC" in text
    assert "vera approve model_validator" in text
    assert "rita approve “Residual risk accepted” risk_owner" in text
    assert "requester, author and approvers are different people" in text
    assert "not met: model_validator (0/1)" in text  # the rejected promotion #12


def test_report_shows_changes_incidents_and_lineage() -> None:
    html = report.render_html(realistic_facts())
    text = text_of(html)

    assert "2026-02-14 22:10:00 UTC fraud-detector staging — → v2 mallory webhook" in text
    assert "out_of_band_alias" in text
    assert "resolved 2026-02-15 08:00:00 UTC" in text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="img"' in html
    assert "no verified provenance" in text
    assert f"sha256:{BASE_MODEL}" in text


def test_report_is_self_contained() -> None:
    html = report.render_html(realistic_facts())

    assert not re.search(r'\b(src|href)="(?!#)', html)
    assert "<script" not in html
    assert "<link" not in html
    assert "@import" not in html
    assert "url(" not in html


def test_report_escapes_user_text() -> None:
    html = report.render_html(realistic_facts())

    assert "<b>with</b>" not in html
    assert "&lt;b&gt;with&lt;/b&gt;" in html
    assert "<scraped>" not in html


def test_report_says_plainly_what_is_missing() -> None:
    text = text_of(report.render_html(bare_facts()))

    for plain in (
        "No evaluation has been reported for this version.",
        "No dataset is recorded for the versions in scope",
        "No promotion was requested in the period",
        "No alias moved in the period.",
        "No lineage is recorded for the versions in scope.",
        "never verified",
        "never scanned",
        "No threat model reference is recorded",
        "not applicable (one version)",
    ):
        assert plain in text


def test_pdf_renders_every_section(realistic_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(realistic_pdf))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)

    assert len(reader.pages) > 1
    for number, (_, title) in enumerate(report.SECTIONS, start=1):
        assert f"{number}. {title}" in text
    assert "Page 1 of" in text


def test_pdf_is_pdfa_3b_with_dates_and_id_from_the_facts(realistic_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(realistic_pdf))
    assert reader.xmp_metadata is not None
    xmp = reader.xmp_metadata.stream.get_data().decode()
    info = reader.metadata
    assert info is not None

    assert 'pdfaid:part="3"' in xmp
    assert 'pdfaid:conformance="B"' in xmp
    assert "<xmp:CreateDate>2026-07-01T09:30:00Z</xmp:CreateDate>" in xmp
    assert str(info["/CreationDate"]) == "D:20260701093000Z"
    assert info.title == "Evidence report: fraud-detector, 2026-01-01 to 2026-07-01"
    file_id = reader.trailer["/ID"]
    assert isinstance(file_id, ArrayObject)
    assert str(file_id[0]) == report.pdf_identifier(realistic_facts()).decode()
    assert "/OutputIntents" in reader.root_object


def test_report_is_byte_identical_for_the_same_facts(realistic_pdf: bytes) -> None:
    facts = realistic_facts()
    html = report.render_html(facts)

    assert html == report.render_html(deep(facts))
    assert report.render_pdf(html, deep(facts)) == realistic_pdf


def test_report_is_byte_identical_when_rendered_later(realistic_pdf: bytes) -> None:
    """Nothing of the moment of rendering gets in: the embedded font subsets are dated from
    the facts (fontTools would stamp the current time in them)."""
    facts = realistic_facts()
    a_day_later = time.time() + 86_400

    with mock.patch("time.time", return_value=a_day_later):
        later = report.render_pdf(report.render_html(facts), facts)

    assert later == realistic_pdf
    assert "SOURCE_DATE_EPOCH" not in os.environ  # put back as it was


def test_report_changes_with_the_facts(realistic_pdf: bytes) -> None:
    facts = realistic_facts()
    facts["bundle"]["generated_at"] = "2026-07-02T09:30:00.000000Z"

    assert report.render_pdf(report.render_html(facts), facts) != realistic_pdf


def test_pdf_rendering_fetches_nothing() -> None:
    facts = bare_facts()
    html = report.render_html(facts).replace(
        "</body>", '<img src="https://tracker.example/pixel.png"></body>'
    )

    with pytest.raises(FatalURLFetchingError):
        report.render_pdf(html, facts)


def test_below_the_limits_the_report_lists_every_row() -> None:
    html = report.render_html(realistic_facts())

    assert 'class="more"' not in html
    assert 'class="compact"' not in html.split('id="development"')[0]
    assert html.count("<h3>fraud-detector v2</h3>") == 2  # development and validation
    assert "fraud-detector v2" in text_of(section(html, "risk"))


def section(html: str, key: str) -> str:
    start = html.index(f'<section class="part" id="{key}">')
    return html[start : html.index("</section>", start)]


@pytest.fixture(scope="module")
def large() -> tuple[EvidenceFacts, str]:
    facts = large_facts(versions=200, attestations=2000)
    return facts, report.render_html(facts)


def test_a_large_scope_renders_to_a_short_pdf(large: tuple[EvidenceFacts, str]) -> None:
    facts, html = large

    reader = PdfReader(io.BytesIO(report.render_pdf(html, facts)))

    assert len(reader.pages) <= 60
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    for number, (_, title) in enumerate(report.SECTIONS, start=1):
        assert f"{number}. {title}" in text


def test_a_large_scope_has_one_row_per_version_and_details_some(
    large: tuple[EvidenceFacts, str],
) -> None:
    facts, html = large
    identity = section(html, "identity")
    rows = identity.split('<table class="compact">')[1].split("</table>")[0]

    assert rows.count("<tr>") == 1 + 200
    assert "200 versions are in scope" in text_of(identity)
    assert "1\N{EN DASH}200" in text_of(identity)  # the model's versions, as a range
    v1 = text_of(rows.split("<td>fraud-detector v1</td>")[1].split("</tr>")[0])
    digest = facts["versions"][0]["model_digest"][: report.DIGEST_PREFIX]
    # its provenance (attestation 0) no longer verifies; one of its 8 evaluations failed
    assert v1 == f"{digest}… dana — clean provenance 0/1, test-result 9/9 7/8 —"
    development = section(html, "development")
    assert "detail 25 of the 200 versions in scope" in text_of(development)
    headings = re.findall(r"<h3>(fraud-detector v\d+)</h3>", development)
    # v200, which the aliases point at, first; then the most recently changed: v190, which
    # staging moved away from when v200 was promoted, then the newest versions
    assert len(headings) == report.DETAILED_VERSIONS
    assert headings[:4] == [
        "fraud-detector v200",
        "fraud-detector v190",
        "fraud-detector v199",
        "fraud-detector v198",
    ]
    assert "fraud-detector v1" not in headings
    assert headings == re.findall(r"<h3>(fraud-detector v\d+)</h3>", section(html, "validation"))
    assert html == report.render_html(deep(facts))


def test_a_large_scope_states_every_figure_exactly(large: tuple[EvidenceFacts, str]) -> None:
    facts, html = large
    text = text_of(html)
    verdicts = Counter(v["scan"]["verdict"] for v in facts["versions"])

    assert "Attestations in the bundle 2000" in text
    assert (
        "20 datasets trained the versions in scope: 10 with verified provenance, 10 without."
        in text
    )
    assert (
        "1600 evaluations reported for the 200 versions in scope: 200 passed one, 200 with a "
        "signed test report."
    ) in text
    scans = ", ".join(f"{verdict} {count}" for verdict, count in sorted(verdicts.items()))
    assert f"Scan verdicts of the 200 versions in scope: {scans}." in text
    assert "promotions were requested in the period" not in text  # 20 fit: none summarised
    assert text.count("Promotion #") == len(facts["promotions"]) == 20
    for _, outcome in assess(facts):
        problems = len(outcome.reason.split("; "))
        if not outcome.satisfied and problems > report.PROBLEMS_SHOWN:
            more = problems - report.PROBLEMS_SHOWN
            assert f"and {more} more, all listed in the finding in {report.OSCAL_RESULTS}" in text


def test_a_large_lineage_is_drawn_around_the_detailed_versions(
    large: tuple[EvidenceFacts, str],
) -> None:
    facts, html = large
    nodes, edges = len(facts["lineage"]["nodes"]), len(facts["lineage"]["edges"])
    drawn = int(re.findall(r'aria-label="Lineage graph: (\d+) nodes', html)[0])

    assert drawn <= report.PICTURE_NODES
    assert (
        f"has {nodes} nodes and {edges} edges, too many to draw legibly: "
        f"the picture draws {drawn} nodes"
    ) in text_of(html)
    assert "<title>alias: fraud-detector@production</title>" in html
    assert "<title>model_version: fraud-detector v200</title>" in html
    assert "<title>model_version: fraud-detector v1</title>" not in html


def test_a_very_large_scope_lists_the_versions_ranked_first() -> None:
    versions = report.SUMMARY_ROWS + 20
    facts = large_facts(versions=versions, attestations=versions)

    identity = section(report.render_html(facts), "identity")

    rows = identity.split('<table class="compact">')[1].split("</table>")[0]
    assert rows.count("<tr>") == 1 + report.SUMMARY_ROWS
    assert f"{versions} versions are in scope. The table lists {report.SUMMARY_ROWS} of them" in (
        text_of(identity)
    )
    assert f"<td>fraud-detector v{versions}</td>" in rows
    assert "<td>fraud-detector v1</td>" not in rows


def test_long_lists_of_a_version_are_cut_with_a_pointer_to_the_files() -> None:
    facts = large_facts(versions=30, attestations=30 * 45)
    extra = [sha(f"approval {n}") for n in range(40)]
    facts["versions"][29]["attestations"] += extra  # v30: 40 approvals, never received
    html = report.render_html(facts)
    development = section(html, "development")
    listed = development.split("<h3>fraud-detector v30</h3>")[1].split("<h3>")[0]
    block = text_of(listed)

    assert "85: not in the bundle 0/40, provenance 1/1, test-result 44/44" in block
    assert "The table leaves out 44 attestations" in block
    assert (
        "The 30 most recently received of the other 41 attestations are listed; all are in "
        "attestations/index.json"
    ) in block
    assert listed.count('<code class="sha">') == report.ATTESTATION_ROWS
    validation = section(html, "validation").split("<h3>fraud-detector v30</h3>")[1]
    assert "The 10 most recent of 43 evaluations are listed" in text_of(validation.split("<h3>")[0])


# --- OSCAL ----------------------------------------------------------------------------------


def assessment(facts: EvidenceFacts, files: dict[str, str] | None = None) -> tuple[Json, Json]:
    plan, results = oscal.assessment_documents(
        facts, bundle_files(facts) if files is None else files
    )
    return json.loads(plan), json.loads(results)


def findings(results: Json) -> dict[str, Json]:
    """Each finding by the control label (``CC8.1``, ``Art. 14``, …)."""
    by_objective = {f"{c.id}_obj": c.label for c in CONTROLS}
    result = results["assessment-results"]["results"][0]
    return {by_objective[f["target"]["target-id"]]: f for f in result["findings"]}


def state(finding: Json) -> str:
    return str(finding["target"]["status"]["state"])


def test_oscal_documents_validate_with_trestle(tmp_path: Path) -> None:
    facts = realistic_facts()
    plan, results = oscal.assessment_documents(facts, bundle_files(facts))
    (tmp_path / "assessment-plan.json").write_bytes(plan)
    (tmp_path / "assessment-results.json").write_bytes(results)

    parsed_plan = AssessmentPlan.oscal_read(tmp_path / "assessment-plan.json")
    parsed_results = AssessmentResults.oscal_read(tmp_path / "assessment-results.json")

    assert isinstance(parsed_plan, AssessmentPlan)
    assert isinstance(parsed_results, AssessmentResults)
    assert parsed_results.import_ap.href == "assessment-plan.json"
    assert parsed_results.metadata.oscal_version.root.root == "1.1.2"
    assert len(parsed_results.results) == 1
    local = parsed_plan.local_definitions
    assert local is not None
    assert local.objectives_and_methods is not None
    objectives = {part.id for o in local.objectives_and_methods for part in o.parts}
    result = parsed_results.results[0]
    assert result.findings is not None
    assert {f.target.target_id for f in result.findings} == objectives
    assert len(objectives) == len(CONTROLS) == 18


def test_oscal_catalogue_covers_the_frameworks() -> None:
    labels = {(c.framework.split(" (")[0], c.label) for c in CONTROLS}

    assert labels == {
        ("SOC 2", "CC8.1"),
        ("ISO/IEC 27001:2022", "A.5.3"),
        ("ISO/IEC 27001:2022", "A.8.15"),
        ("ISO/IEC 27001:2022", "A.8.32"),
        *(("ISO/IEC 42001:2023", f"A.6.2.{n}") for n in range(4, 9)),
        ("ISO/IEC 42001:2023", "A.7.5"),
        *(("EU AI Act", f"Art. {n}") for n in (11, 12, 14, 15, 17)),
        ("NIST AI RMF 1.0", "GOVERN 1.6"),
        ("NIST AI RMF 1.0", "MEASURE 1.3"),
        ("NIST AI RMF 1.0", "MANAGE 1.1"),
    }


def test_oscal_observations_point_at_evidence_files_by_hash() -> None:
    facts = realistic_facts()
    files = bundle_files(facts)
    _, results = assessment(facts, files)
    document = results["assessment-results"]
    resources = {r["uuid"]: r for r in document["back-matter"]["resources"]}

    cited = 0
    for observation in document["results"][0]["observations"]:
        for evidence in observation.get("relevant-evidence", []):
            sha = files[evidence["href"]]
            assert evidence["props"] == [{"name": "sha256", "ns": oscal.PROPERTY_NS, "value": sha}]
            resource = resources[evidence["links"][0]["href"].removeprefix("#")]
            assert resource["rlinks"][0]["href"] == evidence["href"]
            assert resource["rlinks"][0]["hashes"] == [{"algorithm": "SHA-256", "value": sha}]
            cited += 1
    assert cited > len(CONTROLS)
    approval = next(
        f for f in findings(results).values() if f["title"].endswith("Art. 14 Human oversight")
    )
    observation = next(
        o
        for o in document["results"][0]["observations"]
        if o["uuid"] == approval["related-observations"][0]["observation-uuid"]
    )
    hrefs = {e["href"] for e in observation["relevant-evidence"]}
    assert "json/approvals.json" in hrefs
    assert any(href.startswith("attestations/") for href in hrefs)


def test_oscal_findings_for_the_realistic_period() -> None:
    by_label = findings(assessment(realistic_facts())[1])

    assert state(by_label["CC8.1"]) == "satisfied"
    assert state(by_label["A.5.3"]) == "satisfied"
    assert state(by_label["Art. 14"]) == "satisfied"
    assert state(by_label["Art. 15"]) == "satisfied"
    assert state(by_label["MEASURE 1.3"]) == "satisfied"
    assert state(by_label["A.7.5"]) == "not-satisfied"
    assert f"sha256:{DATASET_UNPROVEN[:12]}" in by_label["A.7.5"]["description"]
    assert by_label["A.7.5"]["target"]["status"]["reason"] == "fail"


def test_oscal_says_not_satisfied_when_there_is_nothing_to_show() -> None:
    by_label = findings(assessment(bare_facts())[1])

    expected = {
        "CC8.1": "No alias moved in the period",
        "A.5.3": "No approved promotion",
        "A.8.15": "The log has never been verified",
        "Art. 14": "No promotion was approved by people",
        "Art. 15": "has no passed evaluation",
        "A.6.2.4": "has no signed passed evaluation",
        "A.7.5": "names no training dataset",
        "MEASURE 1.3": "no independent validation",
        "MANAGE 1.1": "No go/no-go decision",
    }
    for label, reason in expected.items():
        assert state(by_label[label]) == "not-satisfied", label
        assert reason in by_label[label]["description"], label


def test_a_missing_evidence_file_is_not_satisfied() -> None:
    facts = realistic_facts()
    files = bundle_files(facts)
    del files["log/checkpoint.txt"]

    by_label = findings(assessment(facts, files)[1])

    assert state(by_label["Art. 12"]) == "not-satisfied"
    assert (
        "Evidence missing from the bundle: log/checkpoint.txt" in by_label["Art. 12"]["description"]
    )


@pytest.mark.parametrize(
    ("label", "spoil", "reason"),
    [
        (
            "CC8.1",
            lambda f: f["incidents"][0].update({"status": "open", "resolved_at": None}),
            "incident #5 still open",
        ),
        (
            "CC8.1",
            lambda f: f["promotions"][0].update({"break_glass": True}),
            "production moved 2 → 3 at 2026-03-02T15:00:00.000000Z (registry): break-glass "
            "promotion #11 not reviewed",
        ),
        (
            "A.5.3",
            lambda f: f["promotions"][0]["approvals"][0].update({"name": "dana"}),
            "dana approved their own version",
        ),
        (
            "Art. 14",
            lambda f: f["promotions"][0]["approvals"][1].update({"model_digest": "00" * 32}),
            "rita's approval is for another digest",
        ),
        (
            "A.8.32",
            lambda f: f["promotions"][0]["gates"][1].update({"ok": False}),
            "had failing gates: require_scan_clean",
        ),
        (
            "MEASURE 1.3",
            lambda f: f["promotions"][0]["approvals"][0].update(
                {"voided_at": "2026-03-03T00:00:00Z"}
            ),
            "has no independent model_validator approval",
        ),
        (
            "A.6.2.5",
            lambda f: f["models"][0]["aliases"].update({"staging": 2}),
            "alias staging → v2 was not set by a promotion",
        ),
    ],
)
def test_a_broken_control_is_found_not_satisfied(
    label: str, spoil: Callable[[EvidenceFacts], None], reason: str
) -> None:
    facts = realistic_facts()
    assert state(findings(assessment(facts)[1])[label]) == "satisfied"
    spoil(facts)

    finding = findings(assessment(facts)[1])[label]

    assert state(finding) == "not-satisfied"
    assert reason in finding["description"]


def test_a_reviewed_break_glass_promotion_counts_as_a_controlled_change() -> None:
    facts = realistic_facts()
    facts["promotions"][0].update({"break_glass": True, "approvals": [], "required": []})
    facts["incidents"].append(
        {
            "id": 6,
            "kind": "break_glass",
            "status": "resolved",
            "model": "fraud-detector",
            "version": 3,
            "summary": "break-glass production → v3 by paul",
            "opened_at": "2026-03-02T15:00:00.000000Z",
            "resolved_at": "2026-03-03T10:00:00.000000Z",
            "resolution": "Reviewed: emergency fix for a false-positive storm",
        }
    )

    by_label = findings(assessment(facts)[1])

    assert state(by_label["CC8.1"]) == "satisfied"
    assert state(by_label["A.8.32"]) == "satisfied"
    assert state(by_label["Art. 14"]) == "not-satisfied"  # no person approved it before


def collector_variant(facts: EvidenceFacts) -> EvidenceFacts:
    """The same facts in the shapes the collector also writes: ``sha256:``-prefixed dataset
    and base-model digests, gates with ``passed``, requirements naming alternative roles."""
    variant = deep(facts)
    for version in variant["versions"]:
        version["datasets"] = [f"sha256:{d}" for d in version["datasets"]]
        version["base_models"] = [f"sha256:{d}" for d in version["base_models"]]
    for promotion in variant["promotions"]:
        for gate in promotion["gates"]:
            gate["passed"] = gate.pop("ok")
        promotion["required"] = [
            {"roles": [r["role"], "security_architect"], "count": r["count"]}
            for r in promotion["required"]
        ]
    return variant


def test_the_collectors_variant_shapes_give_the_same_findings() -> None:
    facts = realistic_facts()
    variant = collector_variant(facts)

    expected = {label: state(f) for label, f in findings(assessment(facts)[1]).items()}
    assert {label: state(f) for label, f in findings(assessment(variant)[1]).items()} == expected
    dependencies = {
        d["ref"]: d.get("dependsOn") for d in json.loads(mlbom.ml_bom(variant))["dependencies"]
    }
    assert dependencies == {
        d["ref"]: d.get("dependsOn") for d in json.loads(mlbom.ml_bom(facts))["dependencies"]
    }
    text = text_of(report.render_html(variant))
    assert "1 \N{MULTIPLICATION SIGN} model_validator or security_architect" in text
    assert f"sha256:{BASE_MODEL}" in text
    assert "sha256:sha256:" not in text


def test_oscal_is_byte_identical_with_name_based_uuids() -> None:
    facts = realistic_facts()
    first = oscal.assessment_documents(facts, bundle_files(facts))

    assert oscal.assessment_documents(deep(facts), bundle_files(facts)) == first
    uuids = re.findall(rb'"(?:uuid|observation-uuid)": "([0-9a-f-]{36})"', b"".join(first))
    assert uuids
    assert {uuid.UUID(u.decode()).version for u in uuids} == {5}
    other = deep(facts)
    other["bundle"]["id"] = 99
    assert oscal.assessment_documents(other, bundle_files(other))[1] != first[1]


# --- ML-BOM and model card ------------------------------------------------------------------


@pytest.fixture(scope="module")
def cyclonedx_validator() -> Draft7Validator:
    """The CycloneDX 1.6 JSON schema shipped with cyclonedx-python-lib, its references (SPDX
    licence ids, JSF signatures) resolved from the same package, never from the network."""
    schemas = package_files("cyclonedx.schema._res")

    def load(name: str) -> Any:
        return json.loads((schemas / name).read_text())

    def offline(uri: str) -> Resource[Any]:
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs class

    registry: Registry[Any] = Registry(retrieve=offline).with_resources(  # type: ignore[call-arg]
        (
            f"http://cyclonedx.org/schema/{name}",
            Resource.from_contents(load(name), default_specification=DRAFT7),
        )
        for name in ("spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json")
    )
    schema = load("bom-1.6.SNAPSHOT.schema.json")
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, registry=registry)


def schema_errors(validator: Draft7Validator, document: Json) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_the_schema_registry_resolves_references_offline(
    cyclonedx_validator: Draft7Validator,
) -> None:
    def bom_with_licence(licence: str) -> Json:
        component = {"type": "library", "name": "x", "licenses": [{"license": {"id": licence}}]}
        return {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [component]}

    assert schema_errors(cyclonedx_validator, bom_with_licence("Apache-2.0")) == []
    assert schema_errors(cyclonedx_validator, bom_with_licence("Not-A-Licence"))


@pytest.mark.parametrize("make_facts", [realistic_facts, bare_facts])
def test_ml_bom_is_valid_cyclonedx_1_6(
    cyclonedx_validator: Draft7Validator, make_facts: Callable[[], EvidenceFacts]
) -> None:
    document = json.loads(mlbom.ml_bom(make_facts()))

    assert schema_errors(cyclonedx_validator, document) == []
    assert document["specVersion"] == "1.6"


def test_ml_bom_describes_models_data_and_dependencies() -> None:
    document = json.loads(mlbom.ml_bom(realistic_facts()))
    components = {c["bom-ref"]: c for c in document["components"]}

    v3 = components["model:fraud-detector/3"]
    assert v3["type"] == "machine-learning-model"
    assert v3["hashes"] == [{"alg": "SHA-256", "content": DIGEST_V3}]
    assert {f["name"] for f in v3["components"]} == {"MLmodel", "model.skops"}
    card = v3["modelCard"]
    assert card["modelParameters"]["datasets"] == [{"ref": f"dataset:sha256:{DATASET_PROVEN}"}]
    metrics = {(m["type"], m["value"]) for m in card["quantitativeAnalysis"]["performanceMetrics"]}
    assert ("auc", "0.93") in metrics
    assert ("robust_accuracy", "0.88") in metrics
    assert mlbom.UNKNOWN_USE in card["considerations"]["technicalLimitations"]
    assert {"type": "model-card", "url": "model/model-card.md"} in v3["externalReferences"]
    assert components[f"dataset:sha256:{DATASET_UNPROVEN}"]["type"] == "data"
    assert components[f"base-model:sha256:{BASE_MODEL}"]["type"] == "machine-learning-model"
    dependencies = {d["ref"]: d.get("dependsOn", []) for d in document["dependencies"]}
    assert dependencies["model:fraud-detector/2"] == sorted(
        [
            f"base-model:sha256:{BASE_MODEL}",
            f"dataset:sha256:{DATASET_PROVEN}",
            f"dataset:sha256:{DATASET_UNPROVEN}",
        ]
    )
    tool = document["metadata"]["tools"]["components"][0]
    assert tool["name"] == "SecMLOps Registry"


def test_ml_bom_is_byte_identical_with_a_name_based_serial_number() -> None:
    facts = realistic_facts()
    first = mlbom.ml_bom(facts)

    assert mlbom.ml_bom(deep(facts)) == first
    serial = json.loads(first)["serialNumber"]
    assert uuid.UUID(serial.removeprefix("urn:uuid:")).version == 5


def test_model_card_tells_what_is_known_and_what_is_not() -> None:
    card = mlbom.model_card(realistic_facts())

    for heading in (
        "## fraud-detector v3",
        "### Intended use",
        "### Training data",
        "### Evaluation",
        "### Security scan",
        "### Approvals and promotions",
        "### Aliases",
    ):
        assert heading in card
    assert mlbom.UNKNOWN_USE in card
    assert f"| `{DATASET_UNPROVEN}` | chargebacks &lt;scraped> | **none** |" in card
    assert "| PASSED | auc = 0.93, latency\\_ms = 31, robust\\_accuracy = 0.88 |" in card
    assert "approve by vera as model\\_validator" in card
    assert "Points at this version now: production." in card
    assert "<b>" not in card
    assert mlbom.model_card(deep(realistic_facts())) == card


def test_model_card_for_bare_facts_says_what_is_missing() -> None:
    card = mlbom.model_card(bare_facts())

    assert "No evaluation has been reported for this version." in card
    assert "No verified training provenance names the training data." in card
    assert "No promotion of this version was requested in the period." in card
    assert "Verdict **pending**, scanned never." in card
