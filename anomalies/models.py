"""Anomalies found by detection, the runs that found them, detector settings and the triage log."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from anomalies.detectors.fdr import FDR_Q_DEFAULT, FDR_Q_MAX, check_fdr_q


class AnomalyType(models.TextChoices):
    GHOST_STOCK = "ghost_stock", "Ghost stock (phantom inventory)"
    DEMAND_SPIKE = "demand_spike", "Demand spike"
    DEMAND_DROP = "demand_drop", "Demand drop"
    PRICE_ANOMALY = "price_anomaly", "Price anomaly"
    INVENTORY_DISCREPANCY = "inventory_discrepancy", "Inventory discrepancy"
    ML_DETECTED = "ml_detected", "Machine-learning outlier"
    POS_OUTAGE = "pos_outage", "POS outage (store traded, no sales data)"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AnomalyStatus(models.TextChoices):
    """Triage state; the rules for moving between them live in ``anomalies.services.triage``."""

    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    SNOOZED = "snoozed", "Snoozed"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


class DismissReason(models.TextChoices):
    FALSE_POSITIVE = "false_positive", "False positive"
    EXPECTED = "expected", "Expected (promotion, holiday, known event)"
    DUPLICATE = "duplicate", "Duplicate of another anomaly"


class AckUntil(models.TextChoices):
    """The condition an acknowledgement lasts until; ``anomalies_wake_acknowledged`` ends it."""

    NONE = "none", "No condition"
    COUNTED = "counted", "Until counted"
    RECEIPT = "receipt", "Until the next receipt"
    DATE = "date", "Until a date"


class ActivityAction(models.TextChoices):
    """What an activity-log row records; written only by ``triage.anomaly_activity_record``."""

    ACKNOWLEDGE = "acknowledge", "Acknowledged"
    ASSIGN = "assign", "Assigned"
    SNOOZE = "snooze", "Snoozed"
    UNSNOOZE = "unsnooze", "Unsnoozed"
    WAKE = "wake", "Woke up (snooze ended or worse)"
    RESOLVE = "resolve", "Resolved"
    DISMISS = "dismiss", "Dismissed"
    REGRESS = "regress", "Regressed (fired again after resolved)"
    NOTE = "note", "Note"
    OUTCOME = "outcome", "Outcome recorded"
    COUNT_REQUESTED = "count_requested", "Cycle count requested"
    MERGE = "merge", "Merged (similar anomalies grouped)"


class AnomalyQuerySet(models.QuerySet):
    def open(self) -> AnomalyQuerySet:
        """Anomalies on the triage list: open or acknowledged (not snoozed, not closed)."""
        return self.filter(status__in=[AnomalyStatus.OPEN, AnomalyStatus.ACKNOWLEDGED])

    def for_location(self, location_id: int) -> AnomalyQuerySet:
        return self.filter(location_id=location_id)


class Anomaly(models.Model):
    """One anomalous condition of a SKU at a location (or of a whole location) over a date range.

    A condition that persists across detection runs extends the same row (``end_date`` and
    ``last_detected_on`` move forward); the unique constraints stop a second row for the same
    type, SKU, location and start date.
    """

    anomaly_type = models.CharField(max_length=32, choices=AnomalyType.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    score = models.FloatField(help_text="Detector score: z-score, probability or outlier score.")
    p_value = models.FloatField(
        null=True,
        blank=True,
        help_text="Probability of evidence at least this strong by chance under the series' "
        "own model, before correction for the number of tests; blank when the detector gives "
        "none.",
    )
    q_value = models.FloatField(
        null=True,
        blank=True,
        help_text="Benjamini-Hochberg adjusted p-value at its store that day: the lowest "
        "false-discovery rate at which it would still be reported. Blank when not controlled "
        "(no p-value).",
    )
    expected_value = models.FloatField(null=True, blank=True)
    actual_value = models.FloatField(null=True, blank=True)
    value_at_risk = models.DecimalField(
        max_digits=14, decimal_places=2, default=0, help_text="Money at stake, in shelf price."
    )
    explanation = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    product = models.ForeignKey(
        "inventory.Product",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="anomalies",
        help_text="Blank for a location-level finding.",
    )
    location = models.ForeignKey(
        "inventory.Location",
        on_delete=models.CASCADE,
        related_name="anomalies",
        db_index=False,  # anomaly_location_recent_idx leads with it
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="children",
        help_text="Location- or category-level anomaly this SKU finding was grouped under "
        "(root-cause grouping); blank for a top-level anomaly.",
    )
    start_date = models.DateField(help_text="First day of the anomalous condition.")
    end_date = models.DateField(help_text="Last day the condition was seen.")
    first_detected_on = models.DateField(help_text="As-of date of the run that first found it.")
    last_detected_on = models.DateField(help_text="As-of date of the latest run that found it.")
    status = models.CharField(
        max_length=16, choices=AnomalyStatus.choices, default=AnomalyStatus.OPEN
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_anomalies",
    )
    last_run = models.ForeignKey(
        "DetectionRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When resolved or dismissed.")
    dismiss_reason = models.CharField(
        max_length=32,
        choices=DismissReason.choices,
        blank=True,
        help_text="Why it was dismissed; blank unless dismissed.",
    )
    snoozed_until = models.DateField(
        null=True,
        blank=True,
        help_text="While snoozed: the day it reopens by itself (blank unless snoozed).",
    )
    snoozed_severity = models.CharField(
        max_length=16,
        choices=Severity.choices,
        blank=True,
        help_text="Severity when it was snoozed: detection raising it reopens the anomaly early.",
    )
    snoozed_value_at_risk = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Value at risk when it was snoozed: growth by SHELFWATCH_SNOOZE_WORSEN_PCT "
        "percent reopens the anomaly early.",
    )
    regressed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When detection last reopened it because it fired again after being resolved.",
    )
    regression_count = models.PositiveIntegerField(
        default=0, help_text="How many times it fired again after being resolved."
    )
    ack_until_kind = models.CharField(
        "acknowledged until",
        max_length=16,
        choices=AckUntil.choices,
        default=AckUntil.NONE,
        db_default=AckUntil.NONE,  # bulk loaders that write columns by name (lab/bench) omit it
        help_text="While acknowledged: the condition after which it returns to open by itself "
        "if detection still finds it (a count of the SKU there, its next receipt, a date).",
    )
    ack_until_date = models.DateField(
        "acknowledged until date",
        null=True,
        blank=True,
        help_text='For "until a date": the day from which detection finding it reopens it.',
    )
    ack_since = models.DateField(
        "acknowledged as of",
        null=True,
        blank=True,
        help_text="While acknowledged until a condition: its last detection day when it was "
        "acknowledged; counts from that day and receipts after it end the acknowledgement.",
    )

    objects = AnomalyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "anomalies"
        ordering = ["-last_detected_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["anomaly_type", "product", "location", "start_date"],
                condition=Q(product__isnull=False),
                name="anomaly_unique_type_product_location_start",
            ),
            models.UniqueConstraint(
                fields=["anomaly_type", "location", "start_date"],
                condition=Q(product__isnull=True),
                name="anomaly_unique_type_location_start_location_level",
            ),
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")), name="anomaly_end_after_start"
            ),
            # The wake-up date exists exactly while the anomaly is snoozed.
            models.CheckConstraint(
                condition=Q(status="snoozed", snoozed_until__isnull=False)
                | (~Q(status="snoozed") & Q(snoozed_until__isnull=True)),
                name="anomaly_snoozed_has_until",
            ),
            # A condition exists only while acknowledged; a date exactly for "until a date".
            models.CheckConstraint(
                condition=Q(ack_until_kind="none", ack_since__isnull=True)
                | (Q(status="acknowledged", ack_since__isnull=False) & ~Q(ack_until_kind="none")),
                name="anomaly_ack_until_while_acknowledged",
            ),
            models.CheckConstraint(
                condition=Q(ack_until_kind="date", ack_until_date__isnull=False)
                | (~Q(ack_until_kind="date") & Q(ack_until_date__isnull=True)),
                name="anomaly_ack_until_date_for_date",
            ),
        ]
        indexes = [
            # Lists read newest detection first and stop after a page, so each list query has
            # an index in its ORDER BY (last_detected_on DESC, id DESC) behind its equality
            # filters: PostgreSQL walks it and stops at LIMIT instead of sorting every match.
            # The admin's paginator counts at most 10,001 rows (BoundedCountPaginator).
            #
            # API list and admin changelist unfiltered, or filtered on a column without an
            # index of its own (type, severity, dismiss reason ...); also MAX(last_detected_on)
            # for the admin's "last detected" filter.
            models.Index(fields=["-last_detected_on", "-id"], name="anomaly_recent_idx"),
            # Triage list by status: API ?status=open, admin status filter.
            models.Index(
                fields=["status", "-last_detected_on", "-id"], name="anomaly_status_recent_idx"
            ),
            # Per-store triage: API ?status=open&location=<id>.
            models.Index(
                fields=["location", "status", "-last_detected_on", "-id"],
                name="anomaly_loc_status_recent_idx",
            ),
            # One store's anomalies: admin location filter, API ?location=<id>. Leads with
            # location, so it also serves the foreign key (which has no index of its own).
            models.Index(
                fields=["location", "-last_detected_on", "-id"], name="anomaly_location_recent_idx"
            ),
            # Filter by type, statistics by type.
            models.Index(fields=["anomaly_type", "status"], name="anomaly_type_status_idx"),
            # The wake-up check of acknowledgements with a condition (a few rows at most).
            models.Index(
                fields=["ack_until_kind"],
                condition=~Q(ack_until_kind="none"),
                name="anomaly_ack_until_idx",
            ),
            # Detection: find the anomaly a new finding extends.
            models.Index(
                fields=["anomaly_type", "location", "product", "end_date"],
                name="anomaly_match_idx",
            ),
        ]

    def __str__(self) -> str:
        who = self.product.sku if self.product_id else "(location)"
        return f"{self.get_anomaly_type_display()} {who}@{self.location.code} {self.start_date}"

    def clean(self) -> None:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValidationError({"end_date": "The end date is before the start date."})


class AnomalyActivity(models.Model):
    """One change to an anomaly's triage state (status, assignee, note), with who and when."""

    anomaly = models.ForeignKey(Anomaly, on_delete=models.CASCADE, related_name="activities")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=32, choices=ActivityAction.choices)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "anomaly activities"
        ordering = ["-created_at", "-id"]
        indexes = [
            # Anomaly page: its activity log, newest first.
            models.Index(fields=["anomaly", "-created_at"], name="activity_anomaly_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.anomaly_id} {self.action} {self.from_status}->{self.to_status}"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


# A run or chunk in one of these states holds a lease (``lease_expires_at``) that its worker
# renews; the reaper fails it once the lease has run out.
RUN_ACTIVE_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING)


class DetectionRun(models.Model):
    """One detection execution for one as-of date: what ran, with which settings, what it found."""

    as_of = models.DateField()
    detectors = models.JSONField(default=list, help_text="Detector names requested for this run.")
    settings = models.JSONField(default=dict, blank=True, help_text="Detector settings used.")
    counts = models.JSONField(
        default=dict, blank=True, help_text="Per detector: findings, new and extended anomalies."
    )
    notes = models.JSONField(default=list, blank=True, help_text="Skipped detectors and why.")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    error = models.TextField(blank=True)
    trigger = models.CharField(
        max_length=32, default="manual", help_text="command, api, schedule, backfill ..."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    history_days = models.PositiveIntegerField(
        default=120, help_text="Days of history (up to the as-of date) the detectors saw."
    )
    fdr_q = models.FloatField(
        null=True,
        blank=True,
        help_text="False-discovery rate the run controlled its findings at (per store), as "
        "set in the detection policy when it started.",
    )
    hypotheses_tested = models.PositiveBigIntegerField(
        default=0,
        help_text="Hypotheses the detectors that give p-values tested (sum over stores of the "
        "family sizes).",
    )
    new_findings = models.PositiveIntegerField(
        default=0, help_text="Anomalies this run opened (all detectors)."
    )
    new_findings_controlled = models.PositiveIntegerField(
        default=0,
        help_text="Of the new anomalies, those with a p-value, kept by false-discovery control.",
    )
    expected_false_alarms = models.FloatField(
        null=True,
        blank=True,
        help_text="Expected number of false alarms among the new controlled anomalies: the "
        "false-discovery rate times their number (Benjamini-Hochberg bound).",
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the process working on the run."
    )
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A pending or running run not renewed by then is reaped (marked failed).",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Runs list: newest first, by as-of date.
            models.Index(fields=["-as_of"], name="detectionrun_as_of_idx"),
            # The reaper: active runs whose lease ran out (a handful of rows at most).
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status__in=RUN_ACTIVE_STATUSES),
                name="detectionrun_lease_idx",
            ),
        ]
        constraints = [
            # One run per as-of date at a time: a second request is refused, not raced.
            models.UniqueConstraint(
                fields=["as_of"],
                condition=Q(status__in=RUN_ACTIVE_STATUSES),
                name="detectionrun_one_active_per_as_of",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} as of {self.as_of} ({self.status})"


class DetectionChunk(models.Model):
    """One slice of a detection run: the locations one worker task handles.

    A run for a date is split into chunks of locations; each chunk loads, detects and persists
    its own locations in its own transaction, so chunks can run on different Celery workers
    (or one after another in-process). A chunk that already succeeded is not executed again
    when its task is delivered twice.
    """

    run = models.ForeignKey(DetectionRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField(help_text="Position of the chunk within its run (0-based).")
    location_ids = models.JSONField(default=list, help_text="Ids of the locations of this chunk.")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    counts = models.JSONField(
        default=dict, blank=True, help_text="Per detector: findings, new and extended anomalies."
    )
    notes = models.JSONField(default=list, blank=True, help_text="Skipped detectors and why.")
    series = models.PositiveIntegerField(
        default=0, help_text="SKU-locations with sales in the history window of this chunk."
    )
    hypotheses_tested = models.PositiveBigIntegerField(
        default=0, help_text="Hypotheses tested by the detectors that give p-values."
    )
    new_findings = models.PositiveIntegerField(default=0, help_text="Anomalies it opened.")
    new_findings_controlled = models.PositiveIntegerField(
        default=0, help_text="Of those, the ones with a p-value (false-discovery controlled)."
    )
    worker = models.CharField(max_length=255, blank=True, help_text="Host and process that ran it.")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the worker running the chunk."
    )
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A running chunk not renewed by then is reaped: its worker is presumed lost.",
    )

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "index"], name="detectionchunk_unique_run_index"
            ),
        ]
        indexes = [
            # The reaper: running chunks whose lease ran out.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status=RunStatus.RUNNING),
                name="detectionchunk_lease_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.run_id} chunk {self.index} ({self.status})"


class DetectorConfig(models.Model):
    """Admin-editable settings of one detector: whether it runs and its parameter overrides.

    ``params`` holds only overrides; the detector module's ``DEFAULT_PARAMS`` fill the rest.
    """

    detector = models.CharField(max_length=32, unique=True, choices=AnomalyType.choices)
    enabled = models.BooleanField(default=True)
    params = models.JSONField(
        default=dict, blank=True, help_text="Overrides of the detector's default parameters."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "detector setting"
        verbose_name_plural = "detector settings"
        ordering = ["detector"]

    def __str__(self) -> str:
        return f"{self.detector} ({'on' if self.enabled else 'off'})"

    def clean(self) -> None:
        from anomalies.detectors import REGISTRY

        if not isinstance(self.params, dict):
            raise ValidationError({"params": "Parameters must be a JSON object."})
        spec = REGISTRY.get(self.detector)
        if spec is None:
            return
        unknown = sorted(set(self.params) - set(spec.default_params))
        if unknown:
            allowed = ", ".join(sorted(spec.default_params))
            raise ValidationError(
                {"params": f"Unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}."}
            )
        for key, value in self.params.items():
            default = spec.default_params[key]
            numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
            if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValidationError({"params": f"{key} must be a number, not {value!r}."})


def validate_fdr_q(value: float) -> None:
    """Model-field validator: 0 < q <= ``FDR_Q_MAX`` (``anomalies.detectors.fdr``)."""
    try:
        check_fdr_q(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(str(exc)) from exc


class DetectionPolicy(models.Model):
    """Settings of detection as a whole, one row (pk 1) edited in the admin.

    ``fdr_q`` is the false-discovery rate at which every run controls its findings per store
    and day (Benjamini-Hochberg over the findings of all detectors that give p-values). A run
    reads it once when it starts (``DetectionRun.fdr_q``). Changes are recorded in the admin's
    history of the row.
    """

    SINGLETON_PK = 1

    fdr_q = models.FloatField(
        "false-discovery rate",
        default=FDR_Q_DEFAULT,
        validators=[validate_fdr_q],
        help_text=f"Expected share of false alarms among a store's findings of a day that come "
        f"with a p-value, above 0 and at most {FDR_Q_MAX}. Lower: fewer false alarms, more "
        f"missed events. 0.01 means about 1 false alarm in 100 findings.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "detection policy"
        verbose_name_plural = "detection policy"
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="detectionpolicy_singleton"),
            models.CheckConstraint(
                condition=Q(fdr_q__gt=0) & Q(fdr_q__lte=FDR_Q_MAX),
                name="detectionpolicy_fdr_q_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Detection policy (FDR q = {self.fdr_q:g})"

    @classmethod
    def load(cls) -> DetectionPolicy:
        """The one row, created with the defaults if it does not exist yet."""
        policy, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return policy


# --- triage list: SLA targets and saved views (issue 14) -------------------------------------

TRIAGE_SLA_DEFAULT_HOURS = {"critical": 4, "warning": 20, "info": 50}  # 4 h, 2 and 5 days of 10 h


class TriageSla(models.Model):
    """How soon a new finding should get its first answer, per severity, in business hours.

    One row (pk 1) edited in the admin, like ``DetectionPolicy``. The clock starts when
    detection raises the finding (``Anomaly.created_at``) and stops at its first
    acknowledgement or when it is closed; it counts only the business hours below (the wall
    clock of ``TIME_ZONE``). The rules live in ``anomalies.services.sla``.
    """

    SINGLETON_PK = 1

    critical_hours = models.PositiveSmallIntegerField(
        "critical target (business hours)",
        default=TRIAGE_SLA_DEFAULT_HOURS["critical"],
        help_text="Business hours a critical finding may wait for its first answer "
        "(acknowledge, resolve or dismiss). With 08:00-18:00 days, 10 hours are one day.",
    )
    warning_hours = models.PositiveSmallIntegerField(
        "warning target (business hours)",
        default=TRIAGE_SLA_DEFAULT_HOURS["warning"],
        help_text="Business hours for a warning; 20 = two 10-hour business days.",
    )
    info_hours = models.PositiveSmallIntegerField(
        "info target (business hours)",
        default=TRIAGE_SLA_DEFAULT_HOURS["info"],
        help_text="Business hours for an info finding; 50 = five 10-hour business days.",
    )
    warn_percent = models.PositiveSmallIntegerField(
        "turn amber at (% of the target)",
        default=75,
        help_text="The timer turns amber once this share of the target has passed, red at 100%.",
    )
    opens_at = models.TimeField(
        "business day starts",
        default=datetime.time(8),
        help_text="Local time (the TIME_ZONE setting).",
    )
    closes_at = models.TimeField(
        "business day ends", default=datetime.time(18), help_text="Local time; after the start."
    )
    monday = models.BooleanField(default=True)
    tuesday = models.BooleanField(default=True)
    wednesday = models.BooleanField(default=True)
    thursday = models.BooleanField(default=True)
    friday = models.BooleanField(default=True)
    saturday = models.BooleanField(default=True)
    sunday = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    WEEKDAY_FIELDS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

    class Meta:
        verbose_name = "triage SLA"
        verbose_name_plural = "triage SLA"
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="triagesla_singleton"),
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opens_at")), name="triagesla_day_in_order"
            ),
            models.CheckConstraint(
                condition=Q(critical_hours__gt=0) & Q(warning_hours__gt=0) & Q(info_hours__gt=0),
                name="triagesla_targets_positive",
            ),
            models.CheckConstraint(
                condition=Q(warn_percent__gt=0) & Q(warn_percent__lte=100),
                name="triagesla_warn_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"Triage SLA (critical {self.critical_hours} h, warning {self.warning_hours} h, "
            f"info {self.info_hours} h)"
        )

    def clean(self) -> None:
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValidationError({"closes_at": "The business day must end after it starts."})
        if not any(getattr(self, name) for name in self.WEEKDAY_FIELDS):
            raise ValidationError("Tick at least one business day.")
        for name in ("critical_hours", "warning_hours", "info_hours"):
            if getattr(self, name) == 0:
                raise ValidationError({name: "A target of 0 hours would always be breached."})
        if self.warn_percent is not None and not 0 < self.warn_percent <= 100:
            raise ValidationError({"warn_percent": "Between 1 and 100."})

    @classmethod
    def load(cls) -> TriageSla:
        """The one row, created with the defaults if it does not exist yet."""
        sla, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return sla


class SavedView(models.Model):
    """A named filter of the triage list (the changelist's query string), one click above it.

    Personal (only its owner sees it) or shared (everyone sees it; sharing needs the
    ``share_savedview`` permission, the ops roles'). The four built-in views live in code
    (``anomalies.services.saved_views.BUILT_IN_VIEWS``), not here.
    """

    name = models.CharField(max_length=60)
    querystring = models.CharField(
        max_length=500,
        blank=True,
        help_text="What follows the ? in the anomaly list's address, e.g. "
        "status__exact=open&severity__exact=critical. Filter the list, then copy it from the "
        'address bar (or use the list\'s "Save this view" link).',
    )
    shared = models.BooleanField(
        default=False, help_text="Shown to everyone above the list, not only to its owner."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="saved_anomaly_views",
        help_text="Who made it (a shared view stays when its owner's account goes).",
    )
    order = models.PositiveSmallIntegerField(
        default=100, help_text="Views are shown by this number, then by name."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "name", "pk"]
        permissions = [("share_savedview", "Can share a saved view of the triage list")]
        indexes = [
            # The triage list's bar: shared views plus the user's own, in order.
            models.Index(fields=["shared", "order"], name="savedview_shared_order_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (shared)" if self.shared else self.name

    def clean(self) -> None:
        self.querystring = (self.querystring or "").strip().lstrip("?")
