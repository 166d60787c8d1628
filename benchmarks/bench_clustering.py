"""Time and peak memory of one clustering run, step by step.

    python -m persona_engine generate --db /tmp/c1m.duckdb --customers 1000000   # once, ~2.5 min
    python benchmarks/bench_clustering.py [--db /tmp/c1m.duckdb] [--k auto] [--seed 0]

The shop must have its customer features (generate computes them). Prints the time of each
step, the total, the process's peak resident memory, and - on a generated shop - the
adjusted Rand index of the clusters against the planted archetypes.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.metrics import adjusted_rand_score  # noqa: E402

from persona_engine.clustering import cluster_customers  # noqa: E402
from persona_engine.store import fetch_df, open_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="/tmp/c1m.duckdb")
    parser.add_argument("--k", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="auto")
    args = parser.parse_args()
    store = open_store(args.db)
    cur = store.cursor()
    marks = [time.perf_counter()]

    def progress(done: int, total: int, step: str) -> None:
        marks.append(time.perf_counter())
        print(f"  {step:<34} {marks[-1] - marks[-2]:6.1f} s", flush=True)

    run = cluster_customers(cur, k=args.k, seed=args.seed, method=args.method, progress=progress)
    seconds = marks[-1] - marks[0]
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"customers={run.n_customers:,} k={run.k} method={run.method} silhouette={run.silhouette:.3f} "
          f"stability={run.stability:.3f}")
    print(f"wall={seconds:.1f}s peak_rss={peak_gb:.2f}GB")
    truth = fetch_df(cur, "SELECT a.cluster, t.archetype FROM cluster_assignments a"
                          " JOIN sample_truth t USING (customer_id) WHERE a.run_id = ?", [run.run_id])
    if not truth.empty:
        print(f"adjusted_rand_index={adjusted_rand_score(truth['archetype'], truth['cluster']):.3f}")
    store.close()


if __name__ == "__main__":
    main()
