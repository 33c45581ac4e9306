"""API of the outcomes loop: outcomes, cycle counts, reported misses, effectiveness and ROI."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from anomalies.api.serializers import DetailSerializer
from anomalies.services.loading import latest_data_date
from common.filters import StrictFilterBackend
from inventory.access import location_ids_check
from outcomes.api.serializers import (
    CycleCountRecordSerializer,
    CycleCountRequestSerializer,
    CycleCountSerializer,
    EffectivenessReportSerializer,
    MissedAnomalySerializer,
    OutcomeRecordSerializer,
    OutcomeSerializer,
    ReportQuerySerializer,
    RoiReportSerializer,
)
from outcomes.filters import CycleCountFilterSet, MissedAnomalyFilterSet, OutcomeFilterSet
from outcomes.models import CycleCount, MissedAnomaly, Outcome
from outcomes.selectors import cycle_counts_for_user, missed_anomalies_for_user, outcomes_for_user
from outcomes.services import (
    CycleCountConflict,
    CycleCountError,
    OutcomeError,
    ReportError,
    cycle_count_record,
    cycle_count_request,
    cycle_counts_cancel,
    effectiveness_report,
    missed_anomaly_report,
    outcome_record,
    roi_report,
)
from outcomes.services.reports import report_window

BAD_REQUEST = OpenApiResponse(DetailSerializer, description="Invalid input.")
CONFLICT = OpenApiResponse(DetailSerializer, description="The count's state forbids this.")


class CountConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The count's current state does not allow this change."
    default_code = "conflict"


class OutcomeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """Recorded outcomes. POST records one (or replaces the anomaly's existing one)."""

    queryset = Outcome.objects.select_related(
        "anomaly__product", "anomaly__location", "recorded_by"
    ).order_by("-recorded_at", "-id")
    serializer_class = OutcomeSerializer
    filterset_class = OutcomeFilterSet
    ordering_fields = ["recorded_at", "recovered_value"]
    # POST records or replaces: it needs both.
    required_permissions = {"create": ["outcomes.add_outcome", "outcomes.change_outcome"]}

    def get_queryset(self):
        return outcomes_for_user(self.request.user, super().get_queryset())

    @extend_schema(
        request=OutcomeRecordSerializer,
        responses={201: OutcomeSerializer, 200: OutcomeSerializer},
    )
    def create(self, request: Request) -> Response:
        """201 when the anomaly had no outcome yet, 200 when its outcome was replaced."""
        params = OutcomeRecordSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        location_ids_check(user=request.user, location_ids=[data["anomaly"].location_id])
        existed = Outcome.objects.filter(anomaly=data["anomaly"]).exists()
        try:
            outcome = outcome_record(
                anomaly_id=data["anomaly"].pk,
                verdict=data["verdict"],
                action_taken=data["action_taken"],
                recovered_value=data["recovered_value"],
                notes=data["notes"],
                actor=request.user,
            )
        except OutcomeError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        outcome = self.get_queryset().get(pk=outcome.pk)
        return Response(
            self.get_serializer(outcome).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class CycleCountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """Cycle counts, highest priority first (``priority`` = probability x money at risk per
    day). Filter by ``location``/``location_code`` and ``status`` for a store's list.

    ``POST`` requests a count for an anomaly; ``POST {id}/record/`` records what was counted,
    which adjusts the book stock, resolves the anomaly and records its outcome.
    """

    queryset = CycleCount.objects.select_related(
        "product", "location", "anomaly__outcome", "stock_adjustment"
    ).order_by("-priority", "id")
    serializer_class = CycleCountSerializer
    filterset_class = CycleCountFilterSet
    filter_backends = [StrictFilterBackend]  # fixed order: by priority
    lookup_value_regex = r"\d+"
    required_permissions = dict.fromkeys(("record", "cancel"), ("outcomes.change_cyclecount",))

    def get_queryset(self):
        return cycle_counts_for_user(self.request.user, super().get_queryset())

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, CycleCountConflict):
            exc = CountConflict(str(exc))
        elif isinstance(exc, CycleCountError):
            exc = ValidationError({"detail": str(exc)})
        return super().handle_exception(exc)

    def _done(self, count_id: int, code: int = status.HTTP_200_OK) -> Response:
        count = self.get_queryset().get(pk=count_id)
        return Response(self.get_serializer(count).data, status=code)

    @extend_schema(
        request=CycleCountRequestSerializer,
        responses={201: CycleCountSerializer, 200: CycleCountSerializer, 400: BAD_REQUEST},
    )
    def create(self, request: Request) -> Response:
        """Request a count for a ghost-stock or inventory-discrepancy anomaly.

        201 with the new count; 200 with the anomaly's open count if it already has one;
        400 when the anomaly cannot be counted (other type, store-level, closed).
        """
        params = CycleCountRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        anomaly = params.validated_data["anomaly"]
        existed = CycleCount.objects.open().filter(anomaly=anomaly).exists()
        count = cycle_count_request(anomaly_id=anomaly.pk, actor=request.user)
        return self._done(count.pk, status.HTTP_200_OK if existed else status.HTTP_201_CREATED)

    @extend_schema(
        request=CycleCountRecordSerializer,
        responses={200: CycleCountSerializer, 400: BAD_REQUEST, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def record(self, request: Request, pk: str) -> Response:
        """Record the counted quantity (requested → counted).

        Writes a stock adjustment (book → counted) and the day's book stock, resolves the
        anomaly and records its outcome: below book = true positive (recovered value =
        units written off x shelf price), equal = false positive, above = inconclusive.
        409 when the count is no longer requested.
        """
        params = CycleCountRecordSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        count = cycle_count_record(
            count_id=self.get_object().pk, actor=request.user, **params.validated_data
        )
        return self._done(count.pk)

    @extend_schema(request=None, responses={200: CycleCountSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Cancel an open count (requested → cancelled); 409 once counted or cancelled."""
        count = self.get_object()
        if not cycle_counts_cancel(count_ids=[count.pk], actor=request.user):
            raise CountConflict(
                f"Cycle count {count.pk} is {count.status}; it cannot be cancelled."
            )
        return self._done(count.pk)


class MissedAnomalyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, GenericViewSet
):
    """Anomalies staff found that no detector reported (they lower the recall estimate).

    POST reports one: ``anomaly_type``, ``location``, ``start_date`` and optionally
    ``product`` (null = store-level), ``end_date``, ``notes``.
    """

    queryset = MissedAnomaly.objects.select_related("product", "location", "reported_by").order_by(
        "-reported_at", "-id"
    )
    serializer_class = MissedAnomalySerializer
    filterset_class = MissedAnomalyFilterSet
    ordering_fields = ["reported_at", "start_date"]

    def get_queryset(self):
        return missed_anomalies_for_user(self.request.user, super().get_queryset())

    def perform_create(self, serializer: MissedAnomalySerializer) -> None:
        location_ids_check(
            user=self.request.user, location_ids=[serializer.validated_data["location"].pk]
        )
        try:
            serializer.instance = missed_anomaly_report(
                **serializer.validated_data, actor=self.request.user
            )
        except OutcomeError as exc:
            raise ValidationError({"detail": str(exc)}) from exc


class _ReportView(GenericAPIView):
    pagination_class = None
    filter_backends: list = []
    # Reports over anomalies and their outcomes, of the user's stores.
    required_permissions = {"get": ["anomalies.view_anomaly", "outcomes.view_outcome"]}
    throttle_scope = "reports"

    # Whether a window without ``end`` ends at the latest day with sales data when that is
    # before today (findings by the day detected) or at today (value by the day confirmed:
    # triage goes on after the data stops).
    anchor_on_data_end = False

    def _window(self, request: Request) -> dict:
        params = ReportQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        start, end = report_window(
            start=data["start"],
            end=data["end"],
            today=timezone.localdate(),
            data_end=latest_data_date() if self.anchor_on_data_end else None,
        )
        return {"start": start, "end": end, "period": data["period"]}


class EffectivenessView(_ReportView):
    """Precision, false-positive rate, MTTA/MTTR, resolution rate and recall, overall, by
    type, detector and location, and by period with the trend.

    Over anomalies first detected from ``start`` to ``end`` (default: the 90 days ending
    today, or the latest day with sales data when that is earlier), by ``period`` (``week`` or
    ``month``). Definitions: ``outcomes.metrics``.
    """

    serializer_class = EffectivenessReportSerializer
    anchor_on_data_end = True

    @extend_schema(
        parameters=[ReportQuerySerializer],
        responses={200: EffectivenessReportSerializer, 400: BAD_REQUEST},
    )
    def get(self, request: Request) -> Response:
        try:
            report = effectiveness_report(**self._window(request), user=request.user)
        except ReportError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(self.get_serializer(report).data)


class RoiView(_ReportView):
    """Recovered ghost-stock value + lost sales prevented against the labour of the counts,
    in total and by period with the trend (default: the 90 days ending today, by month)."""

    serializer_class = RoiReportSerializer

    @extend_schema(
        parameters=[ReportQuerySerializer], responses={200: RoiReportSerializer, 400: BAD_REQUEST}
    )
    def get(self, request: Request) -> Response:
        try:
            report = roi_report(**self._window(request), user=request.user)
        except ReportError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(self.get_serializer(report).data)
