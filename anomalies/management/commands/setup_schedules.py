"""Create the default detection schedules (idempotent: existing schedules are not touched)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from anomalies.services.schedules import schedules_ensure


class Command(BaseCommand):
    help = "Create the default celery-beat detection schedules that are missing (by name)."

    def handle(self, *args, **options) -> None:
        created, kept = schedules_ensure()
        for name in created:
            self.stdout.write(f"created  {name}")
        for name in kept:
            self.stdout.write(f"kept     {name} (already exists; admin edits preserved)")
