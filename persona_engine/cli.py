"""`python -m persona_engine ...`: the command line that tests and automation rely on.

Every command exits 0 on success and 1 with a one-line human message on bad input
(any PersonaStudioError); `--json` output is documented in the README.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from persona_engine.errors import PersonaStudioError

Handler = Callable[[argparse.Namespace], int]


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def _cmd_generate(args: argparse.Namespace) -> int:
    from persona_engine.store import open_store

    store = open_store(args.db)  # first, so a locked file is reported before any work
    from sample_data.generator import generate_shop

    try:
        summary = generate_shop(
            store.cursor(),
            n_customers=args.customers,
            seed=args.seed,
            locale=args.locale,
            progress=not args.quiet,
        )
    finally:
        store.close()
    print(
        f"Generated {summary.customers:,} customers, {summary.orders:,} orders and "
        f"{summary.sessions:,} sessions into {args.db} in {summary.seconds:.1f} s."
    )
    return 0


def _cmd_features(args: argparse.Namespace) -> int:
    import time
    from datetime import date

    from tqdm import tqdm

    from persona_engine.errors import NoDataError, ValidationError
    from persona_engine.features import FEATURE_STEPS, compute_customer_features
    from persona_engine.store import fetch_value, open_store

    reference = None
    if args.reference_date:
        try:
            reference = date.fromisoformat(args.reference_date)
        except ValueError as e:
            raise ValidationError(
                f"--reference-date must be a date like 2025-01-31, got {args.reference_date!r}"
            ) from e
    store = open_store(args.db)  # first, so a locked file is reported before any work
    try:
        cur = store.cursor()
        if not fetch_value(cur, "SELECT count(*) FROM analysis_customers"):
            raise NoDataError(
                f"no customers with analytics consent in {args.db}: generate the sample shop "
                "or import your data first"
            )
        started = time.perf_counter()
        with tqdm(
            total=len(FEATURE_STEPS), desc="features", unit="step", file=sys.stderr,
            disable=args.quiet,
        ) as bar:

            def progress(done: int, total: int, label: str) -> None:
                bar.set_postfix_str(label)
                bar.update(done - bar.n)

            rows = compute_customer_features(cur, reference_date=reference, progress=progress)
        used = fetch_value(cur, "SELECT max(reference_date) FROM customer_features")
    finally:
        store.close()
    print(
        f"Computed features for {rows:,} customers (reference date {used}) "
        f"in {time.perf_counter() - started:.1f} s."
    )
    return 0


COMMANDS: dict[str, Handler] = {"generate": _cmd_generate, "features": _cmd_features}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m persona_engine",
        description="Persona Studio: data-backed personas for e-commerce teams.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate the sample shop with planted ground truth")
    gen.add_argument("--db", required=True, help="DuckDB file to create or replace the shop in")
    gen.add_argument("--customers", type=int, default=20_000, help="number of customers")
    gen.add_argument("--seed", type=int, default=42, help="random seed (same seed, same shop)")
    gen.add_argument(
        "--locale", default="fr_FR", choices=["fr_FR", "en_US", "de_DE"], help="shop locale"
    )
    gen.add_argument("--quiet", action="store_true", help="no progress bar")

    feat = sub.add_parser(
        "features", help="recompute customer features, RFM scores and segments"
    )
    feat.add_argument("--db", required=True, help="DuckDB file of the shop")
    feat.add_argument(
        "--reference-date",
        help="compute as of this date (YYYY-MM-DD); default: the day after the last order",
    )
    feat.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except PersonaStudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
