"""The evaluate_detection command: its table, JSON output and clear errors (no DB writes)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from anomalies.models import Anomaly
from inventory.models import DailySales
from lab.simulator import generate_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval") / "bundle"
    generate_bundle(out_dir=folder, seed=11, n_locations=2, n_skus=40, n_days=120)
    return folder


@pytest.mark.django_db
def test_prints_the_table_and_writes_json_without_touching_the_database(bundle, tmp_path):
    out = StringIO()
    target = tmp_path / "result.json"

    call_command(
        "evaluate_detection",
        str(bundle),
        str(bundle / "truth.csv"),
        "--from",
        "2026-10-02",
        "--to",
        "2026-10-31",
        "--set",
        "demand_spike.spike_z=5",
        "--json",
        str(target),
        stdout=out,
    )

    text = out.getvalue()
    assert (
        "Method shelfwatch: 2026-10-02 .. 2026-10-31 (30 days), 2 locations, 80 SKU-locations"
        in text
    )
    assert "ghost_stock" in text and "overall" in text
    result = json.loads(target.read_text())
    assert result["settings"]["demand_spike"]["params"]["spike_z"] == 5
    assert result["settings"]["ml_detected"]["enabled"] is False
    assert set(result["table"]["overall"]) >= {"recall", "precision", "delay_median"}
    assert not Anomaly.objects.exists() and not DailySales.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-10-31", "--to", "2026-10-01"], "ends (2026-10-01) before it starts"),
        (["--from", "2020-01-01"], "outside the bundle's sales dates"),
        (["--set", "ghost_stock.no_such=1"], "ghost_stock: unknown parameter(s) no_such"),
        (["--set", "nonsense"], "expected detector.param=value"),
    ],
)
def test_bad_arguments_are_clear_errors(bundle, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("evaluate_detection", str(bundle), str(bundle / "truth.csv"), *args)


def test_an_invalid_bundle_lists_its_problems(tmp_path):
    (tmp_path / "products.csv").write_text("sku,name\nA,Apple\n")

    with pytest.raises(CommandError, match="Invalid bundle") as raised:
        call_command("evaluate_detection", str(tmp_path), str(tmp_path / "truth.csv"))

    assert "locations.csv: required file is missing" in str(raised.value)
    assert "sales.csv: required file is missing" in str(raised.value)
