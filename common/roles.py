"""The roles of ShelfWatch: Django groups and the model permissions each one holds.

Data in code, applied by ``manage.py setup_roles`` (idempotent: it creates missing groups and
sets each group's permissions to exactly this list). Permissions are "app_label.codename"
strings so that this module imports no app. What a user may see is further limited to their
stores (``inventory.LocationAccess``); ``inventory.view_all_locations`` lifts that limit.

- *Viewer*: reads everything in their stores (no detector settings, schedules or channels).
- *Store staff*: a viewer who triages anomalies (acknowledge, assign, snooze, resolve, dismiss,
  notes), requests and records cycle counts, records outcomes and reports misses.
- *Ops manager*: store staff of every store, who also sets detection up (detector settings,
  the detection policy, threshold proposals, beat schedules, notification channels) and
  starts detection runs.
- *Admin*: every permission (like a superuser, but revocable as a group).
"""

from __future__ import annotations

from typing import Final

VIEWER: Final = "Viewer"
STORE_STAFF: Final = "Store staff"
OPS_MANAGER: Final = "Ops manager"
ADMIN: Final = "Admin"
ALL_PERMISSIONS: Final = "*"


def _perms(app_label: str, actions: str, *models: str) -> list[str]:
    return [f"{app_label}.{action}_{model}" for model in models for action in actions.split()]


VIEWER_PERMISSIONS: Final[list[str]] = [
    *_perms(
        "inventory",
        "view",
        "product",
        "location",
        "dailysales",
        "stocklevel",
        "receipt",
        "promotion",
        "calendarevent",
        "stockadjustment",
    ),
    *_perms("anomalies", "view", "anomaly", "anomalyactivity", "detectionrun", "detectionchunk"),
    "anomalies.view_savedview",  # the shared views of the triage list
    *_perms("outcomes", "view", "outcome", "cyclecount", "missedanomaly"),
]

STORE_STAFF_PERMISSIONS: Final[list[str]] = [
    *VIEWER_PERMISSIONS,
    "anomalies.change_anomaly",  # every triage transition, the assignee and notes
    *_perms("anomalies", "add change delete", "savedview"),  # their own saved views
    *_perms("outcomes", "add change", "cyclecount", "outcome"),
    "outcomes.add_missedanomaly",
]

OPS_MANAGER_PERMISSIONS: Final[list[str]] = [
    *STORE_STAFF_PERMISSIONS,
    "inventory.view_all_locations",
    "anomalies.add_detectionrun",  # start detection runs
    *_perms("anomalies", "view add change", "detectorconfig"),
    *_perms("anomalies", "view change", "detectionpolicy", "triagesla"),
    "anomalies.share_savedview",  # shared views of the triage list
    *_perms("outcomes", "view add change", "thresholdproposal"),
    "outcomes.change_missedanomaly",
    *_perms("notifications", "view add change delete", "notificationchannel"),
    "notifications.view_notificationlog",
    *_perms(
        "django_celery_beat",
        "view add change delete",
        "periodictask",
        "crontabschedule",
        "intervalschedule",
        "solarschedule",
        "clockedschedule",
    ),
]

# Group name -> permission strings, or ALL_PERMISSIONS for every permission that exists.
ROLES: Final[dict[str, list[str] | str]] = {
    VIEWER: VIEWER_PERMISSIONS,
    STORE_STAFF: STORE_STAFF_PERMISSIONS,
    OPS_MANAGER: OPS_MANAGER_PERMISSIONS,
    ADMIN: ALL_PERMISSIONS,
}
