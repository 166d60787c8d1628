"""Time and peak memory of generating the sample shop.

    python benchmarks/bench_generate.py [--customers 1000000] [--db /tmp/bench_shop.duckdb]

Prints wall time, rows per table and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persona_engine.store import open_store  # noqa: E402
from sample_data.generator import generate_shop  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db", default="/tmp/bench_shop.duckdb")
    args = parser.parse_args()
    db = Path(args.db)
    for suffix in ("", ".wal"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    store = open_store(db)
    summary = generate_shop(store.cursor(), n_customers=args.customers, seed=args.seed, progress=True)
    store.close()
    seconds = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"customers={summary.customers:,} orders={summary.orders:,} order_items={summary.order_items:,} "
          f"sessions={summary.sessions:,}")
    print(f"wall={seconds:.1f}s peak_rss={peak_gb:.2f}GB file={db.stat().st_size / 1024**3:.2f}GB")


if __name__ == "__main__":
    main()
