"""Retail master and fact data: products, locations, daily sales, book stock, receipts,
promotions and calendar events.

Fact tables (``DailySales``, ``StockLevel``, ``Receipt``) hold one row per SKU, location and
day; they are written by the importers (bulk upserts) and read by detection. Being the big
tables (tens of millions of rows), they are built for loading speed:

- Their unique key is ordered (location, date, product): imported files run by date, so new
  rows land at the right end of each location's part of the index instead of all over it,
  and the key's (location, date) prefix serves every query by location and date window.
  Apart from the primary key, the only other index is on ``date``. The foreign keys get no
  index of their own (``db_index=False``): the key covers location; a product's rows across
  all locations are looked up by no page, only when a product is deleted (a full scan).
- Their foreign keys have no database constraint (``db_constraint=False``). PostgreSQL
  checks such a constraint with one query per inserted row at commit, which cost more than
  the whole load (measured: 23 s of server CPU for 3.65M rows against 10 s for storing and
  indexing them). Integrity is kept by the writers instead: the importers map SKU and
  location codes to the ids of rows they have just upserted in the same transaction, other
  writers go through the ORM with existing objects, and deleting a product or location
  still cascades to the facts (Django's ``on_delete=CASCADE`` runs in Python). Raw SQL that
  deletes products or locations must delete their facts too.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class Product(models.Model):
    """A SKU. ``unit_price`` is the regular shelf price; ``unit_cost`` is optional."""

    sku = models.CharField("SKU", max_length=64, unique=True)
    name = models.CharField(max_length=255, blank=True)
    category = models.CharField(max_length=128, blank=True, db_index=True)
    unit_price = models.DecimalField(
        max_digits=14, decimal_places=4, help_text="Regular shelf price per unit."
    )
    unit_cost = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True, help_text="Cost per unit, if known."
    )

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}".strip()


class Location(models.Model):
    """A store (or, for online data, a sales region)."""

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code if not self.name or self.name == self.code else f"{self.code} {self.name}"


class DailySales(models.Model):
    """Point-of-sale totals of one SKU at one location on one day.

    A missing row means nothing was sold. ``unit_price`` is the average realized price per unit
    sold (revenue / units sold), null when nothing was sold at a known price.
    """

    # No index or database constraint of their own: see the module docstring.
    product = models.ForeignKey(
        Product,
        on_delete=models.CASCADE,
        related_name="daily_sales",
        db_index=False,
        db_constraint=False,
    )
    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        related_name="daily_sales",
        db_index=False,
        db_constraint=False,
    )
    date = models.DateField()
    units_sold = models.IntegerField(default=0)
    units_returned = models.IntegerField(
        default=0, help_text="Units returned or cancelled that day (counted, not netted away)."
    )
    unit_price = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True, help_text="Average realized price."
    )

    class Meta:
        verbose_name = "daily sales"
        verbose_name_plural = "daily sales"
        ordering = ["-date", "location_id", "product_id"]
        constraints = [
            # The natural key (import upserts). Its (location, date) prefix serves detection
            # loading `location_id IN (...) AND date BETWEEN`, the anomaly page and charts
            # (one location's days, then one product's) and the importer's MIN/MAX(date)
            # per location.
            models.UniqueConstraint(
                fields=["location", "date", "product"],
                name="dailysales_unique_location_date_product",
            ),
        ]
        indexes = [
            # MAX(date) (latest data date), date windows over all locations, the admin's
            # latest days.
            models.Index(fields=["date"], name="dailysales_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.location_id} {self.date}: {self.units_sold}"


class PricePoint(models.Model):
    """A unit price a SKU sold at on a day somewhere in the chain, outside any promotion.

    Derived data, chain-wide (no location): one row per (date, product, price in pence). The
    price detector learns each SKU's price points from it, so that a quantity or customer tier
    seen at any store is known at every store whatever the detection chunk (issue 11). Filled
    from line-level imports (every line's own unit price: tier prices that a daily average
    would mix) and, at the start of every detection run, from the daily sales of the days not
    yet covered (``inventory.importing.price_points``). Rows are never updated; a re-imported
    past day keeps the points it had.
    """

    # Chain-wide and written in bulk: no index or database constraint of its own (the key's
    # product column is not its prefix; a product's rows are looked up only on delete).
    product = models.ForeignKey(
        Product,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    date = models.DateField()
    price_pence = models.IntegerField(
        help_text="Unit price in the currency's smallest unit (pence, cents), rounded."
    )

    class Meta:
        ordering = ["date", "product_id", "price_pence"]
        constraints = [
            # The natural key; its date prefix serves detection's `date BETWEEN` window load
            # and the refresh's MAX(date).
            models.UniqueConstraint(
                fields=["date", "product", "price_pence"], name="pricepoint_unique_date_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.date}: {self.price_pence}"


class StockLevel(models.Model):
    """Book stock (on-hand according to the system) of one SKU at one location at end of day."""

    # No index or database constraint of their own: see the module docstring.
    product = models.ForeignKey(
        Product,
        on_delete=models.CASCADE,
        related_name="stock_levels",
        db_index=False,
        db_constraint=False,
    )
    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        related_name="stock_levels",
        db_index=False,
        db_constraint=False,
    )
    date = models.DateField()
    on_hand = models.IntegerField(help_text="Book stock at end of day, in units.")

    class Meta:
        ordering = ["-date", "location_id", "product_id"]
        constraints = [
            # The natural key (import upserts). Its (location, date) prefix serves detection
            # loading by location and date window, the anomaly page (one location's days,
            # then one product's), the book stock of one SKU on a day (cycle counts) and the
            # importer's MIN/MAX(date) per location.
            models.UniqueConstraint(
                fields=["location", "date", "product"],
                name="stocklevel_unique_location_date_product",
            ),
        ]
        indexes = [
            # Date windows over all locations (control-count sample), the admin's latest days.
            models.Index(fields=["date"], name="stocklevel_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.location_id} {self.date}: {self.on_hand}"


class Receipt(models.Model):
    """Units delivered (received into book stock) for one SKU at one location on one day."""

    # No index or database constraint of their own: see the module docstring.
    product = models.ForeignKey(
        Product,
        on_delete=models.CASCADE,
        related_name="receipts",
        db_index=False,
        db_constraint=False,
    )
    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        related_name="receipts",
        db_index=False,
        db_constraint=False,
    )
    date = models.DateField()
    units = models.IntegerField()

    class Meta:
        ordering = ["-date", "location_id", "product_id"]
        constraints = [
            # The natural key (import upserts). Its (location, date) prefix serves detection
            # loading by location and date window, the anomaly page and the importer's
            # MIN/MAX(date) per location.
            models.UniqueConstraint(
                fields=["location", "date", "product"], name="receipt_unique_location_date_product"
            ),
        ]
        indexes = [
            # Date windows over all locations, the admin's latest days.
            models.Index(fields=["date"], name="receipt_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.location_id} {self.date}: +{self.units}"


class Promotion(models.Model):
    """A price promotion of one SKU over a date range, at one location or (blank) all.

    Promotions of a SKU may overlap (two campaigns starting the same day: a week at 20 % and
    a weekend at 25 %); on a day several cover at a location (its own and all-location ones),
    the deepest discount applies. The same promotion twice is refused.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="promotions")
    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="promotions",
        help_text="Blank means every location.",
    )
    start_date = models.DateField()
    end_date = models.DateField()
    discount_pct = models.DecimalField(max_digits=5, decimal_places=2, help_text="Discount in %.")

    class Meta:
        ordering = ["-start_date", "product_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "location", "start_date", "end_date", "discount_pct"],
                condition=Q(location__isnull=False),
                name="promotion_unique_terms",
            ),
            models.UniqueConstraint(
                fields=["product", "start_date", "end_date", "discount_pct"],
                condition=Q(location__isnull=True),
                name="promotion_unique_terms_all_locations",
            ),
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")), name="promotion_end_after_start"
            ),
        ]
        indexes = [
            # Detection loads the promotions overlapping its window.
            models.Index(fields=["end_date"], name="promotion_end_date_idx"),
        ]

    def __str__(self) -> str:
        where = self.location.code if self.location_id else "all locations"
        return f"{self.product} -{self.discount_pct}% {self.start_date}..{self.end_date} ({where})"

    def clean(self) -> None:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValidationError({"end_date": "The end date is before the start date."})


