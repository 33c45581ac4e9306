from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from outcomes.api.serializers import OutcomeRecordSerializer, OutcomeSerializer
from outcomes.filters import OutcomeFilterSet
from outcomes.models import Outcome
from outcomes.services import OutcomeError, outcome_record


class OutcomeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """Recorded outcomes. POST records one (or replaces the anomaly's existing one)."""

    queryset = Outcome.objects.select_related(
        "anomaly__product", "anomaly__location", "recorded_by"
    ).order_by("-recorded_at", "-id")
    serializer_class = OutcomeSerializer
    filterset_class = OutcomeFilterSet
    ordering_fields = ["recorded_at", "recovered_value"]

    @extend_schema(
        request=OutcomeRecordSerializer,
        responses={201: OutcomeSerializer, 200: OutcomeSerializer},
    )
    def create(self, request: Request) -> Response:
        """201 when the anomaly had no outcome yet, 200 when its outcome was replaced."""
        params = OutcomeRecordSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
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
