"""``manage.py create_api_token USER --scope attest [--scope read] [--days 30] [--name ci]``.

For pipelines: standard output is the token and nothing else, so ``TOKEN=$(… create_api_token …)``
captures it; what was created is told on standard error. The token is printed this once only.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.choices import ApiTokenScope
from compliance.tokens import api_token_create
from config.errors import DomainError

UNKNOWN_EXIT = 2


class Command(BaseCommand):
    help = "Create an API token for a user and print it once (standard output: the token only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="username of the token's owner")
        parser.add_argument(
            "--scope",
            dest="scopes",
            action="append",
            required=True,
            choices=ApiTokenScope.values,
            help="a scope the token holds; repeat for several",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=min(30, settings.API_TOKEN_MAX_DAYS),
            help=f"days until it expires (at most {settings.API_TOKEN_MAX_DAYS})",
        )
        parser.add_argument("--name", default="pipeline", help="what the token is for")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()._default_manager
        user = users.filter(**{get_user_model().USERNAME_FIELD: options["user"]}).first()
        if user is None:
            raise CommandError(f"unknown user {options['user']!r}", returncode=UNKNOWN_EXIT)
        try:
            issued = api_token_create(
                user=user,
                name=options["name"],
                scopes=options["scopes"],
                expires_in_days=options["days"],
                acting_user=None,
                actor_name=f"cli:{getpass.getuser()}",
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        token = issued.token
        self.stderr.write(
            f"created {token.prefix} ({token.name}) for {user.get_username()}, "
            f"scopes {', '.join(token.scopes)}, expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        self.stdout.write(issued.secret)
