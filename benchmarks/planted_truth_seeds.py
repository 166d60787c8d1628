"""Planted truth on clustered personas, over several seeds (issue 7, section 3).

For each seed: generate the sample shop (20,000 customers), compute customer features,
cluster them (k = 5), create personas from the run, point the planted action at the
personas made mostly of its target archetype, and compare before_after's
difference-in-differences with the planted effect (kpis.planted_truth_check).

    .venv/bin/python benchmarks/planted_truth_seeds.py [--seeds 1 2 3 4 5] [--customers 20000]

Prints one line per persona x metric and a verdict per seed: the targeted persona's
relative DiD interval must contain the planted effect (as the persona's archetype mix
carries it) and exclude 0; at most one of the untargeted personas' intervals may exclude 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persona_engine.store import open_store  # noqa: E402
from tests.test_planted_truth_clusters import clustered_check, verdict  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()
    failures = 0
    pd.set_option("display.width", 200)
    for seed in args.seeds:
        store = open_store(":memory:")
        check, times = clustered_check(store.cursor(), seed, args.customers)
        store.close()
        ok, reason = verdict(check)
        failures += not ok
        shown = check.assign(
            share=check["archetype_share"].map("{:.0%}".format),
            expected=check["expected_did_relative"].map("{:+.1%}".format),
            did=check["did_relative"].map("{:+.1%}".format),
            interval=[f"[{lo:+.1%}, {hi:+.1%}]" for lo, hi in zip(check["did_relative_low"], check["did_relative_high"], strict=True)],
        )[["persona_id", "archetype", "share", "targeted", "metric", "expected", "did", "interval",
           "covers_expected", "excludes_zero"]]
        print(f"\n=== seed {seed}: {'PASS' if ok else 'FAIL'} ({reason}); "
              + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
        print(shown.to_string(index=False))
    print(f"\n{len(args.seeds) - failures} of {len(args.seeds)} seeds pass")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
