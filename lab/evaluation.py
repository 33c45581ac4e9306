"""Evaluate the detectors on a simulated bundle against its ground truth (``truth.csv``).

The bundle is parsed and validated like an import (``inventory.importing.
bundle_parse``) but kept in memory: nothing is written to the database, so an evaluation never
disturbs the data ops staff triage. Each day of the window gets its own ``DetectionInput`` of
``history_days`` days ending that day (a walk-forward backfill that never sees the future) and
the same ``run_detectors`` the detection service calls; the findings are scored by
``lab.scoring``.

``method="baseline"`` runs the seed method instead (``lab.seed_method``), so both
can be reported in one table; ``method="oracle"`` runs ``lab.oracle`` (the detectors that know
the simulator's true parameters, read from the bundle's ``oracle.npz``) at ``ORACLE_ALPHA``.
``detection_compare`` reports the project's recall as a share of the oracle's at the same
false-alarm count, and ``set_evaluate`` loops over a declared scenario set (``lab.scenarios``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalies.detectors import REGISTRY
from anomalies.detectors.fdr import FDR_Q_DEFAULT
from anomalies.detectors.price_levels import price_points_from_sales
from anomalies.services.loading import HISTORY_DAYS, DetectionFrames
from anomalies.services.runs import findings_fdr_control, run_detectors
from inventory.importing import BundleError, bundle_parse
from lab import oracle, scoring
from lab import seed_method as baseline_detectors

DEFAULT_WINDOW_DAYS = 90
FAST_MOVER_UNITS_PER_DAY = 5.0
"""Ghost-stock delay is also reported for items selling at least this much a day (target ≤ 2)."""
RATE_LOOKBACK_DAYS = 28
METHODS = ("shelfwatch", "baseline", "oracle")
ORACLE_ALPHA = 1e-4
"""The oracle's own reporting threshold on each candidate's p-value (about one false test per
10,000 SKU-location-days per type before episodes merge); comparisons sweep it instead."""

Progress = Callable[[str], None]


class EvaluationError(ValueError):
    """The bundle, truth file, window or settings cannot be evaluated (message says why)."""


@dataclass
class EvaluationReport:
    """What ``detection_evaluate`` measured.

    ``table`` is ``anomalies.scoring.METRIC_COLUMNS`` per anomaly type plus ``overall``;
    ``episodes``/``truth`` are the annotated frames of ``scoring.Scored``; ``extras`` holds
    the ghost-stock delay by demand rate, POS-outage and closure side effects, and timing.
    """

    method: str
    start: date
    end: date
    n_series: int
    n_locations: int
    table: pd.DataFrame
    episodes: pd.DataFrame
    truth: pd.DataFrame
    extras: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    bands: pd.DataFrame | None = None
    """``oracle.band_table`` (per type and velocity band) when the bundle has ``oracle.npz``."""

    @property
    def window(self) -> scoring.Window:
        return scoring.Window(
            start=pd.Timestamp(self.start),
            end=pd.Timestamp(self.end),
            n_series=self.n_series,
            n_locations=self.n_locations,
        )

    @property
    def scored(self) -> scoring.Scored:
        return scoring.Scored(episodes=self.episodes, truth=self.truth, table=self.table)


class BundleData(DetectionFrames):
    """A parsed bundle with integer ids, able to build the ``DetectionInput`` of any day.

    ``DetectionFrames`` over the whole bundle (it cuts each day's input and grid out of them
    as a walk-forward backfill from the database does).
    """

    @property
    def first_date(self) -> date:
        return self.sales["date"].min().date()

    @property
    def last_date(self) -> date:
        return self.sales["date"].max().date()


def bundle_data_load(*, directory: Path) -> BundleData:
    """Parse the bundle in ``directory`` into in-memory frames with integer ids.

    Raises ``BundleError`` (as an import would) for invalid files.
    """
    frames = bundle_parse(directory=directory)
    products = frames["products.csv"].reset_index(drop=True)
    products.index = pd.RangeIndex(1, len(products) + 1, name="product_id")
    locations = frames["locations.csv"].reset_index(drop=True)
    locations.index = pd.RangeIndex(1, len(locations) + 1, name="location_id")
    product_id = pd.Series(products.index, index=products["sku"])
    location_id = pd.Series(locations.index, index=locations["code"])

    def ids(frame: pd.DataFrame, columns: list[str], optional_location: bool = False):
        out = pd.DataFrame(index=frame.index)
        if "sku" in frame.columns:
            out["product_id"] = frame["sku"].map(product_id).astype("int64")
        loc = frame["location"].map(location_id)
        out["location_id"] = loc.astype("Int64") if optional_location else loc.astype("int64")
        for column in columns:
            out[column] = frame[column]
        return out

    def by_date(frame: pd.DataFrame) -> pd.DataFrame:
        frame["date"] = frame["date"].astype("datetime64[ns]")
        return frame.sort_values("date", kind="stable").reset_index(drop=True)

    sales = ids(frames["sales.csv"], ["date", "units_sold", "units_returned", "unit_price"])
    sales = sales.astype({"units_sold": "int64", "units_returned": "int64", "unit_price": float})
    stock = None
    if "inventory.csv" in frames:
        stock = by_date(ids(frames["inventory.csv"], ["date", "on_hand"]).astype({"on_hand": int}))
    receipts = ids(frames.get("receipts.csv", _empty_facts("units")), ["date", "units"])
    promotions = frames.get("promotions.csv")
    if promotions is None or promotions.empty:
        promotions = pd.DataFrame(
            columns=["sku", "location", "start_date", "end_date", "discount_pct"]
        )
    promotions = ids(promotions, ["start_date", "end_date", "discount_pct"], True)
    calendar = frames.get("calendar.csv")
    if calendar is None or calendar.empty:
        calendar = pd.DataFrame(columns=["date", "location", "event", "is_closed"])
    calendar = ids(calendar, ["date", "event", "is_closed"], True).rename(columns={"event": "name"})
    sales = by_date(sales)
    promotions = promotions.astype(
        {"start_date": "datetime64[ns]", "end_date": "datetime64[ns]", "discount_pct": float}
    )
    return BundleData(
        products=products[["sku", "name", "category", "unit_price", "unit_cost"]].astype(
            {"unit_price": float, "unit_cost": float}
        ),
        locations=locations[["code", "name"]],
        sales=sales,
        stock=stock,
        receipts=by_date(receipts.astype({"units": "int64"})),
        promotions=promotions,
        calendar=calendar[["date", "location_id", "name", "is_closed"]].astype(
            {"date": "datetime64[ns]", "is_closed": bool}
        ),
        # As an import and the first detection run would store them (inventory.PricePoint).
        price_points=price_points_from_sales(sales, promotions),
    )


def _empty_facts(column: str) -> pd.DataFrame:
    return pd.DataFrame({"date": [], "sku": [], "location": [], column: []})


def truth_load(*, path: Path) -> pd.DataFrame:
    """Read ``truth.csv``: anomaly_type, sku ("" = location-level), location, start_date,
    end_date (datetime64), value_at_risk (float). Raises ``EvaluationError`` when unreadable."""
    required = ["anomaly_type", "sku", "location", "start_date", "end_date", "value_at_risk"]
    try:
        truth = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise EvaluationError(f"{path}: cannot read the truth file ({exc})") from exc
    missing = [c for c in required if c not in truth.columns]
    if missing:
        raise EvaluationError(f"{path}: missing column(s): {', '.join(missing)}")
    try:
        for column in ("start_date", "end_date"):
            truth[column] = pd.to_datetime(truth[column], format="%Y-%m-%d")
        truth["value_at_risk"] = truth["value_at_risk"].astype(float)
    except ValueError as exc:
        raise EvaluationError(f"{path}: {exc}") from exc
    return truth[required]


def effective_settings(
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Detector settings for an evaluation: module defaults with ``overrides`` applied.

    ``overrides`` maps detector → ``{"enabled": bool, "params": {...}}`` (either key
    optional). Raises ``EvaluationError`` for an unknown detector or parameter.
    """
    result = {
        name: {"enabled": spec.enabled_by_default, "params": dict(spec.default_params)}
        for name, spec in REGISTRY.items()
    }
    for name, change in (overrides or {}).items():
        if name not in result:
            raise EvaluationError(f"Unknown detector {name!r}; known: {', '.join(REGISTRY)}")
        unknown = set(change.get("params", {})) - set(result[name]["params"])
        if unknown:
            raise EvaluationError(f"{name}: unknown parameter(s) {', '.join(sorted(unknown))}")
        result[name]["params"].update(change.get("params", {}))
        if "enabled" in change:
            result[name]["enabled"] = bool(change["enabled"])
    return result


