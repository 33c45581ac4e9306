"""Services of the outcomes loop (the only code that writes outcomes, counts and proposals).

- ``outcomes``: ``outcome_record``, ``missed_anomaly_report``
- ``cycle_counts``: ``cycle_counts_request`` / ``cycle_count_request``,
  ``cycle_count_record``, ``cycle_counts_cancel``, ``control_counts_request``,
  ``cycle_counts_export_csv``
- ``reports``: ``effectiveness_report``, ``roi_report``, ``dashboard_summary``
- ``feedback``: ``threshold_proposals_create``, ``threshold_proposal_apply``
- ``loading``: the frames ``outcomes.metrics`` works on
"""

from __future__ import annotations

from outcomes.services.cycle_counts import (
    CycleCountConflict,
    CycleCountError,
    control_counts_request,
    cycle_count_priority,
    cycle_count_record,
    cycle_count_request,
    cycle_counts_cancel,
    cycle_counts_export_csv,
    cycle_counts_request,
)
from outcomes.services.feedback import (
    ProposalError,
    threshold_proposal_apply,
    threshold_proposals_create,
)
from outcomes.services.outcomes import OutcomeError, missed_anomaly_report, outcome_record
from outcomes.services.reports import (
    ReportError,
    dashboard_summary,
    effectiveness_report,
    roi_report,
)

__all__ = [
    "CycleCountConflict",
    "CycleCountError",
    "OutcomeError",
    "ProposalError",
    "ReportError",
    "control_counts_request",
    "cycle_count_priority",
    "cycle_count_record",
    "cycle_count_request",
    "cycle_counts_cancel",
    "cycle_counts_export_csv",
    "cycle_counts_request",
    "dashboard_summary",
    "effectiveness_report",
    "missed_anomaly_report",
    "outcome_record",
    "roi_report",
    "threshold_proposal_apply",
    "threshold_proposals_create",
]
