"""Root-cause grouping, the service: load a run's anomalies, group them, save their parents.

The rules themselves are pure and live in ``anomalies.detectors.grouping``
(``root_causes_group``); this module reads the candidate anomalies into the frame that function
takes and writes back the ``parent`` it decides. Run once per detection run, after every chunk
has been persisted (``anomalies.services.runs.detection_run_finalize``), because a rule looks
across locations.
"""

from __future__ import annotations

import pandas as pd
from django.db.models import Exists, OuterRef

from anomalies.detectors.grouping import root_causes_group
from anomalies.models import Anomaly, AnomalyType, DetectionRun


def anomalies_group_root_causes(*, run: DetectionRun) -> dict[str, int]:
    """Apply ``anomalies.detectors.grouping.root_causes_group`` to the anomalies ``run`` found.

    Candidates are the anomalies last found by ``run``, the POS-outage anomalies of their
    locations overlapping their dates, and anomalies that already are parents of the same
    SKUs (so a re-run keeps its parent). Sets ``parent`` where it changes; returns how many
    anomalies were grouped per reason. Three queries, plus one update when a parent changes.
    Must run inside a transaction.
    """
    columns = ["id", "anomaly_type", "product_id", "location_id", "start_date", "end_date", "score"]
    has_children = Exists(Anomaly.objects.filter(parent_id=OuterRef("pk")))

    def rows(queryset) -> list[tuple]:
        return list(
            queryset.order_by()
            .annotate(has_children=has_children)
            .values_list(*columns, "has_children", "parent_id")
        )

    found = rows(Anomaly.objects.filter(last_run=run))
    if not found:
        return {}
    frame = pd.DataFrame.from_records(found, columns=[*columns, "has_children", "parent_id"])
    outages = rows(
        Anomaly.objects.filter(
            anomaly_type=AnomalyType.POS_OUTAGE,
            location_id__in=frame["location_id"].unique().tolist(),
            end_date__gte=frame["start_date"].min(),
            start_date__lte=frame["end_date"].max(),
        )
    )
    skus = frame["product_id"].dropna().unique().tolist()
    parents = rows(Anomaly.objects.filter(product_id__in=skus).filter(has_children)) if skus else []
    frame = pd.DataFrame.from_records(
        found + outages + parents, columns=[*columns, "has_children", "parent_id"]
    ).drop_duplicates("id")
    frame["product_id"] = pd.array(frame["product_id"].tolist(), dtype="Int64")
    frame["start_date"] = pd.to_datetime(frame["start_date"]).astype("datetime64[s]")
    frame["end_date"] = pd.to_datetime(frame["end_date"]).astype("datetime64[s]")
    groups = root_causes_group(frame)
    if groups.empty:
        return {}
    current = dict(zip(frame["id"], frame["parent_id"], strict=True))
    changed = [
        Anomaly(pk=int(i), parent_id=int(p))
        for i, p in zip(groups["id"], groups["parent_id"], strict=True)
        if current.get(i) != p
    ]
    Anomaly.objects.bulk_update(changed, ["parent"], batch_size=500)
    return groups["reason"].value_counts().sort_index().to_dict()