def detection_evaluate(
    *,
    bundle: Path,
    truth_path: Path,
    start: date | None = None,
    end: date | None = None,
    method: str = "shelfwatch",
    overrides: dict[str, dict[str, Any]] | None = None,
    history_days: int = HISTORY_DAYS,
    progress: Progress | None = None,
    oracle_alpha: float = ORACLE_ALPHA,
    candidates: pd.DataFrame | None = None,
    fdr_q: float | None = FDR_Q_DEFAULT,
) -> EvaluationReport:
    """Walk-forward detection over ``[start, end]`` on ``bundle``, scored against the truth.

    Defaults: ``end`` = last sales date, ``start`` = ``end`` − 89 days. ``method`` is
    ``"shelfwatch"`` (the registered detectors with ``effective_settings(overrides)``),
    ``"baseline"`` (the seed method) or ``"oracle"`` (``lab.oracle`` at ``oracle_alpha``;
    ``candidates`` reuses ``oracle.oracle_candidates`` already computed); ``fdr_q`` is the
    false-discovery level applied per store and day as a detection run applies it (None:
    off). When the bundle has ``oracle.npz`` the report's ``bands`` table splits the figures
    by velocity band. Raises ``EvaluationError`` (bad window, method, settings, truth, no
    ``oracle.npz`` for the oracle) or ``BundleError`` (invalid bundle).
    """
    if method not in METHODS:
        raise EvaluationError(f"Unknown method {method!r}; use one of {', '.join(METHODS)}.")
    report = progress or (lambda _message: None)
    started = time.perf_counter()
    report(f"Reading {bundle}")
    data = bundle_data_load(directory=Path(bundle))
    truth = truth_load(path=Path(truth_path))
    end = end or data.last_date
    start = start or end - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    if end < start:
        raise EvaluationError(f"The window ends ({end}) before it starts ({start}).")
    if start < data.first_date or end > data.last_date:
        raise EvaluationError(
            f"The window {start}..{end} is outside the bundle's sales dates "
            f"{data.first_date}..{data.last_date}."
        )
    settings = effective_settings(overrides)
    names = [name for name in REGISTRY if settings[name]["enabled"]]
    loaded = time.perf_counter() - started

    world = _world(Path(bundle)) if (Path(bundle) / oracle.ORACLE_FILE).exists() else None
    if method == "oracle" and world is None:
        raise EvaluationError(f"{bundle}: no {oracle.ORACLE_FILE}; the oracle needs one.")
    frames: list[pd.DataFrame] = []
    n_days = (end - start).days + 1
    detect_started = time.perf_counter()
    if method == "oracle":
        if candidates is None:
            candidates = oracle.oracle_candidates(world)
        chosen = oracle.oracle_at(candidates, oracle_alpha)
        frames.append(chosen[chosen["as_of"].between(pd.Timestamp(start), pd.Timestamp(end))])
    for i in range(0 if method == "oracle" else n_days):
        as_of = start + timedelta(days=i)
        data_today = data.detection_input(as_of=as_of, history_days=history_days)
        if method == "baseline":
            findings = baseline_detectors.detect_baseline(data_today)
        else:
            findings, counts, _notes = run_detectors(data_today, names, settings)
            # As a detection run does: Benjamini-Hochberg per store at ``fdr_q``.
            findings, _counts = findings_fdr_control(findings, counts, fdr_q=fdr_q)
        if len(findings):
            frames.append(_labelled(findings, data, as_of))
        if (i + 1) % 10 == 0 or i + 1 == n_days:
            rows = sum(len(f) for f in frames)
            report(f"  {as_of}: day {i + 1}/{n_days}, {rows:,} findings so far")
    detect_seconds = time.perf_counter() - detect_started
    findings = pd.concat(frames, ignore_index=True) if frames else None
    episodes = (
        scoring.findings_episodes(findings)
        if findings is not None
        else scoring.findings_episodes(pd.DataFrame(columns=[*scoring.EPISODE_COLUMNS, "as_of"]))
    )
    n_series = len(data.products) * len(data.locations)
    window = scoring.Window(
        start=pd.Timestamp(start),
        end=pd.Timestamp(end),
        n_series=n_series,
        n_locations=len(data.locations),
    )
    scored = scoring.score(episodes, _with_rate(truth, data), window)
    extras: dict[str, Any] = scoring.delay_by_rate(
        scored, kind="ghost_stock", threshold=FAST_MOVER_UNITS_PER_DAY
    )
    outages = scored.truth[scored.truth["anomaly_type"] == "pos_outage"]
    outage_days = pd.DataFrame({"location": outages["location"], "date": outages["start_date"]})
    per_outage = scoring.collateral_findings(scored, outage_days)
    extras["outages"] = len(outage_days)
    extras["outage_sku_findings_max"] = int(per_outage.max()) if per_outage.size else 0
    extras["outage_sku_findings_mean"] = float(per_outage.mean()) if per_outage.size else 0.0
    closed = _closure_days(data, start, end)
    per_closure = scoring.collateral_findings(scored, closed)
    extras["closure_days"] = len(closed)
    extras["closure_findings"] = int(per_closure.sum())
    extras["load_seconds"] = round(loaded, 2)
    extras["detect_seconds"] = round(detect_seconds, 2)
    extras["seconds_per_day"] = round(detect_seconds / n_days, 3)
    bands = oracle.band_table(scored, oracle.band_map(world), window) if world else None
    return EvaluationReport(
        method=method,
        start=start,
        end=end,
        n_series=n_series,
        n_locations=len(data.locations),
        table=scored.table,
        episodes=scored.episodes,
        truth=scored.truth,
        extras=extras,
        settings=settings if method == "shelfwatch" else {},
        bands=bands,
    )


