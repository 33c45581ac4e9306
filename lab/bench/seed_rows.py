"""The rows of the benchmark's seeded anomalies: keys, type/severity/status mix, dates,
lifecycle fields and explanations, drawn as one frame (``seed_frame``; no database writes)."""

import datetime as dt

import numpy as np
import pandas as pd

from anomalies.models import (
    AnomalyStatus,
    AnomalyType,
    DismissReason,
    Severity,
)

# Start dates fall within this many days before ``as_of``.
SEED_SPAN_DAYS = 365
# An anomaly last detected within this many days of ``as_of`` is "recent": mostly still open.
RECENT_DAYS = 30
# Key packing (see ``pack_keys``): bits per component.
DAY_BITS, LOCATION_BITS, PRODUCT_BITS = 20, 12, 20
MAX_LOCATIONS = (1 << LOCATION_BITS) - 1
MAX_SKUS = (1 << PRODUCT_BITS) - 2  # the last slot is "no SKU" (location-level rows)


# Share of anomalies by type. POS outages are location-level and therefore rare: at most one
# per type, location and start date.
TYPE_WEIGHTS: dict[str, float] = {
    AnomalyType.DEMAND_SPIKE: 0.24,
    AnomalyType.DEMAND_DROP: 0.20,
    AnomalyType.GHOST_STOCK: 0.16,
    AnomalyType.INVENTORY_DISCREPANCY: 0.15,
    AnomalyType.PRICE_ANOMALY: 0.12,
    AnomalyType.ML_DETECTED: 0.125,
    AnomalyType.POS_OUTAGE: 0.005,
}
SEVERITY_WEIGHTS: dict[str, float] = {
    Severity.INFO: 0.30,
    Severity.WARNING: 0.55,
    Severity.CRITICAL: 0.15,
}
# Status mix of recent anomalies (last detected within RECENT_DAYS) and of older ones.
STATUS_WEIGHTS_RECENT: dict[str, float] = {
    AnomalyStatus.OPEN: 0.50,
    AnomalyStatus.ACKNOWLEDGED: 0.20,
    AnomalyStatus.SNOOZED: 0.06,
    AnomalyStatus.RESOLVED: 0.14,
    AnomalyStatus.DISMISSED: 0.10,
}
STATUS_WEIGHTS_OLD: dict[str, float] = {
    AnomalyStatus.OPEN: 0.05,
    AnomalyStatus.ACKNOWLEDGED: 0.03,
    AnomalyStatus.SNOOZED: 0.01,
    AnomalyStatus.RESOLVED: 0.62,
    AnomalyStatus.DISMISSED: 0.29,
}
DISMISS_REASON_WEIGHTS: dict[str, float] = {
    DismissReason.FALSE_POSITIVE: 0.6,
    DismissReason.EXPECTED: 0.3,
    DismissReason.DUPLICATE: 0.1,
}
# Share of open anomalies that are open again after a resolve (regressed).
REGRESSED_SHARE = 0.03


# Table columns written, in COPY order (``id``, ``parent_id`` and ``last_run_id`` stay NULL).
COLUMNS = (
    "anomaly_type",
    "severity",
    "score",
    "expected_value",
    "actual_value",
    "value_at_risk",
    "explanation",
    "details",
    "product_id",
    "location_id",
    "start_date",
    "end_date",
    "first_detected_on",
    "last_detected_on",
    "status",
    "assignee_id",
    "created_at",
    "updated_at",
    "acknowledged_at",
    "closed_at",
    "dismiss_reason",
    "snoozed_until",
    "snoozed_severity",
    "snoozed_value_at_risk",
    "regressed_at",
    "regression_count",
)


# --- drawing ----------------------------------------------------------------------------------


def pack_keys(
    types: np.ndarray, products: np.ndarray, locations: np.ndarray, ordinals: np.ndarray
) -> np.ndarray:
    """One int64 per (type, SKU slot, location slot, start date ordinal): the unique key."""
    return (
        (types << (PRODUCT_BITS + LOCATION_BITS + DAY_BITS))
        | (products << (LOCATION_BITS + DAY_BITS))
        | (locations << DAY_BITS)
        | ordinals
    )


