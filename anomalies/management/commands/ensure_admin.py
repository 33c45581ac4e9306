"""Create (or reset) a superuser for local use and print its login."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create a superuser for the local admin if it does not exist and print the login. "
        "The password comes from --password, else a random one is generated and printed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", help="Default: generate a random password.")
        parser.add_argument(
            "--reset", action="store_true", help="Set a new password if the user exists."
        )

    def handle(self, *args, **options) -> None:
        user_model = get_user_model()
        username = options["username"]
        user = user_model.objects.filter(username=username).first()
        if user is not None and not options["reset"]:
            self.stdout.write(
                f"Admin user '{username}' already exists (use --reset for a new password)."
            )
            return
        password = options["password"] or secrets.token_urlsafe(9)
        if user is None:
            user = user_model.objects.create_superuser(
                username=username, email="", password=password
            )
        else:
            user.set_password(password)
            user.is_staff = user.is_superuser = True
            user.save()
        self.stdout.write(self.style.SUCCESS(f"Admin login: {username} / {password}"))