def _world(directory: Path) -> oracle.OracleWorld:
    try:
        return oracle.world_load(directory=directory)
    except (OSError, KeyError, ValueError) as exc:
        raise EvaluationError(f"{directory}: cannot read {oracle.ORACLE_FILE} ({exc})") from exc


@dataclass
class Comparison:
    """The project against the oracle on one bundle.

    ``table``: ``oracle.compare_to_oracle`` (per type: the project's recall and false alarms,
    the oracle's threshold, recall and false alarms at that threshold, recall ratio);
    ``curves``: per type the oracle's sweep (alpha, events, found, false_alarms, ...).
    """

    project: EvaluationReport
    oracle: EvaluationReport
    table: pd.DataFrame
    curves: dict[str, pd.DataFrame]


def detection_compare(
    *,
    bundle: Path,
    truth_path: Path,
    start: date | None = None,
    end: date | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    project: EvaluationReport | None = None,
    progress: Progress | None = None,
) -> Comparison:
    """Evaluate the project's detectors (or take ``project``) and the oracle on ``bundle``,
    and match the oracle's threshold to the project's false alarms per type.

    Raises as ``detection_evaluate``.
    """
    if project is None:
        project = detection_evaluate(
            bundle=bundle,
            truth_path=truth_path,
            start=start,
            end=end,
            overrides=overrides,
            progress=progress,
        )
    world = _world(Path(bundle))
    candidates = oracle.oracle_candidates(world)
    own = detection_evaluate(
        bundle=bundle,
        truth_path=truth_path,
        start=project.start,
        end=project.end,
        method="oracle",
        candidates=candidates,
    )
    truth = truth_load(path=Path(truth_path))
    window = project.window
    in_window = candidates[candidates["as_of"].between(window.start, window.end)]
    curves = {kind: oracle.sweep(in_window, truth, window, kind) for kind in oracle.ORACLE_TYPES}
    table = oracle.compare_to_oracle(project.scored, curves)
    return Comparison(project=project, oracle=own, table=table, curves=curves)