def _choice(rng: np.random.Generator, weights: dict[str, float], size: int) -> np.ndarray:
    names = np.array(list(weights), dtype=object)
    p = np.array(list(weights.values()), dtype=float)
    return names[rng.choice(len(names), size=size, p=p / p.sum())]


def _draw_keys(
    *,
    rng: np.random.Generator,
    count: int,
    n_locations: int,
    n_products: int,
    first_ordinal: int,
    taken_keys: np.ndarray,
) -> pd.DataFrame:
    """``count`` distinct (type, SKU slot, location slot, start ordinal) not in ``taken_keys``.

    SKU and store popularity are skewed (log-normal weights): a few SKUs and stores raise many
    more anomalies than the rest, as in real data. Redraws until enough distinct keys remain.
    """
    type_names = np.array(AnomalyType.values, dtype=object)
    type_p = np.array([TYPE_WEIGHTS[name] for name in type_names])
    type_p /= type_p.sum()
    pos_outage = int(np.flatnonzero(type_names == AnomalyType.POS_OUTAGE)[0])
    location_level_capacity = n_locations * SEED_SPAN_DAYS
    if count * type_p[pos_outage] > location_level_capacity / 2:
        raise ValueError(
            f"{count} anomalies need more POS outages than {n_locations} locations x "
            f"{SEED_SPAN_DAYS} days hold; seed more locations"
        )
    product_p = np.exp(rng.normal(0.0, 1.0, n_products))
    product_p /= product_p.sum()
    location_p = np.exp(rng.normal(0.0, 0.5, n_locations))
    location_p /= location_p.sum()

    chosen = np.empty(0, dtype=np.int64)
    while len(chosen) < count:
        size = int((count - len(chosen)) * 1.05) + 16
        types = rng.choice(len(type_names), size=size, p=type_p)
        products = rng.choice(n_products, size=size, p=product_p)
        products[types == pos_outage] = n_products  # location-level: the "no SKU" slot
        locations = rng.choice(n_locations, size=size, p=location_p)
        ordinals = first_ordinal + rng.integers(0, SEED_SPAN_DAYS, size=size)
        keys = pack_keys(types, products, locations, ordinals)
        keys = np.concatenate([chosen, keys])
        _unique, first = np.unique(keys, return_index=True)
        keep = np.zeros(len(keys), dtype=bool)
        keep[first] = True  # first occurrence wins, in draw order
        keep &= ~np.isin(keys, taken_keys)
        chosen = keys[keep][:count]
    mask_day = (1 << DAY_BITS) - 1
    mask_location = (1 << LOCATION_BITS) - 1
    mask_product = (1 << PRODUCT_BITS) - 1
    return pd.DataFrame(
        {
            "type": chosen >> (PRODUCT_BITS + LOCATION_BITS + DAY_BITS),
            "product": (chosen >> (LOCATION_BITS + DAY_BITS)) & mask_product,
            "location": (chosen >> DAY_BITS) & mask_location,
            "ordinal": chosen & mask_day,
        }
    )


