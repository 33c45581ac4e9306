"""Feedback into detection: per-detector precision and score-threshold proposals.

For each detector, the labelled findings (verdict true positive, false positive or expected;
see ``outcomes.services.loading``) give its precision. When that is below the target
(``SHELFWATCH_TARGET_PRECISION``), ``metrics.score_threshold_for_precision`` finds the
smallest score threshold whose kept findings reach it, and the detector parameter that
implements such a threshold (``SCORE_PARAMS``) gets a proposed value. The preview counts the
findings first detected in the last ``PREVIEW_DAYS`` days (of data) that the proposal keeps.

An admin applies a proposal in one step (``threshold_proposal_apply``): it writes the
detector's ``DetectorConfig.params`` and records on the proposal who applied it, when, and
the parameters before and after.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from anomalies.detectors import (
    REGISTRY,
    SCORE_IS_NEG_LOG10,
    SCORE_IS_PARAM,
    ScoreThreshold,
)
from anomalies.models import Anomaly, DetectorConfig
from anomalies.services.runs import detector_settings
from outcomes import metrics
from outcomes.models import ProposalStatus, ThresholdProposal
from outcomes.services.loading import anomaly_frame_load

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PREVIEW_DAYS = 30
# Fewer labelled findings than this and a proposal would fit noise.
MIN_LABELLED = 10
SIGNIFICANT_DIGITS = 3


@dataclass(frozen=True)
class ScoreParam:
    """The detector parameter that acts as a threshold on the findings' ``score``.

    ``to_param`` maps a score threshold to the parameter value, ``to_score`` back;
    ``stricter_is_larger`` says which way the parameter moves to flag less (used to round the
    proposed value so that the chosen findings stay flagged); ``exclude_details`` leaves out
    findings scored on another scale (matched on their ``details``).
    """

    name: str
    to_param: Callable[[float], float]
    to_score: Callable[[float], float]
    stricter_is_larger: bool
    description: str
    exclude_details: dict[str, Any] = field(default_factory=dict)


def _identity(value: float) -> float:
    return value


def _p_from_score(score: float) -> float:
    return 10.0 ** (-score)


def _score_from_p(p: float) -> float:
    return -math.log10(p)


_TRANSFORMS: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    SCORE_IS_PARAM: (_identity, _identity),
    SCORE_IS_NEG_LOG10: (_p_from_score, _score_from_p),
}


def _score_param(threshold: ScoreThreshold | str) -> ScoreParam | str:
    """The registry's ``DetectorSpec.score_threshold`` with its transform as functions."""
    if isinstance(threshold, str):
        return threshold
    to_param, to_score = _TRANSFORMS[threshold.transform]
    return ScoreParam(
        threshold.param,
        to_param,
        to_score,
        stricter_is_larger=threshold.stricter_is_larger,
        description=threshold.description,
        exclude_details=threshold.exclude_details,
    )


# detector → its score-threshold parameter, or why it has none (from the registry; the
# parameter names are those of the detectors' default_params, which a test checks).
SCORE_PARAMS: dict[str, ScoreParam | str] = {
    name: _score_param(spec.score_threshold) for name, spec in REGISTRY.items()
}


class ProposalError(ValueError):
    """A proposal that cannot be computed or applied."""


def _round_sig(value: float, *, up: bool) -> float:
    """``value`` to ``SIGNIFICANT_DIGITS`` significant digits, rounded up or down."""
    if value == 0 or not math.isfinite(value):
        return value
    exponent = math.floor(math.log10(abs(value))) - SIGNIFICANT_DIGITS + 1
    scaled = value / 10.0**exponent
    scaled = math.ceil(scaled - 1e-9) if up else math.floor(scaled + 1e-9)
    return float(f"{scaled * 10.0**exponent:.{SIGNIFICANT_DIGITS}g}")


def _types_of(detector: str) -> list[str]:
    return list(REGISTRY[detector].anomaly_types)