def _labelled(findings: pd.DataFrame, data: BundleData, as_of: date) -> pd.DataFrame:
    """Findings with SKU and location codes (what truth.csv uses) and the run's date."""
    product = findings["product_id"]
    sku = product.map(data.products["sku"]).astype(object).where(product.notna(), "")
    out = pd.DataFrame(
        {
            "anomaly_type": findings["anomaly_type"].to_numpy(),
            "sku": sku.to_numpy(),
            "location": findings["location_id"].map(data.locations["code"]).to_numpy(),
            "start_date": findings["start_date"].to_numpy(),
            "end_date": findings["end_date"].to_numpy(),
            "as_of": pd.Timestamp(as_of),
            "value_at_risk": findings["value_at_risk"].to_numpy(),
        }
    )
    out["parent"] = findings["parent"].to_numpy() if "parent" in findings.columns else -1
    return out


def _with_rate(truth: pd.DataFrame, data: BundleData) -> pd.DataFrame:
    """Add ``rate``: mean units/day of the event's series over the 28 days before its start."""
    sales = data.sales.assign(
        sku=data.sales["product_id"].map(data.products["sku"]),
        location=data.sales["location_id"].map(data.locations["code"]),
    )
    rates = np.zeros(len(truth))
    keyed = sales.set_index(["sku", "location"]).sort_index()
    for i, row in enumerate(truth.itertuples(index=False)):
        if not row.sku or (row.sku, row.location) not in keyed.index:
            continue
        series = keyed.loc[(row.sku, row.location)]
        lo = row.start_date - pd.Timedelta(days=RATE_LOOKBACK_DAYS)
        recent = series[(series["date"] >= lo) & (series["date"] < row.start_date)]
        rates[i] = recent["units_sold"].sum() / RATE_LOOKBACK_DAYS
    return truth.assign(rate=rates)


