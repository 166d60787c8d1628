"""Every benchmark, in order, on one generated 1,000,000-customer shop (`make bench`).

    python benchmarks/run_all.py [--db /tmp/bench_1m.duckdb] [--customers 1000000] [--skip-import]

1. generate the shop (time, peak memory);      5. whole explorer page runs;
2. customer features and explorer queries;     6. impact table of the planted action;
3. clustering with --k auto;                   7. import of a 10,000,000-line file.
4. personas from that run;
Each step runs in its own process, so each peak memory figure is its own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def step(title: str, *args: str) -> None:
    print(f"\n=== {title}", flush=True)
    subprocess.run([PY, *args], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="/tmp/bench_1m.duckdb")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--skip-import", action="store_true")
    args = parser.parse_args()
    step("generate", "benchmarks/bench_generate.py", "--customers", str(args.customers), "--db", args.db)
    step("features and explorer", "benchmarks/bench_features.py", "--db", args.db)
    step("clustering", "benchmarks/bench_clustering.py", "--db", args.db, "--k", "auto")
    step("personas from the run", "-m", "persona_engine", "personas", "create-from-run", "--db", args.db)
    step("explorer page runs", "benchmarks/bench_explorer_page.py", "--db", args.db)
    step("impact table", "benchmarks/bench_kpis.py", "--db", args.db)
    if not args.skip_import:
        step("import 10M lines", "benchmarks/bench_import.py")


if __name__ == "__main__":
    main()
