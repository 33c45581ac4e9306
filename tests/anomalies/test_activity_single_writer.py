"""The activity log has one writer: ``anomalies.services.triage.anomaly_activity_record``.

A scan of the project's source (not the tests, not the writer's own module) for anything else
that creates ``AnomalyActivity`` rows: ``AnomalyActivity.objects.create/bulk_create/...`` or
``AnomalyActivity(...)``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from anomalies.models import ActivityAction, AnomalyActivity
from anomalies.services import triage
from anomalies.services.triage import ActivityEntry, anomaly_activity_record
from tests.factories import AnomalyFactory

ROOT = Path(__file__).resolve().parents[2]
WRITER_MODULE = Path(triage.__file__).resolve()
SKIPPED_DIRS = {"tests", "migrations", "node_modules", "static", "templates"}
MODEL = "AnomalyActivity"
WRITING_METHODS = {"create", "bulk_create", "get_or_create", "update_or_create"}


def activity_writes(source: str) -> list[int]:
    """Line numbers in ``source`` that create ``AnomalyActivity`` rows."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == MODEL:
            lines.append(node.lineno)  # AnomalyActivity(...), then saved or bulk-created
        elif (
            isinstance(func, ast.Attribute)
            and func.attr in WRITING_METHODS
            and isinstance(func.value, ast.Attribute)
            and isinstance(func.value.value, ast.Name)
            and func.value.value.id == MODEL
        ):
            lines.append(node.lineno)  # AnomalyActivity.<manager>.create(...)
    return lines


def project_sources() -> list[Path]:
    return [
        path
        for path in sorted(ROOT.rglob("*.py"))
        if not any(part.startswith(".") or part in SKIPPED_DIRS for part in path.parts)
        and path.resolve() != WRITER_MODULE
    ]


@pytest.mark.parametrize(
    "snippet",
    [
        "AnomalyActivity.objects.create(anomaly_id=1, action='note')",
        "AnomalyActivity.objects.bulk_create([])",
        "row = AnomalyActivity(anomaly_id=1)\nrow.save()",
    ],
)
def test_the_scan_recognises_a_write(snippet):
    assert activity_writes(snippet) == [1]


def test_the_scan_covers_the_apps_that_log_on_anomalies():
    scanned = {path.relative_to(ROOT).as_posix() for path in project_sources()}
    assert {"outcomes/services/outcomes.py", "anomalies/admin/anomaly.py"} <= scanned


def test_nothing_but_the_triage_writer_creates_activity_rows():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in project_sources()
        for line in activity_writes(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "write activity rows through triage.anomaly_activity_record"


def test_every_action_in_the_code_is_a_choice():
    """The writer refuses free text, so the log only ever holds ``ActivityAction`` values."""
    with pytest.raises(ValueError, match="Unknown activity action 'poke'"):
        anomaly_activity_record(action="poke", actor=None, entries=[])


@pytest.mark.django_db
def test_the_writer_saves_one_row_per_entry():
    first, second = AnomalyFactory(), AnomalyFactory()

    rows = anomaly_activity_record(
        action=ActivityAction.NOTE,
        actor=None,
        entries=[
            ActivityEntry(first.pk, "open", "open", "checked the shelf"),
            ActivityEntry(second.pk, "open", "resolved"),
        ],
    )

    assert all(row.pk for row in rows)
    assert sorted(
        AnomalyActivity.objects.values_list("anomaly_id", "action", "to_status", "note")
    ) == [
        (first.pk, "note", "open", "checked the shelf"),
        (second.pk, "note", "resolved", ""),
    ]
