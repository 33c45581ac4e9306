"""Indexes for the anomaly lists at a million rows (issue 5).

Each list reads newest detection first (last_detected_on DESC, id DESC) and stops after a page;
the new indexes end in that order behind each list's equality filters so PostgreSQL walks one
and stops at LIMIT instead of sorting every match. The two indexes they extend go, and so does
the plain index of the location foreign key, which anomaly_location_recent_idx now leads with.

New indexes are built before the old ones are dropped. On PostgreSQL CREATE INDEX blocks writes
to the table while it runs: a few seconds per index at a million rows.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("anomalies", "0003_triage_lifecycle"),
        ("inventory", "0002_stock_adjustment"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="anomaly",
            index=models.Index(fields=["-last_detected_on", "-id"], name="anomaly_recent_idx"),
        ),
        migrations.AddIndex(
            model_name="anomaly",
            index=models.Index(
                fields=["status", "-last_detected_on", "-id"], name="anomaly_status_recent_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="anomaly",
            index=models.Index(
                fields=["location", "status", "-last_detected_on", "-id"],
                name="anomaly_loc_status_recent_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="anomaly",
            index=models.Index(
                fields=["location", "-last_detected_on", "-id"], name="anomaly_location_recent_idx"
            ),
        ),
        migrations.RemoveIndex(
            model_name="anomaly",
            name="anomaly_status_detected_idx",
        ),
        migrations.RemoveIndex(
            model_name="anomaly",
            name="anomaly_location_status_idx",
        ),
        migrations.AlterField(
            model_name="anomaly",
            name="location",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="anomalies",
                to="inventory.location",
            ),
        ),
    ]