def seed_frame(
    *,
    rng: np.random.Generator,
    count: int,
    location_ids: np.ndarray,
    product_ids: np.ndarray,
    unit_prices: np.ndarray,
    user_ids: np.ndarray,
    as_of: dt.date,
    now: dt.datetime,
    taken_keys: np.ndarray,
) -> pd.DataFrame:
    """The rows to insert: one column per name of ``COLUMNS``, ordered by first detection.

    Pure (numpy/pandas, no database). ``location_ids``/``product_ids``/``user_ids`` are the
    primary keys to draw from, ``unit_prices`` (float, per SKU) scale the value at risk,
    ``taken_keys`` are packed keys (``pack_keys``) not to reuse. Dates are ``datetime64[D]``,
    timestamps ``datetime64[us]`` in UTC (``NaT`` for NULL), ``product_id`` and ``assignee_id``
    nullable ``Int64``, decimals rounded floats (NaN for NULL).
    """
    first_ordinal = as_of.toordinal() - SEED_SPAN_DAYS + 1
    keys = _draw_keys(
        rng=rng,
        count=count,
        n_locations=len(location_ids),
        n_products=len(product_ids),
        first_ordinal=first_ordinal,
        taken_keys=taken_keys,
    )
    n = len(keys)
    type_names = np.array(AnomalyType.values, dtype=object)
    types = type_names[keys["type"].to_numpy()]
    location_level = keys["product"].to_numpy() == len(product_ids)
    product_slot = np.where(location_level, 0, keys["product"].to_numpy())
    epoch = np.datetime64("0001-01-01", "D")
    start = epoch + (keys["ordinal"].to_numpy() - 1).astype("timedelta64[D]")
    as_of_day = np.datetime64(as_of, "D")

    # Durations: most conditions last days, a few weeks; never past as_of.
    duration = np.minimum(rng.geometric(0.18, n) - 1, 60).astype("timedelta64[D]")
    end = np.minimum(start + duration, as_of_day)
    # Found a day or three into the condition (the detectors need evidence), last seen on its
    # last day.
    lag = rng.integers(0, 4, n).astype("timedelta64[D]")
    first_detected = np.minimum(start + lag, end)
    last_detected = end

    severity = _choice(rng, SEVERITY_WEIGHTS, n)
    recent = (as_of_day - last_detected).astype(int) < RECENT_DAYS
    status = np.where(
        recent,
        _choice(rng, STATUS_WEIGHTS_RECENT, n),
        _choice(rng, STATUS_WEIGHTS_OLD, n),
    )
    price = unit_prices[product_slot]
    units = np.round(np.exp(rng.normal(2.5, 0.9, n)), 1)
    value_at_risk = np.round(np.where(location_level, units * 20.0, units * price), 2)
    expected = np.round(np.exp(rng.normal(1.5, 0.8, n)), 2)
    actual = np.round(
        np.where(
            types == AnomalyType.DEMAND_SPIKE, expected * rng.uniform(2.5, 8, n), expected * 0.1
        ),
        2,
    )
    score = np.round(rng.gamma(4.0, 1.2, n) + 2.0, 3)

    # Triage timestamps, all in UTC: detection runs early in the morning.
    morning = np.timedelta64(6, "h")
    created = (first_detected.astype("datetime64[us]") + morning) + rng.integers(0, 3600, n).astype(
        "timedelta64[s]"
    )
    last_seen = last_detected.astype("datetime64[us]") + morning
    now64 = np.datetime64(now.astimezone(dt.UTC).replace(tzinfo=None), "us")

    def hours(low: int, high: int) -> np.ndarray:
        return rng.integers(low * 3600, high * 3600, n).astype("timedelta64[s]")

    is_ = {name: status == name for name in AnomalyStatus.values}
    closed = is_[AnomalyStatus.RESOLVED] | is_[AnomalyStatus.DISMISSED]
    workable = ~closed
    # Acknowledged: always; closed and snoozed ones: often went through acknowledged first.
    was_acknowledged = is_[AnomalyStatus.ACKNOWLEDGED] | (
        (closed | is_[AnomalyStatus.SNOOZED]) & (rng.random(n) < 0.6)
    )
    acknowledged_at = np.where(
        was_acknowledged, np.minimum(created + hours(1, 30), now64), np.datetime64("NaT")
    )
    closed_at = np.where(
        closed,
        np.minimum(np.maximum(last_seen, created) + hours(2, 24 * 7), now64),
        np.datetime64("NaT"),
    )
    closed_at = np.where(
        closed & (closed_at < acknowledged_at), acknowledged_at, closed_at
    )  # NaT compares False
    regressed = is_[AnomalyStatus.OPEN] & (rng.random(n) < REGRESSED_SHARE)
    regressed_at = np.where(regressed, np.maximum(last_seen, created), np.datetime64("NaT"))
    assigned = was_acknowledged | (workable & (rng.random(n) < 0.15))
    assignee = np.where(assigned, user_ids[rng.integers(0, len(user_ids), n)], 0)
    snoozed = is_[AnomalyStatus.SNOOZED]
    snoozed_until = np.where(
        snoozed,
        as_of_day + rng.integers(1, 31, n).astype("timedelta64[D]"),
        np.datetime64("NaT"),
    )
    updated = np.fmax(np.fmax(last_seen, created), np.fmax(acknowledged_at, closed_at))
    updated = np.fmax(updated, regressed_at)

    frame = pd.DataFrame(
        {
            "anomaly_type": types,
            "severity": severity,
            "score": score,
            "expected_value": expected,
            "actual_value": actual,
            "value_at_risk": value_at_risk,
            "product_id": pd.array(
                np.where(location_level, 0, product_ids[product_slot]), dtype="Int64"
            ),
            "location_id": location_ids[keys["location"].to_numpy()],
            "start_date": start,
            "end_date": end,
            "first_detected_on": first_detected,
            "last_detected_on": last_detected,
            "status": status,
            "assignee_id": pd.array(assignee, dtype="Int64"),
            "created_at": created,
            "updated_at": updated,
            "acknowledged_at": acknowledged_at,
            "closed_at": closed_at,
            "dismiss_reason": np.where(
                is_[AnomalyStatus.DISMISSED], _choice(rng, DISMISS_REASON_WEIGHTS, n), ""
            ),
            "snoozed_until": snoozed_until.astype("datetime64[D]"),
            "snoozed_severity": np.where(snoozed, severity, ""),
            "snoozed_value_at_risk": np.where(snoozed, value_at_risk, np.nan),
            "regressed_at": regressed_at,
            "regression_count": np.where(regressed, rng.integers(1, 4, n), 0),
        }
    )
    frame.loc[location_level, "product_id"] = pd.NA
    frame.loc[~assigned, "assignee_id"] = pd.NA
    frame.loc[location_level, ["expected_value", "actual_value"]] = np.nan
    frame["explanation"] = _explanations(frame, units)
    frame["details"] = _details(frame, units, rng)
    frame = frame.sort_values(["first_detected_on", "location_id"], kind="stable")
    return frame.loc[:, list(COLUMNS)].reset_index(drop=True)


