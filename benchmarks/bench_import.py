"""Import speed: a synthetic 10,000,000-line file in the Online Retail layout.

    .venv/bin/python benchmarks/bench_import.py [--lines N] [--keep DIR] [--no-features]

Writes the CSV with numpy and pyarrow into a temporary folder (shaped like the UCI file:
about 21 lines per invoice, 2 % cancellation lines, a quarter of the lines without
CustomerID, ids written as floats such as 17850.0, a few zero prices), then imports it in
a child process (`python -m persona_engine import ... --preset online-retail`, the path
users take) and prints the wall time and the child's peak resident memory.
Target on this machine: at most 60 s and 6 GB for 10,000,000 lines.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 60.0
TARGET_GB = 6.0
COUNTRIES = np.array(["United Kingdom"] * 9 + ["Germany", "France", "EIRE", "Spain", "Netherlands"])


def write_online_retail_csv(path: Path, lines: int, seed: int = 7) -> None:
    """A synthetic Online Retail file of `lines` data lines (header: the UCI spelling)."""
    rng = np.random.default_rng(seed)
    lines_per_invoice = rng.integers(1, 42, size=lines // 10 + 10)
    invoice_of_line = np.repeat(np.arange(lines_per_invoice.size), lines_per_invoice)[:lines]
    invoices = int(invoice_of_line[-1]) + 1
    cancelled = rng.random(invoices) < 0.02
    guest = rng.random(invoices) < 0.25
    customer = rng.integers(12000, 112000, size=invoices).astype(np.float64)
    numbers = (536365 + np.arange(invoices)).astype(str)
    invoice_no = np.where(cancelled, np.char.add("C", numbers), numbers)
    start = np.datetime64("2010-12-01T08:00", "s")
    seconds = np.sort(rng.integers(0, 373 * 86400, size=invoices)) // 60 * 60
    invoice_time = (start + seconds.astype("timedelta64[s]")).astype(str)
    stock = rng.integers(0, 4000, size=lines)
    stock_code = np.char.add("2", np.char.zfill(stock.astype(str), 4))
    quantity = rng.integers(1, 25, size=lines) * np.where(cancelled[invoice_of_line], -1, 1)
    price = np.round(0.5 + (stock % 97) / 9.7, 2)
    price[rng.random(lines) < 0.002] = 0.0
    customer_text = np.where(
        guest[invoice_of_line], "", np.char.mod("%.1f", customer[invoice_of_line])
    )
    table = pa.table({
        "InvoiceNo": pa.array(invoice_no[invoice_of_line]),
        "StockCode": pa.array(stock_code),
        "Description": pa.array(np.char.add("PRODUCT ", stock_code)),
        "Quantity": pa.array(quantity),
        "InvoiceDate": pa.array(invoice_time[invoice_of_line]),
        "UnitPrice": pa.array(price),
        "CustomerID": pa.array(customer_text),
        "Country": pa.array(COUNTRIES[(customer[invoice_of_line] % COUNTRIES.size).astype(int)]),
    })
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def run_import(csv_path: Path, db_path: Path, features: bool) -> dict[str, float]:
    """Import in a child process; wall seconds and the child's peak RSS in GB."""
    command = [sys.executable, "-m", "persona_engine", "import", "--db", str(db_path),
               "--preset", "online-retail", "--json", "--quiet"]
    if not features:
        command.append("--no-features")
    command.append(str(csv_path))
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stderr.strip()}")
    report = json.loads(done.stdout)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": seconds,
        "import_seconds": float(report["seconds"]),
        "peak_rss_gb": peak_kb / 1024 / 1024,
        "orders": float(report["rows_written"]["orders"]),
        "order_items": float(report["rows_written"]["order_items"]),
        "customers": float(report["rows_written"]["customers"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path, help="write the CSV and database here and keep them")
    parser.add_argument("--no-features", action="store_true", help="skip customer features")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        csv_path = folder / "online_retail_synthetic.csv"
        db_path = folder / "bench_import.duckdb"
        db_path.unlink(missing_ok=True)
        started = time.perf_counter()
        write_online_retail_csv(csv_path, args.lines)
        print(f"wrote {args.lines:,} lines ({csv_path.stat().st_size / 1e9:.2f} GB) in "
              f"{time.perf_counter() - started:.1f} s")
        result = run_import(csv_path, db_path, features=not args.no_features)
    ok = result["seconds"] <= TARGET_SECONDS and result["peak_rss_gb"] <= TARGET_GB
    print(
        f"imported {args.lines:,} lines -> {result['orders']:,.0f} orders, "
        f"{result['order_items']:,.0f} order items, {result['customers']:,.0f} customers\n"
        f"wall time {result['seconds']:.1f} s (import itself {result['import_seconds']:.1f} s), "
        f"peak RSS {result['peak_rss_gb']:.2f} GB; target <= {TARGET_SECONDS:.0f} s and "
        f"<= {TARGET_GB:.0f} GB: {'met' if ok else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
