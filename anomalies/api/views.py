from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet, ReadOnlyModelViewSet

from anomalies.api.serializers import (
    AcknowledgeUntilSerializer,
    AnomalyActivitySerializer,
    AnomalySerializer,
    AnomalyStatisticsSerializer,
    AssignSerializer,
    DetailSerializer,
    DetectionRunRequestSerializer,
    DetectionRunSerializer,
    DismissSerializer,
    NoteAddSerializer,
    NoteSerializer,
    SnoozeSerializer,
    StatisticsQuerySerializer,
    TransitionSerializer,
)
from anomalies.filters import AnomalyFilterSet, DetectionRunFilterSet
from anomalies.models import Anomaly, DetectionRun
from anomalies.selectors import anomalies_for_user, detection_runs_for_user
from anomalies.services.runs import (
    DetectionEnqueueError,
    DetectionError,
    DetectionRunInProgress,
    detection_run_request,
)
from anomalies.services.statistics import anomaly_statistics
from anomalies.services.triage import (
    TransitionError,
    anomaly_acknowledge,
    anomaly_acknowledge_until,
    anomaly_assign,
    anomaly_dismiss,
    anomaly_note_add,
    anomaly_resolve,
    anomaly_snooze,
    anomaly_unsnooze,
)
from common.api_pagination import CappedCursorPagination
from common.filters import StrictFilterBackend

CONFLICT = OpenApiResponse(
    DetailSerializer,
    description="The anomaly's state forbids this, or it was changed by someone else "
    "(``expected_status`` no longer matches).",
)
ACTIVITY_LIMIT_ROWS = 200


class TriageConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The anomaly's current state does not allow this change."
    default_code = "conflict"


