"""Feedback into detection: per-detector precision, threshold proposals and applying them."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

from anomalies.detectors import REGISTRY
from anomalies.models import AnomalyStatus, AnomalyType, DetectorConfig
from anomalies.services.runs import detector_settings
from outcomes.models import ProposalStatus, ThresholdProposal
from outcomes.services import ProposalError, threshold_proposal_apply, threshold_proposals_create
from outcomes.services.feedback import SCORE_PARAMS, ScoreParam
from tests.factories import AnomalyFactory

pytestmark = pytest.mark.django_db

OLD = dt.date(2023, 6, 1)  # outside the 30-day preview ending 2024-01-25 (factory dates)


def labelled(anomaly_type: str, score: float, true: bool, **fields):
    """A closed finding: resolved (true positive) or dismissed as a false positive."""
    status = AnomalyStatus.RESOLVED if true else AnomalyStatus.DISMISSED
    reason = "" if true else "false_positive"
    return AnomalyFactory(
        anomaly_type=anomaly_type, score=score, status=status, dismiss_reason=reason, **fields
    )


@pytest.fixture
def ghost_findings():
    """Ten labelled ghost-stock findings (precision 6/10) and three open ones.

    Keeping the top k by score: 1, 1, 1, 1, 4/5, 5/6, 5/7, 5/8, 6/9, 6/10: the lowest score
    reaching 80 % is 5 (5 of 6 true).
    """
    verdicts = [True, True, True, True, False, True, False, False, True, False]
    for score, true in zip(range(10, 0, -1), verdicts, strict=True):
        extra = {"first_detected_on": OLD} if score == 1 else {}
        labelled(AnomalyType.GHOST_STOCK, float(score), true, **extra)
    for score in (12.0, 5.5, 2.0):
        AnomalyFactory(anomaly_type=AnomalyType.GHOST_STOCK, score=score)


def proposals_by_detector(**kwargs) -> dict[str, ThresholdProposal]:
    return {p.detector: p for p in threshold_proposals_create(**kwargs)}


def test_every_score_parameter_exists_in_its_detector():
    assert set(SCORE_PARAMS) == set(REGISTRY)
    for detector, mapping in SCORE_PARAMS.items():
        if isinstance(mapping, ScoreParam):
            assert mapping.name in REGISTRY[detector].default_params, detector


def test_ghost_stock_proposal_reaches_the_target(ghost_findings, staff_user):
    proposal = proposals_by_detector(actor=staff_user)["ghost_stock"]

    assert proposal.status == ProposalStatus.PROPOSED
    assert (proposal.labelled, proposal.true_positives) == (10, 6)
    assert proposal.current_precision == pytest.approx(0.6)
    assert proposal.param_name == "min_p"
    assert proposal.current_value == REGISTRY["ghost_stock"].default_params["min_p"]
    # score = -log10 p: keeping score >= 5 means p < 1e-5.
    assert proposal.proposed_value == pytest.approx(1e-5)
    assert proposal.score_threshold == pytest.approx(5.0)
    assert (proposal.projected_labelled, proposal.projected_precision) == (6, pytest.approx(5 / 6))
    # Preview, 2023-12-27..2024-01-25: 9 labelled + 3 open findings; 6 + (12, 5.5) kept.
    assert (proposal.preview_start, proposal.preview_end) == (
        dt.date(2023, 12, 27),
        dt.date(2024, 1, 25),
    )
    assert (proposal.preview_current, proposal.preview_proposed) == (12, 8)
    assert proposal.created_by == staff_user
    assert "would have produced 8 findings instead of 12" in proposal.note


def test_detectors_without_a_proposal_say_why(ghost_findings):
    for score in range(10, 0, -1):  # every one true: already precise
        labelled(AnomalyType.ML_DETECTED, score / 10, True)
    for score in range(10, 0, -1):  # only the lowest-scored is true: no threshold helps
        labelled(AnomalyType.DEMAND_DROP, float(score), score == 1)
    for score in range(10, 0, -1):  # cold-start spikes are scored on another scale
        labelled(AnomalyType.DEMAND_SPIKE, float(score), False, details={"rule": "cold_start"})

    proposals = proposals_by_detector(target=0.8)

    not_applicable = {
        name: p.note for name, p in proposals.items() if p.status == ProposalStatus.NOT_APPLICABLE
    }
    assert set(not_applicable) == {
        "ml_detected",
        "demand_drop",
        "demand_spike",
        "price_anomaly",
        "inventory_discrepancy",
    }
    assert not_applicable["ml_detected"].startswith("Precision 100% over 10 labelled findings")
    assert not_applicable["demand_drop"].startswith("No score threshold reaches 80%")
    assert not_applicable["demand_spike"].startswith("Only 0 labelled finding(s)")
    assert not_applicable["price_anomaly"].startswith("No single score threshold")
    assert not_applicable["inventory_discrepancy"].startswith("No single score threshold")
    assert proposals["demand_drop"].current_precision == pytest.approx(0.1)


def test_apply_writes_detector_settings_and_records_the_change(ghost_findings, staff_user):
    DetectorConfig.objects.update_or_create(
        detector="ghost_stock", defaults={"params": {"min_zero_days": 4}}
    )
    proposal = proposals_by_detector()["ghost_stock"]

    applied = threshold_proposal_apply(proposal_id=proposal.pk, actor=staff_user)

    assert applied.status == ProposalStatus.APPLIED
    assert applied.applied_by == staff_user and applied.applied_at is not None
    assert applied.old_params == {"min_zero_days": 4}
    assert applied.new_params == {"min_zero_days": 4, "min_p": pytest.approx(1e-5)}
    assert DetectorConfig.objects.get(detector="ghost_stock").params == applied.new_params
    assert detector_settings()["ghost_stock"]["params"]["min_p"] == pytest.approx(1e-5)

    with pytest.raises(ProposalError, match="is applied; only a proposed change"):
        threshold_proposal_apply(proposal_id=proposal.pk, actor=staff_user)


def test_apply_refuses_what_is_not_a_proposal(ghost_findings, staff_user):
    proposals = proposals_by_detector()
    newer = proposals_by_detector()["ghost_stock"]

    with pytest.raises(ProposalError, match="is not applicable"):
        threshold_proposal_apply(proposal_id=proposals["price_anomaly"].pk, actor=staff_user)
    with pytest.raises(ProposalError, match="is superseded"):
        threshold_proposal_apply(proposal_id=proposals["ghost_stock"].pk, actor=staff_user)
    with pytest.raises(ProposalError, match="not found"):
        threshold_proposal_apply(proposal_id=999_999, actor=staff_user)
    assert not DetectorConfig.objects.exclude(params={}).exists()  # nothing applied
    assert newer.status == ProposalStatus.PROPOSED


def test_target_is_validated():
    with pytest.raises(ProposalError, match="above 0 and at most 1"):
        threshold_proposals_create(target=1.5)


def test_propose_thresholds_command(ghost_findings):
    out = io.StringIO()

    call_command("propose_thresholds", stdout=out)

    lines = out.getvalue().splitlines()
    assert len(lines) == len(REGISTRY)
    default = REGISTRY["ghost_stock"].default_params["min_p"]
    assert lines[0].startswith(f"ghost_stock [Proposed]: min_p: {default} → 1e-05")
