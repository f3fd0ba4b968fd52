"""Policies as YAML (policies_export / policies_import) and in the admin; risk tiers in the admin.

Every change is a ``policy.changed`` (or ``risk_tier.changed``) log event; nothing changed, no
event; invalid input is refused whole, with its reason, and nothing is written.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.test import Client

from compliance.models import ModelRiskTier, PromotionPolicy
from compliance.policies import DEFAULT_POLICIES, policies_export
from compliance.risk import risk_tier_set
from config.errors import InvalidInput
from provenance.log_format import Actor
from provenance.models import LogEntry
from registry.models import RegisteredModel

pytestmark = pytest.mark.django_db


def export(*args: str) -> str:
    out = StringIO()
    call_command("policies_export", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def import_file(path: Path) -> str:
    out = StringIO()
    call_command("policies_import", str(path), stdout=out)
    return out.getvalue()


def logged(kind: str) -> list[dict[str, Any]]:
    return [json.loads(bytes(e.entry)) for e in LogEntry.objects.filter(event_type=kind)]


# --- YAML ----------------------------------------------------------------------------------


def test_export_writes_every_policy_as_yaml() -> None:
    documents = yaml.safe_load(export())["policies"]

    assert [(d["alias"], d["risk_tier"]) for d in documents] == sorted(
        (d["alias"], d["risk_tier"]) for d in DEFAULT_POLICIES
    )
    high = next(d for d in documents if (d["alias"], d["risk_tier"]) == ("production", "high"))
    assert high["approvals"][-1] == {"roles": ["risk_owner"], "count": 1}
    assert high["revert_out_of_band"] is True


def test_an_export_imports_back_unchanged_and_unlogged(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    export("--output", str(path))
    before = path.read_text()

    output = import_file(path)

    assert output.strip() == f"imported {len(DEFAULT_POLICIES)} policies from {path}"
    assert policies_export() == before
    assert logged("policy.changed") == []


def test_an_edited_export_changes_that_policy_only(tmp_path: Path) -> None:
    loaded = yaml.safe_load(export())
    staging_low = next(
        d for d in loaded["policies"] if (d["alias"], d["risk_tier"]) == ("staging", "low")
    )
    staging_low["approvals"] = [{"roles": ["model_validator"], "count": 2}]
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(loaded))

    import_file(path)

    [event] = logged("policy.changed")
    assert event["object"] == {"type": "promotion_policy", "id": "staging/low"}
    assert event["actor"]["name"].startswith("cli:")
    assert event["before"]["approvals"] == [{"roles": ["model_validator"], "count": 1}]
    assert event["after"]["approvals"] == [{"roles": ["model_validator"], "count": 2}]
    policy = PromotionPolicy.objects.get(alias="staging", risk_tier="low")
    assert policy.approvals == [{"roles": ["model_validator"], "count": 2}]


def _broken(kind: str) -> str:
    loaded = yaml.safe_load(policies_export())
    first, second = loaded["policies"][0], loaded["policies"][1]
    first["approvals"] = [{"roles": ["model_validator"], "count": 5}]  # valid on its own
    if kind == "role":
        second["approvals"] = [{"roles": ["wizard"], "count": 1}]
    elif kind == "gate":
        second["gates"] = {"require_blessing": True}
    elif kind == "tier":
        second["risk_tier"] = "extreme"
    return yaml.safe_dump(loaded)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policies: [unclosed", "not valid YAML"),
        ("- just a list", "expected a mapping with a 'policies' list"),
        ("policies: [1, 2]", "each policy must be a mapping"),
        ("role", "names unknown roles: wizard"),
        ("gate", "unknown gates: require_blessing"),
        ("tier", "risk_tier must be one of low, medium, high, critical"),
    ],
)
def test_invalid_input_exits_2_with_the_reason_and_writes_nothing(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_broken(text) if text in {"role", "gate", "tier"} else text)
    before = policies_export()

    with pytest.raises(CommandError) as refused:
        import_file(path)

    assert refused.value.returncode == 2
    assert message in str(refused.value)
    assert policies_export() == before  # the valid policy in the same file was not written
    assert logged("policy.changed") == []


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as refused:
        import_file(tmp_path / "nope.yaml")

    assert refused.value.returncode == 2
    assert "cannot read" in str(refused.value)


# --- the admin -----------------------------------------------------------------------------


def change_url(policy: PromotionPolicy) -> str:
    return f"/admin/compliance/promotionpolicy/{policy.pk}/change/"


def policy_form(**changes: Any) -> dict[str, Any]:
    data = {
        "approvals": json.dumps([{"roles": ["model_validator"], "count": 2}]),
        "gates": json.dumps({"require_scan_clean": True}),
        "request_ttl_hours": "24",
        "approval_ttl_hours": "24",
        "_save": "Save",
    }
    data.update(changes)
    return data


def test_an_admin_change_goes_through_the_service_and_is_logged(
    client: Client, superuser: Any
) -> None:
    policy = PromotionPolicy.objects.get(alias="staging", risk_tier="low")
    client.force_login(superuser)

    response = client.post(change_url(policy), policy_form())

    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.approvals == [{"roles": ["model_validator"], "count": 2}]
    assert policy.request_ttl_hours == 24
    assert policy.updated_by_name == "root"
    assert not policy.is_default
    [event] = logged("policy.changed")
    assert event["actor"]["name"] == "root"
    assert event["object"]["id"] == "staging/low"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"approvals": json.dumps([{"roles": ["wizard"], "count": 1}])}, "unknown roles: wizard"),
        ({"gates": json.dumps({"require_blessing": True})}, "unknown gates: require_blessing"),
        ({"approvals": json.dumps([{"roles": []}])}, "roles must be a non-empty list"),
        ({"approvals": json.dumps([{"roles": ["risk_owner"], "count": 0}])}, "from 1 to 20"),
        ({"gates": json.dumps({"require_scan_clean": "yes"})}, "must be true or false"),
    ],
)
def test_admin_validation_errors_are_form_errors(
    client: Client, superuser: Any, changes: dict[str, str], error: str
) -> None:
    policy = PromotionPolicy.objects.get(alias="staging", risk_tier="low")
    before = policy.approvals
    client.force_login(superuser)

    response = client.post(change_url(policy), policy_form(**changes))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert error in " ".join(form.non_field_errors())
    assert error in response.content.decode()
    policy.refresh_from_db()
    assert policy.approvals == before
    assert logged("policy.changed") == []


def test_a_new_policy_is_added_through_the_service(client: Client, superuser: Any) -> None:
    client.force_login(superuser)

    response = client.post(
        "/admin/compliance/promotionpolicy/add/",
        policy_form(alias="canary", risk_tier="medium"),
    )

    assert response.status_code == 302
    policy = PromotionPolicy.objects.get(alias="canary")
    assert policy.risk_tier == "medium"
    assert logged("policy.changed")[0]["before"] is None


def test_a_duplicate_policy_is_a_form_error(client: Client, superuser: Any) -> None:
    client.force_login(superuser)

    response = client.post(
        "/admin/compliance/promotionpolicy/add/", policy_form(alias="staging", risk_tier="low")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert logged("policy.changed") == []


def test_policies_are_not_deleted_in_the_admin(client: Client, superuser: Any) -> None:
    policy = PromotionPolicy.objects.first()
    assert policy is not None
    client.force_login(superuser)

    response = client.get(f"/admin/compliance/promotionpolicy/{policy.pk}/delete/")

    assert response.status_code == 403


def test_a_risk_tier_set_in_the_admin_is_logged(client: Client, superuser: Any) -> None:
    model = RegisteredModel.objects.create(name="fraud")
    client.force_login(superuser)

    client.post(
        "/admin/compliance/modelrisktier/add/",
        {"registered_model": model.pk, "tier": "critical", "reason": "scores loans"},
    )
    tier = ModelRiskTier.objects.get()
    client.post(
        f"/admin/compliance/modelrisktier/{tier.pk}/change/",
        {"tier": "medium", "reason": "advisory only now"},
    )

    tier.refresh_from_db()
    assert (tier.tier, tier.set_by_name, tier.reason) == ("medium", "root", "advisory only now")
    events = logged("risk_tier.changed")
    assert [(e["before"]["tier"], e["after"]["tier"]) for e in events] == [
        (None, "critical"),
        ("critical", "medium"),
    ]
    assert events[1]["object"] == {"type": "registered_model", "id": "fraud"}
    assert events[1]["reason"] == "advisory only now"


def test_an_unknown_risk_tier_is_refused() -> None:
    model = RegisteredModel.objects.create(name="fraud")

    with pytest.raises(InvalidInput):
        risk_tier_set(registered_model=model, tier="extreme", actor=Actor.system("t"), reason="")

    assert not ModelRiskTier.objects.exists()
    assert logged("risk_tier.changed") == []
