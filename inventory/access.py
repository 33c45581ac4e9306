"""Store scope: which locations a user may see and act on, as querysets.

The one place that reads ``LocationAccess``. Every admin list and page, API view, export,
statistic and dashboard tile filters through a ``*_for_user`` function (this module for
inventory rows, ``anomalies.selectors`` and ``outcomes.selectors`` for theirs), and services
that write re-check with ``location_ids_check`` inside their transaction.

Rules: superusers and holders of ``ALL_LOCATIONS_PERMISSION`` (the ops manager role) see every
location; otherwise the user's ``LocationAccess`` row decides (``all_locations`` or its list);
no row, an anonymous or an inactive user: nothing.

The scope of a user object is read once (one query) and cached on it, so a request pays for
it at most once; ``location_ids_check`` always reads afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet

from inventory.models import (
    CalendarEvent,
    DailySales,
    Location,
    LocationAccess,
    Promotion,
    Receipt,
    StockAdjustment,
    StockLevel,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    AnyUser = AbstractBaseUser | AnonymousUser

ALL_LOCATIONS_PERMISSION = "inventory.view_all_locations"
_CACHE_ATTR = "_shelfwatch_location_scope"

M = TypeVar("M", bound=Model)


def _read_scope(user: Any) -> frozenset[int] | None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    if user.is_superuser or user.has_perm(ALL_LOCATIONS_PERMISSION):
        return None
    rows = list(
        LocationAccess.objects.filter(user_id=user.pk).values_list("all_locations", "locations")
    )
    if any(all_locations for all_locations, _ in rows):
        return None
    return frozenset(location_id for _, location_id in rows if location_id is not None)


def location_scope(user: AnyUser | None) -> frozenset[int] | None:
    """The ids of the locations ``user`` may see, or ``None`` for all of them.

    An empty set means none. Cached on the user object (one query the first time, none for
    superusers and ops managers once their permissions are loaded).
    """
    cached = getattr(user, _CACHE_ATTR, False) if user is not None else False
    if cached is not False:
        return cached
    scope = _read_scope(user)
    if user is not None:
        setattr(user, _CACHE_ATTR, scope)
    return scope


def scope_filter(
    queryset: QuerySet[M], user: AnyUser | None, *, field: str = "location", blank_is_all=False
) -> QuerySet[M]:
    """``queryset`` restricted to the rows whose ``field`` (a location foreign key path) is in
    the user's scope. ``blank_is_all``: a null location (promotions, calendar events) means
    "every location" and is visible to anyone with some scope."""
    scope = location_scope(user)
    if scope is None:
        return queryset
    if not scope:
        return queryset.none()
    condition = Q(**{f"{field}__in": sorted(scope)})
    if blank_is_all:
        condition |= Q(**{f"{field}__isnull": True})
    return queryset.filter(condition)


def locations_for_user(user: AnyUser | None, queryset: QuerySet[Location] | None = None):
    """The locations ``user`` may see (``queryset`` default: all locations)."""
    qs = Location.objects.all() if queryset is None else queryset
    return scope_filter(qs, user, field="pk")


def daily_sales_for_user(user: AnyUser | None, queryset: QuerySet[DailySales] | None = None):
    """Daily sales rows of the user's locations."""
    return scope_filter(DailySales.objects.all() if queryset is None else queryset, user)


def stock_levels_for_user(user: AnyUser | None, queryset: QuerySet[StockLevel] | None = None):
    """Book stock rows of the user's locations."""
    return scope_filter(StockLevel.objects.all() if queryset is None else queryset, user)


def receipts_for_user(user: AnyUser | None, queryset: QuerySet[Receipt] | None = None):
    """Receipts of the user's locations."""
    return scope_filter(Receipt.objects.all() if queryset is None else queryset, user)


def promotions_for_user(user: AnyUser | None, queryset: QuerySet[Promotion] | None = None):
    """Promotions of the user's locations and chain-wide ones (blank location)."""
    qs = Promotion.objects.all() if queryset is None else queryset
    return scope_filter(qs, user, blank_is_all=True)


def calendar_events_for_user(user: AnyUser | None, queryset: QuerySet[CalendarEvent] | None = None):
    """Calendar events of the user's locations and chain-wide ones (blank location)."""
    qs = CalendarEvent.objects.all() if queryset is None else queryset
    return scope_filter(qs, user, blank_is_all=True)


def stock_adjustments_for_user(
    user: AnyUser | None, queryset: QuerySet[StockAdjustment] | None = None
):
    """Stock adjustments of the user's locations."""
    return scope_filter(StockAdjustment.objects.all() if queryset is None else queryset, user)


def location_ids_check(*, user: AnyUser | None, location_ids: Iterable[int]) -> None:
    """Raise ``PermissionDenied`` unless every id of ``location_ids`` is in ``user``'s scope.

    Reads the scope afresh (not the cached one): writers call it inside their transaction,
    after locking the rows, so access withdrawn meanwhile is honoured.
    """
    scope = _read_scope(user)
    if scope is None:
        return
    outside = set(location_ids) - scope
    if outside:
        raise PermissionDenied(
            f"Not allowed at {len(outside)} location(s) outside your stores: nothing was changed."
        )
