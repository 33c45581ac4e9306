"""Root-cause grouping, the service: load a run's anomalies, group them, save their parents.

The rules themselves are pure and live in ``anomalies.detectors.grouping``
(``root_causes_group``); this module reads the candidate anomalies into the frame that function
takes and writes back the ``parent`` it decides. Run once per detection run, after every chunk
has been persisted (``anomalies.services.runs.detection_run_finalize``), because a rule looks
across locations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db.models import Exists, OuterRef, Q

from anomalies.detectors.grouping import ANOMALY_COLUMNS, root_causes_group
from anomalies.models import Anomaly, AnomalyType, DetectionRun


def anomalies_group_root_causes(*, run: DetectionRun) -> dict[str, int]:
    """Apply ``anomalies.detectors.grouping.root_causes_group`` to the anomalies ``run`` found.

    Candidates are the anomalies last found by ``run``, the POS-outage anomalies of their
    locations overlapping their dates, and anomalies that already are parents of the same
    SKUs (so a re-run keeps its parent). Sets ``parent`` where it changes; returns how many
    anomalies were grouped per reason. Two queries, plus one update when a parent changes.
    Must run inside a transaction.
    """
    has_children = Exists(Anomaly.objects.filter(parent_id=OuterRef("pk")))

    def rows(queryset) -> list[tuple]:
        return list(
            queryset.order_by()
            .annotate(has_children=has_children)
            .values_list(*_COLUMNS, "has_children", "parent_id")
        )

    found = rows(Anomaly.objects.filter(last_run=run))
    if not found:
        return {}
    # Row fields by position, as in _COLUMNS.
    skus = sorted({row[2] for row in found if row[2] is not None})
    related = Q(
        anomaly_type=AnomalyType.POS_OUTAGE,
        location_id__in=sorted({row[3] for row in found}),
        end_date__gte=min(row[4] for row in found),
        start_date__lte=max(row[5] for row in found),
    )
    if skus:
        related |= Q(product_id__in=skus) & Q(has_children)
    by_id = {row[0]: row for row in found}
    for row in rows(Anomaly.objects.filter(related)):
        by_id.setdefault(row[0], row)
    frame = _frame(list(by_id.values()))
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


_COLUMNS = ("id", "anomaly_type", "product_id", "location_id", "start_date", "end_date", "score")


def _frame(records: list[tuple]) -> pd.DataFrame:
    """``root_causes_group``'s input (``ANOMALY_COLUMNS``, plus ``parent_id``: object, None
    for none) from ``_COLUMNS + (has_children, parent_id)`` rows."""
    columns = list(zip(*records, strict=True))
    frame = pd.DataFrame(
        {
            name: pd.array(list(values), dtype=ANOMALY_COLUMNS[name])
            if name == "product_id"
            else np.array(values, dtype=ANOMALY_COLUMNS[name])
            for name, values in zip((*_COLUMNS, "has_children"), columns, strict=False)
        }
    )
    frame["parent_id"] = pd.Series(columns[-1], dtype=object)
    return frame
