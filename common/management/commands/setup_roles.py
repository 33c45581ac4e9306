"""Create or update the role groups of ``common.roles`` (idempotent; safe at every deploy)."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from common.roles import ALL_PERMISSIONS, ROLES


def _permissions(codes: list[str] | str) -> set[int]:
    rows = Permission.objects.values_list("pk", "content_type__app_label", "codename")
    known = {f"{app_label}.{codename}": pk for pk, app_label, codename in rows}
    if codes == ALL_PERMISSIONS:
        return set(known.values())
    unknown = sorted(set(codes) - set(known))
    if unknown:
        raise CommandError(f"Unknown permission(s): {', '.join(unknown)} (run migrate first?).")
    return {known[code] for code in codes}


class Command(BaseCommand):
    help = (
        "Create the role groups (Viewer, Store staff, Ops manager, Admin) and set each one's "
        "permissions to exactly those of common.roles. Prints what it created or changed."
    )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            for name, codes in ROLES.items():
                wanted = _permissions(codes)
                group, created = Group.objects.get_or_create(name=name)
                current = set(group.permissions.values_list("pk", flat=True))
                if created:
                    group.permissions.set(wanted)
                    self.stdout.write(f"created {name}: {len(wanted)} permissions")
                elif current != wanted:
                    group.permissions.set(wanted)
                    added, removed = len(wanted - current), len(current - wanted)
                    self.stdout.write(f"updated {name}: +{added} -{removed} permissions")
                else:
                    self.stdout.write(f"unchanged {name}: {len(wanted)} permissions")
