"""factory_boy factories for the models tests build rows of."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from anomalies.models import Anomaly, AnomalyStatus, AnomalyType, DetectionRun, Severity
from inventory.models import DailySales, Location, Product, StockLevel


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create and results:
            instance.save(update_fields=["password"])


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    category = "Grocery"
    unit_price = Decimal("2.50")
    unit_cost = Decimal("1.20")


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    code = factory.Sequence(lambda n: f"S{n:03d}")
    name = factory.Sequence(lambda n: f"Store {n}")


class DailySalesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DailySales

    product = factory.SubFactory(ProductFactory)
    location = factory.SubFactory(LocationFactory)
    date = dt.date(2024, 1, 1)
    units_sold = 3
    units_returned = 0
    unit_price = Decimal("2.50")


class StockLevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StockLevel

    product = factory.SubFactory(ProductFactory)
    location = factory.SubFactory(LocationFactory)
    date = dt.date(2024, 1, 1)
    on_hand = 10


class DetectionRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DetectionRun

    as_of = dt.date(2024, 1, 31)
    detectors = factory.LazyFunction(lambda: ["ghost_stock"])
    status = "succeeded"


class AnomalyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Anomaly

    anomaly_type = AnomalyType.GHOST_STOCK
    severity = Severity.WARNING
    score = 0.95
    expected_value = 4.2
    actual_value = 0.0
    value_at_risk = Decimal("95.00")
    explanation = "No sales for 6 days although 4.2 units/day were expected; 38 units on hand."
    details = factory.LazyFunction(dict)
    product = factory.SubFactory(ProductFactory)
    location = factory.SubFactory(LocationFactory)
    start_date = dt.date(2024, 1, 20)
    end_date = dt.date(2024, 1, 25)
    first_detected_on = dt.date(2024, 1, 25)
    last_detected_on = dt.date(2024, 1, 25)
    status = AnomalyStatus.OPEN
