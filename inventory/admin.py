"""Admin for master data (editable) and the imported fact tables (read-only, huge).

Also home of the admin filters the other apps reuse: a "recent days" filter anchored on the
data, location and category filters. (The read-only mixin and the bounded paginator are in
``common.admin``.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib import admin
from django.db.models import Max, QuerySet
from django.http import HttpRequest

from common.admin import BoundedCountPaginator, ReadOnlyAdminMixin
from inventory.access import (
    calendar_events_for_user,
    daily_sales_for_user,
    locations_for_user,
    promotions_for_user,
    receipts_for_user,
    stock_adjustments_for_user,
    stock_levels_for_user,
)
from inventory.models import (
    CalendarEvent,
    DailySales,
    Location,
    LocationAccess,
    Product,
    Promotion,
    Receipt,
    StockAdjustment,
    StockLevel,
)


class StoreScopedAdminMixin:
    """Changelist, change page, actions and autocomplete show only rows of the user's stores.

    Mix in before ``admin.ModelAdmin`` and set ``scope_for_user`` to the model's selector
    (``staticmethod(daily_sales_for_user)``...). A row outside the stores is "not found".
    """

    scope_for_user: Callable[..., QuerySet]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return type(self).scope_for_user(request.user, super().get_queryset(request))


# --- shared list filters -----------------------------------------------------------------------


class RecentDaysListFilter(admin.SimpleListFilter):
    """Rows whose ``date_field`` is within the latest N days *of data*, not of the calendar.

    Imports and detection work on past dates (yesterday's sales, backfills of old data), so
    "last 7 days" means the 7 days ending at the newest date in the table. The anchor costs one
    MAX() query (index-backed) and only when the filter is in use.
    """

    title = "date"
    parameter_name = "recent"
    date_field = "date"
    periods_days: tuple[tuple[int, str], ...] = (
        (1, "Latest day"),
        (7, "Last 7 days"),
        (30, "Last 30 days"),
        (90, "Last 90 days"),
    )

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(str(days), label) for days, label in self.periods_days]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() not in {str(days) for days, _label in self.periods_days}:
            return queryset
        latest = queryset.model._default_manager.aggregate(latest=Max(self.date_field))["latest"]
        if latest is None:
            return queryset
        since = latest - dt.timedelta(days=int(self.value()) - 1)
        return queryset.filter(**{f"{self.date_field}__gte": since})


class LocationListFilter(admin.SimpleListFilter):
    """Pick one location by code (there are few locations; one query lists them)."""

    title = "location"
    parameter_name = "location"
    field_path = "location"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        locations = locations_for_user(request.user).values_list("pk", "code")
        return [(str(pk), code) for pk, code in locations]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() and self.value().isdigit():
            return queryset.filter(**{f"{self.field_path}_id": int(self.value())})
        return queryset


class ProductCategoryListFilter(admin.SimpleListFilter):
    """Pick one product category (distinct categories: one query)."""

    title = "category"
    parameter_name = "category"
    field_path = "category"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        categories = (
            Product.objects.exclude(category="")
            .order_by("category")
            .values_list("category", flat=True)
            .distinct()
        )
        return [(category, category) for category in categories]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(**{self.field_path: self.value()})
        return queryset


# --- master data -------------------------------------------------------------------------------


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "category", "unit_price", "unit_cost")
    search_fields = ("sku", "name")
    list_filter = (ProductCategoryListFilter,)


@admin.register(Location)
class LocationAdmin(StoreScopedAdminMixin, admin.ModelAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")
    scope_for_user = staticmethod(locations_for_user)


@admin.register(LocationAccess)
class LocationAccessAdmin(admin.ModelAdmin):
    """Which stores each user sees (ops managers and superusers see all without a row)."""

    list_display = ("user", "all_locations", "store_codes")
    list_select_related = ("user",)
    list_filter = ("all_locations",)
    search_fields = ("user__username",)
    autocomplete_fields = ("user", "locations")

    def get_queryset(self, request: HttpRequest) -> QuerySet[LocationAccess]:
        return super().get_queryset(request).prefetch_related("locations")

    @admin.display(description="locations")
    def store_codes(self, obj: LocationAccess) -> str:
        return "all" if obj.all_locations else ", ".join(loc.code for loc in obj.locations.all())


@admin.register(Promotion)
class PromotionAdmin(StoreScopedAdminMixin, admin.ModelAdmin):
    scope_for_user = staticmethod(promotions_for_user)
    list_display = ("product", "location", "start_date", "end_date", "discount_pct")
    list_select_related = ("product", "location")
    list_filter = (LocationListFilter,)
    search_fields = ("product__sku", "product__name")
    autocomplete_fields = ("product", "location")


@admin.register(CalendarEvent)
class CalendarEventAdmin(StoreScopedAdminMixin, admin.ModelAdmin):
    scope_for_user = staticmethod(calendar_events_for_user)
    list_display = ("date", "name", "location", "is_closed")
    list_select_related = ("location",)
    list_filter = ("is_closed", LocationListFilter)
    search_fields = ("name",)
    autocomplete_fields = ("location",)


# --- imported fact tables ----------------------------------------------------------------------


class ImportedFactAdmin(StoreScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only view of an imported fact table with millions of rows.

    No full COUNT(*) (bounded paginator, no full result count, no facets), no date hierarchy,
    only index-friendly filters: a recent-days filter and exact SKU / location code search.
    Rows change only through the importers.
    """

    list_select_related = ("product", "location")
    list_filter = (RecentDaysListFilter,)
    search_fields = ("product__sku__exact", "location__code__exact")
    search_help_text = "Exact SKU and/or location code, e.g. “85123A” or “85123A S001”."
    sortable_by = ("date",)
    paginator = BoundedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100

    @admin.display(description="SKU", ordering="product__sku")
    def sku(self, obj) -> str:
        return obj.product.sku

    @admin.display(description="product")
    def product_name(self, obj) -> str:
        return obj.product.name

    @admin.display(description="location", ordering="location__code")
    def location_code(self, obj) -> str:
        return obj.location.code


@admin.register(DailySales)
class DailySalesAdmin(ImportedFactAdmin):
    scope_for_user = staticmethod(daily_sales_for_user)
    list_display = (
        "date",
        "sku",
        "product_name",
        "location_code",
        "units_sold",
        "units_returned",
        "unit_price",
    )


@admin.register(StockLevel)
class StockLevelAdmin(ImportedFactAdmin):
    scope_for_user = staticmethod(stock_levels_for_user)
    list_display = ("date", "sku", "product_name", "location_code", "on_hand")


@admin.register(Receipt)
class ReceiptAdmin(ImportedFactAdmin):
    scope_for_user = staticmethod(receipts_for_user)
    list_display = ("date", "sku", "product_name", "location_code", "units")


@admin.register(StockAdjustment)
class StockAdjustmentAdmin(StoreScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Book-stock corrections to physical counts; written only by recording a cycle count."""

    scope_for_user = staticmethod(stock_adjustments_for_user)

    list_display = (
        "date",
        "sku",
        "product_name",
        "location_code",
        "book_before",
        "counted",
        "delta",
        "reason",
        "cycle_count",
        "created_by",
        "created_at",
    )
    list_select_related = ("product", "location", "cycle_count", "created_by")
    list_filter = ("reason", LocationListFilter)
    search_fields = ("product__sku__exact", "location__code__exact")
    search_help_text = "Exact SKU and/or location code."
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="SKU", ordering="product__sku")
    def sku(self, obj: StockAdjustment) -> str:
        return obj.product.sku

    @admin.display(description="product")
    def product_name(self, obj: StockAdjustment) -> str:
        return obj.product.name

    @admin.display(description="location", ordering="location__code")
    def location_code(self, obj: StockAdjustment) -> str:
        return obj.location.code
