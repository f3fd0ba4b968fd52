"""Vocabularies of the compliance app."""

from __future__ import annotations

from django.db import models


class Pillar(models.TextChoices):
    """The five SecMLOps pillars: People, Technology, Processes, Governance, Compliance."""

    PEOPLE = "people", "People"
    TECHNOLOGY = "technology", "Technology"
    PROCESS = "process", "Processes"
    GOVERNANCE = "governance", "Governance"
    COMPLIANCE = "compliance", "Compliance"


class LifecyclePhase(models.TextChoices):
    DESIGN = "design", "Design"
    DATA = "data", "Data"
    TRAINING = "training", "Training"
    EVALUATION = "evaluation", "Evaluation"
    DEPLOYMENT = "deployment", "Deployment"
    MONITORING = "monitoring", "Monitoring"


class ApiTokenScope(models.TextChoices):
    """What an API token may be used for. Scopes are independent: ``attest`` does not imply
    ``read``; a token holds each scope its pipeline needs."""

    READ = "read", "Read (safe methods)"
    ATTEST = "attest", "Submit attestations"
    APPROVE = "approve", "Approve or reject promotions"
    EVIDENCE = "evidence", "Ask for evidence bundles"


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class PromotionStatus(models.TextChoices):
    """draft → pending → approved → executing → promoted, or rejected / withdrawn / expired /
    failed. The allowed moves are ``PROMOTION_TRANSITIONS`` (compliance/promotions.py)."""

    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    EXECUTING = "executing", "Executing in MLflow"
    PROMOTED = "promoted", "Promoted"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"
    FAILED = "failed", "Failed"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class IncidentKind(models.TextChoices):
    OUT_OF_BAND_ALIAS = "out_of_band_alias", "Alias changed outside the registry"
    BREAK_GLASS = "break_glass", "Break-glass promotion to review"
    INTEGRITY = "integrity", "Integrity failure"
    SECURITY = "security", "Security finding"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class EvidenceScope(models.TextChoices):
    MODEL_VERSION = "model_version", "One model version"
    REGISTERED_MODEL = "registered_model", "One registered model over a period"
    INVENTORY = "inventory", "The whole inventory over a period"


class EvidenceStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
