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