class RunInProgress(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A detection run for this date is already in progress."
    default_code = "run_in_progress"


class BrokerUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The task broker is unreachable; the run was recorded as failed."
    default_code = "broker_unavailable"


class AnomalyCursorPagination(CappedCursorPagination):
    ordering = ("-last_detected_on", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


class AnomalyViewSet(ReadOnlyModelViewSet):
    """Anomalies, newest detection first. Triage through the POST actions only."""

    queryset = Anomaly.objects.select_related("product", "location", "assignee").order_by(
        "-last_detected_on", "-id"
    )
    serializer_class = AnomalySerializer
    filterset_class = AnomalyFilterSet
    filter_backends = [StrictFilterBackend]  # no ?ordering: the cursor needs a fixed order
    pagination_class = AnomalyCursorPagination
    lookup_value_regex = r"\d+"
    required_permissions = {
        **dict.fromkeys(
            (
                "acknowledge",
                "acknowledge_until",
                "resolve",
                "dismiss",
                "snooze",
                "unsnooze",
                "note",
                "assign",
            ),
            ("anomalies.change_anomaly",),
        ),
        "activity": ("anomalies.view_anomaly", "anomalies.view_anomalyactivity"),
    }

    def get_queryset(self):
        return anomalies_for_user(self.request.user, super().get_queryset())

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, TransitionError):
            exc = TriageConflict(str(exc))
        return super().handle_exception(exc)

    def _done(self, anomaly: Anomaly) -> Response:
        return Response(AnomalySerializer(anomaly, context=self.get_serializer_context()).data)

    @staticmethod
    def _params(serializer_class: type, request: Request) -> dict:
        params = serializer_class(data=request.data)
        params.is_valid(raise_exception=True)
        return params.validated_data

    @extend_schema(request=TransitionSerializer, responses={200: AnomalySerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str) -> Response:
        """Open → acknowledged; you become the assignee if there is none."""
        anomaly = anomaly_acknowledge(
            anomaly_id=self.get_object().pk,
            actor=request.user,
            **self._params(TransitionSerializer, request),
        )
        return self._done(anomaly)

    @extend_schema(
        request=AcknowledgeUntilSerializer, responses={200: AnomalySerializer, 409: CONFLICT}
    )
    @action(detail=True, methods=["post"], url_path="acknowledge-until")
    def acknowledge_until(self, request: Request, pk: str) -> Response:
        """Open, acknowledged or snoozed → acknowledged until it is counted, the SKU's next
        receipt there, or a date; it returns to open by itself when that has passed and
        detection still finds it. You become the assignee if there is none."""
        anomaly = anomaly_acknowledge_until(
            anomaly_id=self.get_object().pk,
            actor=request.user,
            **self._params(AcknowledgeUntilSerializer, request),
        )
        return self._done(anomaly)

    @extend_schema(request=NoteSerializer, responses={200: AnomalySerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        """Open, acknowledged or snoozed → resolved, with an optional note."""
        anomaly = anomaly_resolve(
            anomaly_id=self.get_object().pk,
            actor=request.user,
            **self._params(NoteSerializer, request),
        )
        return self._done(anomaly)

    @extend_schema(request=DismissSerializer, responses={200: AnomalySerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str) -> Response:
        """Open, acknowledged or snoozed → dismissed, with a reason and an optional note."""
        anomaly = anomaly_dismiss(
            anomaly_id=self.get_object().pk,
            actor=request.user,
            **self._params(DismissSerializer, request),
        )
        return self._done(anomaly)

    @extend_schema(request=SnoozeSerializer, responses={200: AnomalySerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def snooze(self, request: Request, pk: str) -> Response:
        """Hide it until a day (``until``) or for ``days`` days; it reopens by itself then, or
        earlier when detection finds it worse."""
        anomaly = anomaly_snooze(
            anomaly_id=self.get_object().pk,
            actor=request.user,
            **self._params(SnoozeSerializer, request),
        )
        return self._done(anomaly)

    @extend_schema(request=NoteSerializer, responses={200: AnomalySerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def unsnooze(self, request: Request, pk: str) -> Response:
        """Snoozed → open now."""
        anomaly = anomaly_unsnooze(
            anomaly_id=self.get_object().pk,
            actor=request.user,
            **self._params(NoteSerializer, request),
        )
        return self._done(anomaly)

    @extend_schema(request=NoteAddSerializer, responses={201: AnomalyActivitySerializer})
    @action(detail=True, methods=["post"])
    def note(self, request: Request, pk: str) -> Response:
        """Add a note to the activity log (any state); returns the new log entry."""
        text = self._params(NoteAddSerializer, request)["note"]
        try:
            activity = anomaly_note_add(
                anomaly_id=self.get_object().pk, actor=request.user, note=text
            )
        except ValueError as exc:  # blank once stripped
            raise ValidationError({"note": [str(exc)]}) from exc
        return Response(AnomalyActivitySerializer(activity).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: AnomalyActivitySerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def activity(self, request: Request, pk: str) -> Response:
        """The activity log, newest first (at most 200 entries)."""
        rows = self.get_object().activities.select_related("actor")[:ACTIVITY_LIMIT_ROWS]
        return Response(AnomalyActivitySerializer(rows, many=True).data)

    @extend_schema(request=AssignSerializer, responses={200: AnomalySerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str) -> Response:
        """Set the assignee (a user id), clear it (null) or take it (``"me": true``)."""
        data = self._params(AssignSerializer, request)
        assignee = request.user if data["me"] else data["assignee"]
        anomaly = anomaly_assign(
            anomaly_id=self.get_object().pk,
            assignee=assignee,
            actor=request.user,
            expected_status=data["expected_status"],
        )
        return self._done(anomaly)


class DetectionRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """Detection runs, newest first. POST starts one in the background."""

    queryset = DetectionRun.objects.prefetch_related("chunks").order_by("-created_at", "-id")
    serializer_class = DetectionRunSerializer
    filterset_class = DetectionRunFilterSet
    ordering_fields = ["as_of", "created_at"]
    # Runs are chain-wide: anyone with the view permission lists them; POST needs
    # anomalies.add_detectionrun (the ops manager role).

    def get_queryset(self):
        return detection_runs_for_user(self.request.user, super().get_queryset())

    def get_throttles(self):
        # Listing runs is cheap; each POST starts a detection (scope "runs").
        self.throttle_scope = "runs" if self.action == "create" else None
        return super().get_throttles()

    @extend_schema(
        request=DetectionRunRequestSerializer,
        responses={
            202: DetectionRunSerializer,
            400: OpenApiResponse(
                DetailSerializer,
                description="Unknown detector, implausible as-of date or one after the data, "
                "or no data.",
            ),
            409: OpenApiResponse(
                DetailSerializer, description="A run for this as-of date is already in progress."
            ),
            503: OpenApiResponse(
                DetailSerializer,
                description="The task broker is unreachable; the run is recorded as failed.",
            ),
        },
    )
    def create(self, request: Request) -> Response:
        """Queue a detection run; 202 with the run (already finished when tasks run eagerly)."""
        params = DetectionRunRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            run = detection_run_request(**params.validated_data, trigger="api")
        except DetectionRunInProgress as exc:
            raise RunInProgress(str(exc)) from exc
        except DetectionError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        except DetectionEnqueueError as exc:
            raise BrokerUnavailable(str(exc)) from exc
        run.refresh_from_db()  # an eager task has finished it meanwhile
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)


class AnomalyStatisticsView(GenericAPIView):
    """Counts by type, severity and status, open value at risk and a daily trend.

    Accepts the anomaly list's filters to restrict what is counted.
    """

    queryset = Anomaly.objects.all()
    serializer_class = AnomalyStatisticsSerializer
    filterset_class = AnomalyFilterSet
    filter_backends = [StrictFilterBackend]
    pagination_class = None
    throttle_scope = "reports"

    def get_queryset(self):
        return anomalies_for_user(self.request.user, super().get_queryset())

    @extend_schema(parameters=[StatisticsQuerySerializer], filters=True)
    def get(self, request: Request) -> Response:
        params = StatisticsQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        stats = anomaly_statistics(
            queryset=self.filter_queryset(self.get_queryset()), days=params.validated_data["days"]
        )
        return Response(self.get_serializer(stats).data)