class CalendarEvent(models.Model):
    """A dated event (holiday, local event, closure) at one location or (blank) all."""

    date = models.DateField()
    name = models.CharField(max_length=255)
    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="calendar_events",
        help_text="Blank means every location.",
    )
    is_closed = models.BooleanField(default=False, help_text="The store is closed that day.")

    class Meta:
        ordering = ["-date", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["date", "name", "location"],
                condition=Q(location__isnull=False),
                name="calendarevent_unique_date_name_location",
            ),
            models.UniqueConstraint(
                fields=["date", "name"],
                condition=Q(location__isnull=True),
                name="calendarevent_unique_date_name_all_locations",
            ),
        ]
        indexes = [
            # Detection loads the events of its window.
            models.Index(fields=["date"], name="calendarevent_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class AdjustmentReason(models.TextChoices):
    CYCLE_COUNT = "cycle_count", "Cycle count of a finding"
    CONTROL_COUNT = "control_count", "Random control count"


class StockAdjustment(models.Model):
    """An explicit correction of book stock to a physical count (``delta = counted - book``).

    Written by ``outcomes.services.cycle_counts.cycle_count_record`` together with the
    ``StockLevel`` row of ``date`` (set to ``counted``), so the book history explains itself.
    """

    # Covered by the indexes below (product by the series, location by location + date).
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="adjustments", db_index=False
    )
    location = models.ForeignKey(
        Location, on_delete=models.CASCADE, related_name="adjustments", db_index=False
    )
    date = models.DateField(help_text="Stock date corrected (book stock at end of that day).")
    book_before = models.IntegerField(help_text="Book stock (units) before the correction.")
    counted = models.IntegerField(help_text="Units counted: the new book stock.")
    delta = models.IntegerField(help_text="counted - book_before (negative: units written off).")
    reason = models.CharField(max_length=16, choices=AdjustmentReason.choices)
    cycle_count = models.OneToOneField(
        "outcomes.CycleCount",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="stock_adjustment",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(delta=models.F("counted") - models.F("book_before")),
                name="stockadjustment_delta_is_counted_minus_book",
            ),
            models.CheckConstraint(
                condition=Q(counted__gte=0), name="stockadjustment_counted_not_negative"
            ),
        ]
        indexes = [
            # Book-stock history of one SKU/location (anomaly page, explaining book changes).
            models.Index(fields=["product", "location", "date"], name="stockadjustment_series_idx"),
            # Admin list: latest adjustments of one store.
            models.Index(fields=["location", "date"], name="stockadjustment_loc_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.location_id} {self.date}: {self.delta:+d}"


class LocationAccess(models.Model):
    """Which locations (stores) a user may see and act on: a list, or all of them.

    Read by ``inventory.access`` (the one place that turns it into querysets). A user without
    a row sees no location's data (safe default); superusers and holders of the
    ``inventory.view_all_locations`` permission (the ops manager role) see all whatever this
    row says.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="location_access"
    )
    all_locations = models.BooleanField(
        default=False, help_text="Every location, present and future (the list is ignored)."
    )
    locations = models.ManyToManyField(Location, blank=True, related_name="+")

    class Meta:
        verbose_name = "location access"
        verbose_name_plural = "location access"
        ordering = ["user_id"]
        permissions = [("view_all_locations", "Can see and act on every location")]

    def __str__(self) -> str:
        return f"location access of user {self.user_id}"
