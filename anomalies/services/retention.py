"""Retention: delete what has been closed for longer than the retention period.

What goes, when its anomaly was resolved or dismissed (``closed_at``) more than
``SHELFWATCH_RETENTION_DAYS`` days ago:

- the anomaly, and with it (database cascades) its activity log, its outcome and its
  notification log rows; children grouped under it lose their parent link, cycle counts
  requested for it keep their result but lose the link;
- expired sessions (what ``manage.py clearsessions`` does).

What stays: open, acknowledged and snoozed anomalies with their whole activity log, however old
(an audit trail of a live finding is never cut short), detection runs, imported facts. The
dashboard and reports look back at most a year, so the default (400 days) changes none of their
numbers.

Deletion runs in batches of ``PRUNE_BATCH_SIZE`` anomalies, one transaction each, so a first
prune of millions of rows does not hold one huge transaction; each batch re-checks the status
and closing time in its ``DELETE``, so an anomaly reopened meanwhile stays. A dry run does the
same work inside one transaction that is rolled back: its counts are exact.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from anomalies.models import Anomaly, AnomalyStatus

PRUNE_BATCH_SIZE = 2000
CLOSED_STATUSES = (AnomalyStatus.RESOLVED, AnomalyStatus.DISMISSED)
# Session engines that keep sessions in the database table (their expired rows can be counted).
DB_SESSION_ENGINES = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
)


class RetentionError(ValueError):
    """A retention period that would delete what must stay (fewer than one day)."""


@dataclass(frozen=True)
class RetentionReport:
    """What a prune deleted (or, with ``dry_run``, would delete).

    ``deleted`` maps model labels (``"anomalies.Anomaly"``, ``"anomalies.AnomalyActivity"``,
    ``"outcomes.Outcome"``, ``"notifications.NotificationLog"`` ...) to row counts, cascades
    included; ``sessions`` is the number of expired sessions, ``None`` when the session engine
    does not keep them in the database (they were cleared but not counted).
    """

    cutoff: dt.datetime
    dry_run: bool
    deleted: dict[str, int] = field(default_factory=dict)
    sessions: int | None = 0

    @property
    def anomalies(self) -> int:
        """Anomalies deleted."""
        return self.deleted.get("anomalies.Anomaly", 0)

    @property
    def activities(self) -> int:
        """Activity-log rows deleted with their anomalies."""
        return self.deleted.get("anomalies.AnomalyActivity", 0)


def anomalies_prune(
    *,
    older_than_days: int | None = None,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    batch_size: int = PRUNE_BATCH_SIZE,
) -> RetentionReport:
    """Delete anomalies closed (resolved or dismissed) more than ``older_than_days`` days
    before ``now`` (default ``SHELFWATCH_RETENTION_DAYS``; now), with what cascades from them,
    and expired sessions. Returns the counts.

    ``dry_run`` rolls everything back and reports what would go. Raises ``RetentionError``
    when ``older_than_days`` is below 1.
    """
    days = settings.SHELFWATCH_RETENTION_DAYS if older_than_days is None else older_than_days
    if days < 1:
        raise RetentionError(f"retention must be at least 1 day, not {days}")
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=days)
    deleted: Counter[str] = Counter()
    # A real prune commits batch by batch; a dry run wraps them all in one it rolls back.
    with transaction.atomic() if dry_run else contextlib.nullcontext():
        deleted.update(_closed_anomalies_delete(cutoff=cutoff, batch_size=batch_size))
        sessions = _expired_sessions_clear()
        if dry_run:
            transaction.set_rollback(True)
    return RetentionReport(
        cutoff=cutoff,
        dry_run=dry_run,
        deleted={label: count for label, count in sorted(deleted.items()) if count},
        sessions=sessions,
    )


def _closed_anomalies_delete(*, cutoff: dt.datetime, batch_size: int) -> Counter[str]:
    """Delete in id order, ``batch_size`` at a time, each batch in its own transaction (a
    savepoint inside a dry run's)."""
    closed = Anomaly.objects.filter(status__in=CLOSED_STATUSES, closed_at__lt=cutoff)
    deleted: Counter[str] = Counter()
    last_pk = 0
    while True:
        batch = list(
            closed.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not batch:
            return deleted
        with transaction.atomic():
            _, per_model = closed.filter(pk__in=batch).delete()
        deleted.update(per_model)
        last_pk = batch[-1]


def _expired_sessions_clear() -> int | None:
    """Clear expired sessions (expired now, whatever ``now`` the prune was given) through the
    session engine; count them if it is database-backed."""
    count = None
    if settings.SESSION_ENGINE in DB_SESSION_ENGINES:
        count = Session.objects.filter(expire_date__lt=timezone.now()).count()
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    return count