def _closure_days(data: BundleData, start: date, end: date) -> pd.DataFrame:
    """(location code, date) of every calendar closure in the window."""
    cal = data.calendar[data.calendar["is_closed"]]
    cal = cal[cal["date"].between(pd.Timestamp(start), pd.Timestamp(end))]
    rows = []
    codes = data.locations["code"]
    for day, loc in zip(cal["date"], cal["location_id"], strict=True):
        targets = codes.to_numpy() if pd.isna(loc) else [codes[int(loc)]]
        rows.extend((code, day) for code in targets)
    return pd.DataFrame(rows, columns=["location", "date"])


POOLED_COLUMNS = [
    "events",
    "found",
    "recall",
    "episodes",
    "precision",
    "f1",
    "delay_median",
    "false_alarms_per_1k",
]


def pooled_table(reports: list[EvaluationReport]) -> pd.DataFrame:
    """Figures per anomaly type (and ``overall``) over several reports of one method (e.g. the
    seeds of a scenario): events, hits, episodes and false alarms summed, delays pooled,
    false alarms per 1,000 SKU-location-days over the summed SKU-location-days.
    Columns ``POOLED_COLUMNS``."""
    truth = pd.concat([r.truth for r in reports], ignore_index=True)
    episodes = pd.concat([r.episodes for r in reports], ignore_index=True)
    sku_days = sum(r.n_series * r.window.days for r in reports) / 1000.0
    kinds = sorted(set(truth["anomaly_type"]) | set(episodes["anomaly_type"]))
    rows = {}
    for kind in [*kinds, "overall"]:
        ev = truth if kind == "overall" else truth[truth["anomaly_type"] == kind]
        ep = episodes if kind == "overall" else episodes[episodes["anomaly_type"] == kind]
        n_ev, n_found = len(ev), int(ev["found"].sum())
        n_ep, n_true = len(ep), int(ep["matched"].sum())
        recall = n_found / n_ev if n_ev else np.nan
        precision = n_true / n_ep if n_ep else np.nan
        f1 = (
            2 * precision * recall / (precision + recall)
            if n_ev and n_ep and precision + recall > 0
            else np.nan
        )
        delays = ev.loc[ev["found"], "delay"]
        rows[kind] = [
            n_ev,
            n_found,
            recall,
            n_ep,
            precision,
            f1,
            float(delays.median()) if len(delays) else np.nan,
            (n_ep - n_true) / sku_days if sku_days else np.nan,
        ]
    return pd.DataFrame.from_dict(rows, orient="index", columns=POOLED_COLUMNS)