def _preview_end() -> dt.date:
    """The latest date with findings (data time, like the admin's "recent days" filters)."""
    latest = Anomaly.objects.aggregate(latest=Max("last_detected_on"))["latest"]
    return latest or timezone.localdate()


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def threshold_proposals_create(
    *, actor: User | None = None, target: float | None = None, today: dt.date | None = None
) -> list[ThresholdProposal]:
    """Compute one proposal per registered detector and store them (superseding older ones).

    ``target`` defaults to ``SHELFWATCH_TARGET_PRECISION`` (0 < target <= 1); the preview
    window is the ``PREVIEW_DAYS`` days ending ``today`` (default: the latest
    ``last_detected_on``). A detector gets a *proposed* change when it has at least
    ``MIN_LABELLED`` labelled findings, is below the target and some score threshold reaches
    it; otherwise a *not applicable* row says why (no single score threshold, too few
    labels, already at target, target unreachable by score). Proposals still open from an
    earlier computation become *superseded*. Returns the new rows in registry order.
    Raises ``ProposalError`` for a target outside (0, 1].
    """
    target = settings.SHELFWATCH_TARGET_PRECISION if target is None else float(target)
    if not (math.isfinite(target) and 0.0 < target <= 1.0):
        raise ProposalError("The target precision must be above 0 and at most 1.")
    end = today or _preview_end()
    start = end - dt.timedelta(days=PREVIEW_DAYS - 1)
    effective = detector_settings()
    created = []
    with transaction.atomic():
        ThresholdProposal.objects.filter(status=ProposalStatus.PROPOSED).update(
            status=ProposalStatus.SUPERSEDED
        )
        for detector in REGISTRY:
            created.append(
                _proposal(
                    detector=detector,
                    target=target,
                    start=start,
                    end=end,
                    params=effective[detector]["params"],
                    actor=actor,
                )
            )
    return created


def _proposal(
    *,
    detector: str,
    target: float,
    start: dt.date,
    end: dt.date,
    params: dict[str, Any],
    actor: User | None,
) -> ThresholdProposal:
    mapping = SCORE_PARAMS.get(detector, "no score threshold is known for this detector")
    queryset = Anomaly.objects.filter(anomaly_type__in=_types_of(detector))
    if isinstance(mapping, ScoreParam) and mapping.exclude_details:
        queryset = queryset.exclude(
            **{f"details__{key}": value for key, value in mapping.exclude_details.items()}
        )
    frame = anomaly_frame_load(queryset=queryset)
    labelled = frame[frame["verdict"].isin(metrics.LABELLED_VERDICTS)]
    is_tp = (labelled["verdict"] == metrics.TRUE_POSITIVE).to_numpy()
    n_labelled = len(labelled)
    precision = float(is_tp.mean()) if n_labelled else None
    window = frame[
        (frame["first_detected_on"] >= pd.Timestamp(start))
        & (frame["first_detected_on"] <= pd.Timestamp(end))
    ]
    proposal = ThresholdProposal(
        detector=detector,
        target_precision=target,
        labelled=n_labelled,
        true_positives=int(is_tp.sum()),
        current_precision=precision,
        projected_labelled=n_labelled,
        projected_precision=precision,
        preview_start=start,
        preview_end=end,
        preview_current=len(window),
        preview_proposed=len(window),
        status=ProposalStatus.NOT_APPLICABLE,
        created_by=actor,
        created_at=timezone.now(),
    )
    if isinstance(mapping, str):
        proposal.note = mapping[0].upper() + mapping[1:] + "."
    elif n_labelled < MIN_LABELLED:
        proposal.param_name = mapping.name
        proposal.current_value = params.get(mapping.name)
        proposal.note = (
            f"Only {n_labelled} labelled finding(s); at least {MIN_LABELLED} are needed "
            "before a threshold is proposed."
        )
    elif precision is not None and precision >= target:
        proposal.param_name = mapping.name
        proposal.current_value = params.get(mapping.name)
        proposal.note = (
            f"Precision {_fmt(precision)} over {n_labelled} labelled findings already "
            f"reaches the target {_fmt(target)}; no change."
        )
    else:
        _propose(proposal, mapping, labelled, is_tp, window, params, target)
    proposal.save()
    return proposal


