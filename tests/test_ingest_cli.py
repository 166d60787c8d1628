"""`python -m persona_engine import`: short report on success, one line and exit 1 on rejection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from persona_engine.cli import main
from persona_engine.store import open_store
from tests.fixtures.ingest.helpers import db_fingerprint, fixture

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = fixture("online_retail_sample.csv")


def _fingerprint(db: Path) -> dict[str, tuple[int, str]]:
    store = open_store(db)
    try:
        return db_fingerprint(store.cursor())
    finally:
        store.close()


def test_import_prints_a_short_report(tmp_path, capsys):
    db = tmp_path / "shop.duckdb"
    code = main(["import", "--db", str(db), "--preset", "online-retail", "--quiet",
                 "--no-features", str(SAMPLE)])
    out = capsys.readouterr().out
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("Imported 36 rows from 1 source(s) with preset online-retail in ")
    assert first.endswith(": 9 customers, 30 products, 11 orders, 31 order_items.")
    assert "Consent declared: all customers consented to analytics" in out
    assert ("Rule: cancellation invoices (number starting with C) imported as cancelled orders, "
            "kept out of revenue: 3") in out


def test_import_json_and_check(tmp_path, capsys):
    db = tmp_path / "shop.duckdb"
    assert main(["import", "--db", str(db), "--preset", "generic", "--quiet", "--json",
                 "--mapping", str(fixture("transactions_fr_mapping.json")), "--no-features",
                 str(fixture("transactions_fr.csv"))]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["committed"] is True and report["rows_written"]["orders"] == 7
    before = _fingerprint(db)
    assert main(["import", "--db", str(db), "--preset", "online-retail", "--quiet", "--check",
                 str(SAMPLE)]) == 0
    assert capsys.readouterr().out.startswith("Would import 36 rows")
    assert _fingerprint(db) == before


def test_rejection_is_one_line_exit_1_and_changes_nothing(tmp_path, capsys):
    db = tmp_path / "shop.duckdb"
    main(["import", "--db", str(db), "--preset", "online-retail", "--quiet", "--no-features",
          str(SAMPLE)])
    capsys.readouterr()
    before = _fingerprint(db)
    bad = tmp_path / "orders.csv"
    lines = SAMPLE.read_text().splitlines()
    lines[5] = lines[5].replace("2010-12-01 08:26:00", "31/31/2011")
    bad.write_text("\n".join(lines) + "\n")
    code = main(["import", "--db", str(db), "--preset", "online-retail", "--quiet", str(bad)])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "error: orders.csv, column 'InvoiceDate': 1 value is not a date, e.g. line 6: "
        "'31/31/2011'; expected YYYY-MM-DD HH:MM or M/D/YYYY H:MM; fix the file, or choose to "
        "skip bad rows to import the rest\n"
    )
    assert _fingerprint(db) == before
    # --skip-bad-rows imports the 35 other lines.
    assert main(["import", "--db", str(db), "--preset", "online-retail", "--quiet",
                 "--skip-bad-rows", "--no-features", str(bad)]) == 0
    assert "1 bad row was left out." in capsys.readouterr().out


def test_module_entry_point_with_progress_on_stderr(tmp_path):
    db = tmp_path / "shop.duckdb"
    done = subprocess.run(
        [sys.executable, "-m", "persona_engine", "import", "--db", str(db), "--preset", "shopify",
         "--pseudonymise", str(fixture("shopify_orders_export.csv"))],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Imported 15 rows from 1 source(s) with preset shopify")
    assert "customer features: computed for 5 customers" in done.stdout
    assert "read shopify_orders_export.csv: 15 rows" in done.stderr  # the tqdm bar
