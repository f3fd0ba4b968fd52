"""The eight SecMLOps security roles shipped as the default catalogue (ARCHITECTURE.md)."""

from __future__ import annotations

from typing import TypedDict


class RoleSpec(TypedDict):
    key: str
    name: str
    pillar: str
    phases: list[str]
    responsibilities: str
    capabilities: list[str]


DEFAULT_ROLES: list[RoleSpec] = [
    {
        "key": "security_architect",
        "name": "Security Architect",
        "pillar": "technology",
        "phases": ["design"],
        "responsibilities": (
            "Owns the threat model (STRIDE per phase) and security requirements; approves policy "
            "changes; approves promotions that change a model's architecture or interfaces."
        ),
        "capabilities": ["approve_promotion", "approve_policy_change", "edit_threat_model"],
    },
    {
        "key": "data_steward",
        "name": "Data Steward",
        "pillar": "process",
        "phases": ["data"],
        "responsibilities": (
            "Owns datasets: provenance, integrity, licences, personal data; attests datasets; "
            "approves when training data changed."
        ),
        "capabilities": ["attest_dataset", "approve_promotion"],
    },
    {
        "key": "model_developer",
        "name": "Model Developer",
        "pillar": "people",
        "phases": ["training"],
        "responsibilities": (
            "Trains and registers models, posts training provenance, requests promotions; never "
            "approves their own."
        ),
        "capabilities": ["attest_training", "request_promotion"],
    },
    {
        "key": "model_validator",
        "name": "Model Validator",
        "pillar": "process",
        "phases": ["evaluation"],
        "responsibilities": (
            "Independent validation: accuracy, robustness and adversarial tests, fairness; attests "
            "evaluations; approves."
        ),
        "capabilities": ["attest_evaluation", "approve_promotion"],
    },
    {
        "key": "mlops_engineer",
        "name": "MLOps Engineer",
        "pillar": "technology",
        "phases": ["deployment"],
        "responsibilities": (
            "Runs pipelines and deployments, manages signing-key and MLflow integration, executes "
            "rollbacks."
        ),
        "capabilities": ["manage_keys", "manage_integration", "execute_rollback"],
    },
    {
        "key": "security_operations",
        "name": "Security Operations",
        "pillar": "technology",
        "phases": ["monitoring"],
        "responsibilities": (
            "Watches scans, drift and incidents; may quarantine a version or trigger an emergency "
            "rollback (break-glass, reviewed after the fact)."
        ),
        "capabilities": ["quarantine_version", "break_glass", "approve_promotion"],
    },
    {
        "key": "compliance_officer",
        "name": "Compliance Officer",
        "pillar": "compliance",
        "phases": ["design", "data", "training", "evaluation", "deployment", "monitoring"],
        "responsibilities": (
            "Owns the control catalogue and evidence; approves for regulated tiers; grants "
            "auditors time-boxed access."
        ),
        "capabilities": [
            "manage_controls",
            "generate_evidence",
            "grant_auditor",
            "approve_promotion",
        ],
    },
    {
        "key": "risk_owner",
        "name": "Risk Owner",
        "pillar": "governance",
        "phases": ["design", "data", "training", "evaluation", "deployment", "monitoring"],
        "responsibilities": (
            "Accountable business owner; accepts residual risk; final sign-off for high and "
            "critical tiers."
        ),
        "capabilities": ["accept_risk", "approve_promotion"],
    },
]