def _explanations(frame: pd.DataFrame, units: np.ndarray) -> list[str]:
    """Text of the length and shape the detectors write (about 120-200 characters)."""
    texts = []
    for anomaly_type, expected, actual, value, days, unit in zip(
        frame["anomaly_type"].to_numpy(),
        frame["expected_value"].to_numpy(),
        frame["actual_value"].to_numpy(),
        frame["value_at_risk"].to_numpy(),
        (frame["end_date"] - frame["start_date"]).dt.days.to_numpy() + 1,
        units,
        strict=True,
    ):
        if anomaly_type == AnomalyType.GHOST_STOCK:
            text = (
                f"No sales for {days} days although {expected:.1f} units/day were expected; "
                f"{unit:.0f} on hand (£{value:,.2f} at risk)."
            )
        elif anomaly_type == AnomalyType.POS_OUTAGE:
            text = (
                f"The store traded but sent no sales for {days} day(s); "
                f"about £{value:,.2f} of sales are missing from the data."
            )
        elif anomaly_type == AnomalyType.INVENTORY_DISCREPANCY:
            text = (
                f"Book stock moved by {unit:.0f} units more than sales and receipts explain "
                f"over {days} day(s) (£{value:,.2f} at risk)."
            )
        elif anomaly_type == AnomalyType.PRICE_ANOMALY:
            text = (
                f"Realised price {actual:.2f} against a regular {expected:.2f} for {days} "
                f"day(s), with no promotion on file (£{value:,.2f} at risk)."
            )
        else:
            text = (
                f"Sold {actual:.1f} units/day against {expected:.1f} expected for {days} "
                f"day(s) ({anomaly_type.replace('_', ' ')}; £{value:,.2f} at risk)."
            )
        texts.append(text)
    return texts


def _details(frame: pd.DataFrame, units: np.ndarray, rng: np.random.Generator) -> list[str]:
    """A detector-like ``details`` object of eight keys, as JSON text (formatted directly:
    ``json.dumps`` of a million dicts costs seconds)."""
    n = len(frame)
    z = np.round(rng.normal(4.0, 1.5, n), 3).tolist()
    probability = np.round(rng.uniform(0.9, 1.0, n), 4).tolist()
    rate = np.round(rng.gamma(2.0, 1.0, n), 3).tolist()
    units = units.tolist()
    return [
        f'{{"seeded": true, "window_days": 28, "z_score": {z[i]!r}, '
        f'"probability": {probability[i]!r}, "base_rate_per_day": {rate[i]!r}, '
        f'"dispersion": 1.2, "units": {units[i]!r}, "promotion_days": 0}}'
        for i in range(n)
    ]