def pooled_bands(reports: list[EvaluationReport], worlds: list[pd.Series]) -> pd.DataFrame:
    """``oracle.band_table`` over several reports; ``worlds`` are their ``oracle.band_map``s.
    Series of different bundles are kept apart by prefixing the location with the bundle's
    position."""

    def tagged(frame: pd.DataFrame, i: int) -> pd.DataFrame:
        return frame.assign(location=f"{i}:" + frame["location"].astype(str))

    truth = pd.concat([tagged(r.truth, i) for i, r in enumerate(reports)], ignore_index=True)
    episodes = pd.concat([tagged(r.episodes, i) for i, r in enumerate(reports)], ignore_index=True)
    band_of = pd.concat(
        [pd.Series(b.to_numpy(), index=f"{i}:" + b.index) for i, b in enumerate(worlds)]
    )
    first = reports[0].window
    window = scoring.Window(
        start=first.start, end=first.end, n_series=len(band_of), n_locations=first.n_locations
    )
    scored = scoring.Scored(episodes=episodes, truth=truth, table=pd.DataFrame())
    return oracle.band_table(scored, band_of, window)


@dataclass
class ScenarioResult:
    """One scenario of a set, pooled over its seeds.

    ``tables``: method → ``pooled_table``; ``comparison``: ``oracle.pooled_comparison`` of the
    project against the oracle; ``bands``: method → ``pooled_bands``.
    """

    scenario: str
    seeds: tuple[int, ...]
    size: dict[str, int]
    tables: dict[str, pd.DataFrame]
    comparison: pd.DataFrame
    bands: dict[str, pd.DataFrame]
    seconds: float = 0.0


def set_evaluate(
    *,
    set_name: str,
    size: str = "issue",
    workdir: Path,
    baseline: bool = True,
    overrides: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
) -> list[ScenarioResult]:
    """Generate and evaluate every (scenario, seed) of a declared set (``lab.scenarios.SETS``).

    Bundles of size ``lab.scenarios.SIZES[size]`` are written under ``workdir``; each is
    evaluated with the project's detectors (``overrides`` applied), the oracle, the comparison
    at equal false alarms and (``baseline``) the seed method. Results are pooled per scenario
    over its seeds, in the set's order. Raises ``EvaluationError`` for an unknown set or size.
    """
    from lab.scenarios import SETS, SIZES, scenario_get
    from lab.simulator import generate_bundle

    if set_name not in SETS:
        raise EvaluationError(f"Unknown set {set_name!r}; use one of {', '.join(SETS)}.")
    if size not in SIZES:
        raise EvaluationError(f"Unknown size {size!r}; use one of {', '.join(SIZES)}.")
    report = progress or (lambda _message: None)
    by_scenario: dict[str, list[int]] = {}
    for name, seed in SETS[set_name]:
        by_scenario.setdefault(name, []).append(seed)
    results = []
    for name, seeds in by_scenario.items():
        started = time.perf_counter()
        runs: dict[str, list[EvaluationReport]] = {"shelfwatch": [], "oracle": [], "baseline": []}
        parts, bands_of = [], []
        for seed in seeds:
            folder = Path(workdir) / f"{name}-{seed}-{size}"
            report(f"{name} seed {seed}: generating {folder}")
            generate_bundle(out_dir=folder, seed=seed, scenario=scenario_get(name), **SIZES[size])
            truth_path = folder / "truth.csv"
            report(f"{name} seed {seed}: project detectors")
            compared = detection_compare(bundle=folder, truth_path=truth_path, overrides=overrides)
            runs["shelfwatch"].append(compared.project)
            runs["oracle"].append(compared.oracle)
            parts.append((compared.project.scored, compared.curves))
            bands_of.append(oracle.band_map(_world(folder)))
            if baseline:
                report(f"{name} seed {seed}: seed method")
                runs["baseline"].append(
                    detection_evaluate(bundle=folder, truth_path=truth_path, method="baseline")
                )
        methods = [m for m, r in runs.items() if r]
        results.append(
            ScenarioResult(
                scenario=name,
                seeds=tuple(seeds),
                size=dict(SIZES[size]),
                tables={m: pooled_table(runs[m]) for m in methods},
                comparison=oracle.pooled_comparison(parts),
                bands={m: pooled_bands(runs[m], bands_of) for m in methods},
                seconds=time.perf_counter() - started,
            )
        )
    return results


__all__ = [
    "BundleData",
    "BundleError",
    "Comparison",
    "EvaluationError",
    "EvaluationReport",
    "bundle_data_load",
    "detection_compare",
    "detection_evaluate",
    "effective_settings",
    "pooled_table",
    "set_evaluate",
    "truth_load",
]
