"""Notifications: the inbox row at once, the e-mail from a Celery task, retried, sent once."""

from __future__ import annotations

import smtplib
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User

from compliance import notifications, tasks
from compliance.choices import PromotionStatus
from compliance.models import Notification, PromotionRequest
from registry.models import ModelVersion
from tests.compliance.test_promotions import (  # noqa: F401  (fixtures used by name)
    decide,
    request_by,
    staging_policy,
    version,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Any) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


def people(*names: str, email: bool = True) -> list[User]:
    return [
        User.objects.create_user(
            username=name, email=f"{name}@example.org" if email else "", password=None
        )
        for name in names
    ]


def queued_ids(django_capture_on_commit_callbacks: Any, **notify: Any) -> list[list[int]]:
    with (
        mock.patch.object(tasks.notifications_email, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        notifications.notify(**notify)
    return [call.args[0] for call in delay.call_args_list]


def test_the_inbox_is_written_at_once_and_the_e_mail_queued(
    django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    ann, bea = people("ann", "bea")
    [nobody] = people("nobody", email=False)

    queued = queued_ids(
        django_capture_on_commit_callbacks, users=[ann, bea, nobody], message="Approval needed"
    )

    assert Notification.objects.count() == 3
    assert mailoutbox == []
    mine = set(Notification.objects.filter(user__in=[ann, bea]).values_list("pk", flat=True))
    assert [set(ids) for ids in queued] == [mine]  # no task for a person without an address


def test_the_task_sends_one_mail_to_everyone_and_marks_each_row(
    django_capture_on_commit_callbacks: Any, mailoutbox: list[Any], settings: Any
) -> None:
    settings.REGISTRY_BASE_URL = "https://registry.example.org"
    ann, bea = people("ann", "bea")
    [ids] = queued_ids(
        django_capture_on_commit_callbacks,
        users=[ann, bea],
        message="Approval needed: fraud v1",
        url="/governance/promotions/1/",
    )

    assert tasks.notifications_email(ids) == 2

    [mail] = mailoutbox
    assert mail.to == ["ann@example.org", "bea@example.org"]
    assert mail.subject == "[SecMLOps Registry] Approval needed: fraud v1"
    assert "https://registry.example.org/governance/promotions/1/" in mail.body
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()
    # a redelivered task sends nothing twice
    assert tasks.notifications_email(ids) == 0
    assert len(mailoutbox) == 1


def test_a_mail_server_down_raises_for_a_retry_and_marks_nothing(
    django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    [ann] = people("ann")
    [ids] = queued_ids(django_capture_on_commit_callbacks, users=[ann], message="Incident")

    with (
        mock.patch(
            "compliance.notifications.send_mail",
            side_effect=smtplib.SMTPServerDisconnected("connection unexpectedly closed"),
        ),
        pytest.raises(OSError, match="unexpectedly closed"),
    ):
        notifications.notifications_email(notification_ids=ids)

    assert Notification.objects.get().emailed_at is None
    assert OSError in getattr(tasks.notifications_email, "autoretry_for", ())
    assert tasks.notifications_email(ids) == 1  # the server is back: the retry sends it
    assert [m.to for m in mailoutbox] == [["ann@example.org"]]


def test_the_requester_is_told_the_status_the_decision_reached(
    personas: dict[str, User],
    version: ModelVersion,  # noqa: F811  (the fixture imported above)
    staging_policy: None,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    """By the time the notification is written the worker may have promoted the request: the
    message still says what the approval did."""
    request = request_by(personas["grace"], version)
    decide(request, personas["bob"])
    Notification.objects.all().delete()

    def promoted_meanwhile(request_id: int) -> None:
        PromotionRequest.objects.filter(pk=request_id).update(status=PromotionStatus.PROMOTED)

    with (
        mock.patch.object(tasks.promotion_execute, "delay", promoted_meanwhile),
        mock.patch.object(tasks.notifications_email, "delay"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        decide(request, personas["carol"])

    [message] = Notification.objects.filter(user=personas["grace"]).values_list(
        "message", flat=True
    )
    assert message.endswith("is now approved"), message
