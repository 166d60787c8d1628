"""`python -m persona_engine kpis`: the documented JSON fields, the text table, and one-line
errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from persona_engine.cli import main
from persona_engine.store import open_store
from tests.test_kpis import build_tiny_shop

ROOT = Path(__file__).resolve().parents[1]

# The fields the README documents for --json, in their order.
DOCUMENTED_FIELDS = [
    "action_id", "starts_on", "window_days", "persona_id", "persona_name", "persona_nickname",
    "targeted", "metric", "units", "before", "after", "change", "change_low", "change_high",
    "relative_change", "relative_change_low", "relative_change_high", "p_value", "p_value_holm",
    "n_before", "n_after", "customers_before", "customers_after", "small_sample", "control",
    "control_persona_id", "control_before", "control_after", "control_change",
    "control_n_before", "control_n_after", "did", "did_low", "did_high", "did_relative",
    "did_relative_low", "did_relative_high", "did_p_value", "did_p_value_holm",
    "did_small_sample", "interval_method", "window_complete",
]


@pytest.fixture
def shop_file(tmp_path: Path) -> str:
    path = tmp_path / "shop.duckdb"
    store = open_store(path)
    build_tiny_shop(store.cursor())
    store.close()
    return str(path)


def test_json_output_lists_every_persona_and_metric(shop_file, capsys):
    assert main(["kpis", "--db", shop_file, "--action", "1", "--window-days", "7", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 6  # 2 personas x 3 default metrics
    assert list(rows[0]) == DOCUMENTED_FIELDS
    conv = next(r for r in rows if r["persona_id"] == 1 and r["metric"] == "conversion_rate")
    # Hand-computed in tests/test_kpis.py: 1/4 -> 3/5; control 2/4 -> 2/3.
    assert conv["targeted"] is True and conv["persona_name"] == "Frugal families"
    assert (conv["before"], conv["after"]) == (0.25, 0.6)
    assert conv["did"] == pytest.approx(0.35 - (2 / 3 - 0.5))
    assert (conv["n_before"], conv["n_after"], conv["units"]) == (4, 5, "sessions")
    assert conv["change_low"] < conv["change"] < conv["change_high"]
    # Undefined numbers are null, never 0.
    ret = next(r for r in rows if r["persona_id"] == 2 and r["metric"] == "retention_rate")
    assert ret["did"] is None and ret["control_before"] is None


def test_control_and_metrics_options(shop_file, capsys):
    args = ["kpis", "--db", shop_file, "--action", "1", "--window-days", "7", "--json",
            "--control", "2", "--metrics", "average_order_value,orders_per_customer"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["metric"] for r in rows} == {"average_order_value", "orders_per_customer"}
    assert {r["control"] for r in rows} == {"persona"}
    assert {r["control_persona_id"] for r in rows} == {2}


def test_text_table(shop_file, capsys):
    assert main(["kpis", "--db", shop_file, "--action", "1", "--window-days", "7"]) == 0
    out = capsys.readouterr().out
    assert 'Action 1 "Spring offer" from 2026-03-02: 7 days before vs after' in out
    # Rates print in percent, their changes in points; the targeted persona is starred.
    assert "* Frugal families" in out and "25.00% -> 60.00%" in out and "+35.00 pt" in out
    assert "small sample" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--window-days", "3"], "window length must be between 7 and 180 days; got 3"),
        (["--control", "1"], "persona 1 is targeted by this action"),
        (["--metrics", "bounce_rate"], "unknown metric 'bounce_rate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(shop_file, capsys, extra, message):
    assert main(["kpis", "--db", shop_file, "--action", "1", *extra]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_missing_database_and_action(tmp_path, shop_file, capsys):
    assert main(["kpis", "--db", str(tmp_path / "nope.duckdb"), "--action", "1"]) == 1
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "nope.duckdb").exists()  # nothing created by a typo
    assert main(["kpis", "--db", shop_file, "--action", "9"]) == 1
    assert "action 9 does not exist; existing actions: 1" in capsys.readouterr().err


def test_runs_as_a_module(shop_file):
    done = subprocess.run(
        [sys.executable, "-m", "persona_engine", "kpis", "--db", shop_file, "--action", "1",
         "--window-days", "7", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 6
