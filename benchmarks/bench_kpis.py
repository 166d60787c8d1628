"""Time the impact table of one action (kpis.before_after) on a large shop.

    python benchmarks/bench_kpis.py --db data/big.duckdb [--action ID] [--repeat 3]
    python benchmarks/bench_kpis.py --synthetic data/bench_kpis.duckdb

With --db, the shop is an existing database (for example one made by
`python -m persona_engine generate --db X --customers 1000000` plus personas); the action
defaults to the first one. With --synthetic, a shop of 1,000,000 customers, about
50 million sessions and 10 million orders over two years, 8 personas and one action is
built directly in DuckDB (range() + random(), rows in random time order, the worst case
for the window filters) unless the file already holds it. Prints one line per stage and
the total time of before_after, which must stay within 3 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from persona_engine import kpis  # noqa: E402
from persona_engine.store import fetch_value, open_store  # noqa: E402

BUDGET_SECONDS = 3.0


def build_synthetic(path: str, customers: int, sessions: int, seed: float = 0.42) -> None:
    """Fill an empty database with a synthetic shop (no-op when customers already exist)."""
    store = open_store(path)
    cur = store.cursor()
    try:
        if fetch_value(cur, "SELECT count(*) FROM customers"):
            print(f"{path} already holds a shop; reusing it")
            return
        started = time.perf_counter()
        cur.execute("SELECT setseed(?)", [seed])
        cur.execute(
            "INSERT INTO customers (customer_id, created_at, consent_analytics) "
            "SELECT i, TIMESTAMP '2024-01-01', random() < 0.9 FROM range(?) AS t(i)",
            [customers],
        )
        # One session in five has an order; 5% of sessions are anonymous.
        cur.execute(
            """
            INSERT INTO sessions (session_id, customer_id, started_at, order_id)
            SELECT i,
                   CASE WHEN random() < 0.05 THEN NULL ELSE (hash(i) % ?)::BIGINT END,
                   TIMESTAMP '2024-10-01' + to_microseconds((random() * 730 * 86400e6)::BIGINT),
                   CASE WHEN i % 5 = 0 THEN i // 5 END
            FROM range(?) AS t(i)
            """,
            [customers, sessions],
        )
        cur.execute(
            """
            INSERT INTO orders (order_id, customer_id, ordered_at, amount, status)
            SELECT order_id, customer_id, started_at + INTERVAL 10 MINUTE, 20 + random() * 100,
                   CASE WHEN random() < 0.95 THEN 'completed' ELSE 'cancelled' END
            FROM sessions WHERE order_id IS NOT NULL
            """
        )
        cur.execute(
            "INSERT INTO personas (persona_id, name) "
            "SELECT i, 'Persona ' || i FROM range(1, 9) AS t(i)"
        )
        # 95% of customers belong to one of 8 personas.
        cur.execute(
            "INSERT INTO persona_members (persona_id, customer_id, run_id) "
            "SELECT (customer_id % 8) + 1, customer_id, 1 FROM customers "
            "WHERE hash(customer_id) % 20 <> 0"
        )
        cur.execute(
            "INSERT INTO actions (name, persona_ids, starts_on, channel) "
            "VALUES ('Benchmark action', [3], DATE '2026-03-02', 'email')"
        )
        cur.execute("CHECKPOINT")
        print(f"built the synthetic shop in {time.perf_counter() - started:.1f} s")
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", help="existing shop database")
    source.add_argument("--synthetic", metavar="PATH", help="build (or reuse) a synthetic shop here")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=50_000_000)
    parser.add_argument("--action", type=int, help="action id (default: the first one)")
    parser.add_argument("--window-days", type=int, default=kpis.DEFAULT_WINDOW_DAYS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    path = args.db or args.synthetic
    if args.synthetic:
        build_synthetic(path, args.customers, args.sessions)
    store = open_store(path, read_only=True)
    cur = store.cursor()
    try:
        counts = {
            table: fetch_value(cur, f"SELECT count(*) FROM {table}")  # noqa: S608 - constants
            for table in ("customers", "orders", "sessions", "persona_members")
        }
        print(", ".join(f"{n:,} {t}" for t, n in counts.items()))
        action_id = args.action or fetch_value(cur, "SELECT min(action_id) FROM actions")
        windows = kpis.ImpactWindows(kpis.get_action(cur, action_id).starts_on, args.window_days)

        started = time.perf_counter()
        sums = kpis.customer_window_sums(cur, windows)
        print(f"per-customer sums: {time.perf_counter() - started:.2f} s for {len(sums):,} customers")

        timings, cpu = [], []
        for _ in range(args.repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            rows = kpis.before_after(cur, action_id, args.window_days)
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        best, worst = min(timings), max(timings)
        # CPU time of all the process's threads: on a busy shared machine the wall time
        # says more about the neighbours than about this code; on an idle 2-core machine
        # the wall time lies between half the CPU time and the CPU time.
        print(
            f"before_after: {len(rows)} rows, wall best {best:.2f} s, worst {worst:.2f} s; "
            f"CPU best {min(cpu):.2f} s over {args.repeat} runs (budget {BUDGET_SECONDS:.0f} s); "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        for row in rows[:3]:
            print(
                f"  persona {row.persona_id} {row.metric}: {row.before} -> {row.after}, "
                f"DiD {row.did} [{row.did_low}, {row.did_high}]"
            )
        return 0 if best <= BUDGET_SECONDS else 1
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