def _propose(proposal, mapping: ScoreParam, labelled, is_tp, window, params, target) -> None:
    proposal.param_name = mapping.name
    proposal.current_value = params.get(mapping.name)
    found = metrics.score_threshold_for_precision(labelled["score"].to_numpy(), is_tp, target)
    if found is None:
        proposal.note = (
            f"No score threshold reaches {_fmt(target)}: even the highest-scored labelled "
            f"findings are not precise enough ({mapping.description})."
        )
        return
    value = mapping.to_param(found["threshold"])
    # Round so the chosen findings stay flagged: a larger "flag from" value would drop them.
    value = _round_sig(value, up=not mapping.stricter_is_larger)
    threshold = mapping.to_score(value)
    kept = labelled["score"].to_numpy() >= threshold - 1e-9
    proposal.proposed_value = value
    proposal.score_threshold = threshold
    proposal.projected_labelled = int(kept.sum())
    proposal.projected_precision = float(is_tp[kept].mean()) if kept.any() else None
    proposal.preview_proposed = int((window["score"].to_numpy() >= threshold - 1e-9).sum())
    proposal.status = ProposalStatus.PROPOSED
    proposal.note = (
        f"{mapping.name}: {proposal.current_value} → {value:g} keeps findings with score ≥ "
        f"{threshold:.3g}: precision {_fmt(proposal.current_precision)} → "
        f"{_fmt(proposal.projected_precision)} over the labelled findings "
        f"({proposal.projected_labelled} of {proposal.labelled} kept); the last "
        f"{PREVIEW_DAYS} days would have produced {proposal.preview_proposed} findings "
        f"instead of {proposal.preview_current} ({mapping.description})."
    )


def threshold_proposal_apply(*, proposal_id: int, actor: User | None) -> ThresholdProposal:
    """Write a proposed value into its detector's settings and record the change.

    Sets ``DetectorConfig.params[param_name]`` (creating the detector's settings row if
    needed; other overrides are kept) and moves the proposal proposed → applied with
    ``applied_by``, ``applied_at``, ``old_params`` and ``new_params``, in one transaction.
    Raises ``ProposalError`` when the proposal is missing, not *proposed* (applied,
    superseded, not applicable) or the new settings do not validate.
    """
    with transaction.atomic():
        proposal = ThresholdProposal.objects.select_for_update().filter(pk=proposal_id).first()
        if proposal is None:
            raise ProposalError(f"Threshold proposal {proposal_id} not found.")
        if proposal.status != ProposalStatus.PROPOSED:
            raise ProposalError(
                f"Threshold proposal {proposal_id} is {proposal.get_status_display().lower()}; "
                "only a proposed change can be applied."
            )
        config, _created = DetectorConfig.objects.select_for_update().get_or_create(
            detector=proposal.detector
        )
        old = dict(config.params or {})
        new = {**old, proposal.param_name: proposal.proposed_value}
        config.params = new
        try:
            config.full_clean()
        except ValidationError as exc:
            raise ProposalError("; ".join(exc.messages)) from exc
        config.save()
        updated = ThresholdProposal.objects.filter(
            pk=proposal_id, status=ProposalStatus.PROPOSED
        ).update(
            status=ProposalStatus.APPLIED,
            applied_by=actor,
            applied_at=timezone.now(),
            old_params=old,
            new_params=new,
        )
        if updated != 1:  # only reachable without row locks (SQLite)
            raise ProposalError(f"Threshold proposal {proposal_id} was changed by someone else.")
    return ThresholdProposal.objects.get(pk=proposal_id)
