"""Forms of the compliance app's pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from compliance.choices import ApiTokenScope, Decision
from compliance.models import PromotionPolicy
from compliance.policies import policy_validate
from compliance.tokens import NAME_MAX_CHARS
from config.errors import DomainError


class ApiTokenForm(forms.Form):
    """A new API token: its name, scopes and lifetime (the service checks them again)."""

    name = forms.CharField(max_length=NAME_MAX_CHARS, help_text="what it is for, e.g. ci-attest")
    scopes = forms.MultipleChoiceField(
        choices=ApiTokenScope.choices, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        longest = settings.API_TOKEN_MAX_DAYS
        self.fields["expires_in_days"] = forms.IntegerField(
            label="Expires in (days)",
            min_value=1,
            max_value=longest,
            initial=min(30, longest),
            help_text=f"at most {longest}",
        )


# --------------------------------------------------------------------------
# The promotion workflow (each form only shapes input: the services decide)
# --------------------------------------------------------------------------

_PASSWORD_WIDGET = forms.PasswordInput(attrs={"autocomplete": "current-password"})


class PromotionRequestForm(forms.Form):
    """Ask for an alias to point at a version."""

    alias = forms.CharField(max_length=256)
    reason = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


class BreakGlassForm(PromotionRequestForm):
    """An emergency promotion by Security Operations: the password is entered again."""

    password = forms.CharField(strip=False, widget=_PASSWORD_WIDGET)


class DecisionForm(forms.Form):
    """Approve or reject, with a comment, after re-entering one's password (step-up)."""

    decision = forms.ChoiceField(choices=Decision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))
    password = forms.CharField(
        strip=False, widget=_PASSWORD_WIDGET, help_text="your password, entered again"
    )


class WithdrawForm(forms.Form):
    reason = forms.CharField(max_length=1000, required=False)


class IncidentResolveForm(forms.Form):
    resolution = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))


def form_problems(form: forms.Form) -> str:
    """A form's errors as one sentence for a message (what was typed is never echoed)."""
    problems = []
    for name, errors in form.errors.get_json_data().items():
        text = " ".join(str(error["message"]) for error in errors)
        problems.append(text if name == "__all__" else f"{name}: {text}")
    return "; ".join(problems)


POLICY_FIELDS = (
    "alias",
    "risk_tier",
    "approvals",
    "gates",
    "request_ttl_hours",
    "approval_ttl_hours",
    "revert_out_of_band",
)


class PromotionPolicyAdminForm(forms.ModelForm[PromotionPolicy]):
    """The admin's policy form: the whole document is validated as ``policy_save`` will."""

    document: dict[str, Any]

    class Meta:
        model = PromotionPolicy
        fields = list(POLICY_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            self.document = policy_validate(self.policy_document(cleaned))
        except DomainError as exc:
            raise forms.ValidationError(exc.detail, code=exc.code) from None
        return cleaned

    def policy_document(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance
        document = {name: cleaned.get(name) for name in POLICY_FIELDS}
        if instance.pk is not None:  # alias and tier are read-only once the policy exists
            document["alias"], document["risk_tier"] = instance.alias, instance.risk_tier
        if document.get("gates") is None:
            document["gates"] = {}
        return document
