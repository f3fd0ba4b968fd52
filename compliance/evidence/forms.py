"""Forms of the evidence pages: they shape input, the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.db.models import QuerySet

from compliance.choices import EvidenceScope
from compliance.models import EvidenceBundle


class EvidenceRequestForm(forms.Form):
    scope = forms.ChoiceField(choices=EvidenceScope.choices, initial=EvidenceScope.MODEL_VERSION)
    model = forms.CharField(max_length=256, required=False, help_text="registered model name")
    version = forms.IntegerField(min_value=1, required=False, help_text="for one model version")
    period_start = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="UTC; for a model or the inventory",
    )
    period_end = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )


class AuditorGrantForm(forms.Form):
    auditor = forms.ModelChoiceField(
        queryset=User.objects.none(), help_text="an account without roles"
    )
    bundles = forms.ModelMultipleChoiceField(
        queryset=EvidenceBundle.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    expires_at = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="UTC"
    )
    reason = forms.CharField(max_length=500, help_text="e.g. the 2026 SOC 2 audit")

    def __init__(
        self,
        *args: Any,
        auditors: QuerySet[User],
        bundles: QuerySet[EvidenceBundle],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["auditor"].queryset = auditors  # type: ignore[attr-defined]
        self.fields["bundles"].queryset = bundles  # type: ignore[attr-defined]
        bundles_field = self.fields["bundles"]
        bundles_field.label_from_instance = lambda b: f"#{b.pk} {b}"  # type: ignore[attr-defined]
