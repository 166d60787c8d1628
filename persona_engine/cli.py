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
    from persona_engine.features import compute_customer_features
    from sample_data.generator import generate_shop

    try:
        summary = generate_shop(
            store.cursor(),
            n_customers=args.customers,
            seed=args.seed,
            locale=args.locale,
            progress=not args.quiet,
        )
        # The explorer, clustering and KPI pages read customer features: compute them now.
        features = compute_customer_features(store.cursor())
    finally:
        store.close()
    print(
        f"Generated {summary.customers:,} customers, {summary.orders:,} orders and "
        f"{summary.sessions:,} sessions into {args.db} in {summary.seconds:.1f} s; "
        f"features for {features:,} consenting customers."
    )
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from persona_engine.ingest import check_files, import_files
    from persona_engine.store import open_store

    store = open_store(args.db)  # first, so a locked file is reported before any work
    bar = None if args.quiet else tqdm(total=1, file=sys.stderr, unit="step", leave=False)

    def progress(done: int, total: int, message: str) -> None:
        if bar is not None:
            bar.total = total
            bar.set_description_str(message[:70])
            bar.update(done - bar.n)

    options: dict[str, Any] = {
        "mapping": args.mapping, "consent": args.consent, "progress": progress,
        "pseudonymise": args.pseudonymise,
    }
    try:
        if args.check:
            report = check_files(store.cursor(), args.files, args.preset, **options)
        else:
            report = import_files(
                store.cursor(), args.files, args.preset,
                on_soft_errors="skip" if args.skip_bad_rows else "stop",
                compute_features=not args.no_features, **options,
            )
    finally:
        if bar is not None:
            bar.close()
        store.close()
    if args.json:
        _print_json(report.to_dict())
    else:
        print("\n".join(report.summary_lines()))
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


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from persona_engine.errors import ValidationError
    from persona_engine.export import export_card
    from persona_engine.store import open_store

    if args.format == "pdf" and not args.out:
        raise ValidationError("a PDF is binary: give --out FILE.pdf to write it")
    store = open_store(args.db, read_only=True)
    try:
        content = export_card(store.cursor(), args.persona, args.format)
    finally:
        store.close()
    if args.out:
        Path(args.out).write_bytes(content)
        print(f"Wrote {args.out} ({len(content):,} bytes).")
    else:
        sys.stdout.write(content.decode("utf-8"))
    return 0


def _cmd_import_persona(args: argparse.Namespace) -> int:
    from pathlib import Path

    from persona_engine.errors import ValidationError
    from persona_engine.export import import_persona_json
    from persona_engine.personas import get_persona
    from persona_engine.store import open_store

    try:
        payload = Path(args.file).read_bytes()
    except OSError as e:
        raise ValidationError(f"cannot read {args.file}: {e.strerror}") from e
    store = open_store(args.db)
    try:
        cur = store.cursor()
        persona_id = import_persona_json(cur, payload, args.user)
        name = get_persona(cur, persona_id)["name"]
    finally:
        store.close()
    print(f"Imported persona {persona_id} ({name}); it has no members until you link it to customers.")
    return 0


def _cmd_users(args: argparse.Namespace) -> int:
    import getpass
    from pathlib import Path

    from persona_engine import auth
    from persona_engine.errors import StoreLockedError, ValidationError
    from persona_engine.store import open_store

    path = auth.credentials_path(args.db) if args.file is None else Path(args.file)
    if args.action in ("add", "remove") and not args.name:
        raise ValidationError(f"users {args.action} needs --name")
    if args.action == "add":
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"Password for {args.name}: ")
            if getpass.getpass("Same password again: ") != password:
                raise ValidationError("the two passwords differ; nothing was changed")
        record = auth.add_user(path, args.name, password, args.role, args.display_name)
        print(f"{record.user_name} ({record.display_name}) is {record.role} in {path}.")
    elif args.action == "remove":
        auth.remove_user(path, args.name)
        print(f"{args.name} removed from {path}.")
    users = auth.load_credentials(path)
    if args.action == "list":
        for u in users:
            print(f"{u.user_name}\t{u.role}\t{u.display_name}")
        if not users:
            print(f"No users in {path}: no login, everyone who gives a name is an editor.")
        return 0
    try:
        store = open_store(args.db)
    except StoreLockedError:
        print("The app has the database open; it applies the new file at its next page load.")
        return 0
    try:
        auth.sync_users(store.cursor(), users)
    finally:
        store.close()
    return 0


COMMANDS: dict[str, Handler] = {
    "generate": _cmd_generate,
    "import": _cmd_import,
    "features": _cmd_features,
    "export": _cmd_export,
    "import-persona": _cmd_import_persona,
    "users": _cmd_users,
}


def _add_import_parser(sub: Any) -> None:
    imp = sub.add_parser(
        "import", help="replace the shop with your own files (CSV, Parquet, Excel)",
        description="Import shop files through a preset; the shop's data is replaced in one "
        "transaction, and a rejected import changes nothing.",
    )
    imp.add_argument("--db", required=True, help="DuckDB file whose shop the import replaces")
    imp.add_argument("--preset", required=True, choices=["generic", "shopify", "online-retail"])
    imp.add_argument("--mapping", help="JSON (or YAML) column mapping, generic preset only")
    imp.add_argument(
        "--consent", default="all",
        help="analytics consent: all, none or column:NAME (a yes/no column); default all",
    )
    imp.add_argument("--skip-bad-rows", action="store_true",
                     help="leave out rows with problems instead of stopping (they are reported)")
    imp.add_argument("--pseudonymise", action="store_true",
                     help="shopify: key customers by the SHA-256 of their email, store no names")
    imp.add_argument("--check", action="store_true",
                     help="check the files and print the report without importing")
    imp.add_argument("--no-features", action="store_true",
                     help="do not recompute customer features after the import")
    imp.add_argument("--json", action="store_true", help="print the import report as JSON")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.add_argument("files", nargs="+", metavar="FILE", help="files, folders or glob patterns")


def _add_collab_parsers(sub: Any) -> None:
    exp = sub.add_parser("export", help="write a persona card as Markdown, JSON or PDF")
    exp.add_argument("--db", required=True, help="DuckDB file holding the persona")
    exp.add_argument("--persona", required=True, type=int, help="persona id")
    exp.add_argument("--format", required=True, choices=["md", "json", "pdf"])
    exp.add_argument("--out", help="file to write; md and json go to standard output without it")

    imp = sub.add_parser("import-persona", help="create a persona from a persona JSON file (an export)")
    imp.add_argument("--db", required=True, help="DuckDB file to add the persona to")
    imp.add_argument("--user", default="cli", help="who the history records as author (default: cli)")
    imp.add_argument("file", help="persona JSON, as written by `export --format json`")

    users = sub.add_parser("users", help="people who may sign in (credentials file, bcrypt hashes)")
    users.add_argument("action", choices=["add", "remove", "list"])
    users.add_argument("--db", required=True, help="database whose users to update (the file sits beside it)")
    users.add_argument("--file", help="credentials file; default $PERSONA_STUDIO_USERS, else users.toml beside --db")
    users.add_argument("--name", help="user name (sign-in name, no spaces)")
    users.add_argument("--role", choices=["viewer", "editor", "admin"], default="editor")
    users.add_argument("--display-name", help="name shown to colleagues (default: the user name)")
    users.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of standard input instead of prompting")


def _cmd_kpis(args: argparse.Namespace) -> int:
    from pathlib import Path

    from persona_engine import kpis
    from persona_engine.actions import get_action
    from persona_engine.errors import NotFoundError
    from persona_engine.store import open_store

    if not Path(args.db).exists():
        raise NotFoundError(
            f"no database at {args.db}: generate one with "
            f"`python -m persona_engine generate --db {args.db}`"
        )
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    store = open_store(args.db, read_only=True)  # reads only; never migrates or writes
    try:
        cur = store.cursor()
        action = get_action(cur, args.action)
        rows = kpis.before_after(
            cur, args.action, args.window_days, args.control, metrics=metrics,
            n_boot=args.n_boot, seed=args.seed,
        )
    finally:
        store.close()
    if args.json:
        _print_json([row.to_dict() for row in rows])
    else:
        print("\n".join(_impact_lines(action, rows)))
    return 0


COMMANDS["kpis"] = _cmd_kpis


def _impact_lines(action: Any, rows: Sequence[Any]) -> list[str]:
    """The impact table as text: rates in % (changes in points), amounts with 2 decimals."""
    from persona_engine.kpis import METRICS

    def value(metric: str, x: float | None, signed: bool = False) -> str:
        if x is None:
            return "n/a"
        sign = "+" if signed else ""
        if METRICS[metric].value_kind == "rate":
            return f"{100 * x:{sign}.2f}" + (" pt" if signed else "%")
        return f"{x:{sign},.2f}"

    def interval(metric: str, low: float | None, high: float | None) -> str:
        if low is None or high is None:
            return "[n/a]"
        return f"[{value(metric, low, True)}, {value(metric, high, True)}]"

    def p(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3g}"

    first = rows[0] if rows else None
    control = "customers in no targeted persona"
    if first is not None and first.control == "persona":
        control = f"persona {first.control_persona_id}"
    lines = [
        f"Action {action.action_id} \"{action.name}\" from {action.starts_on.isoformat()}: "
        f"{first.window_days if first else '?'} days before vs after; control: {control}.",
        "* = targeted; p-values Holm-adjusted across the table; intervals 95%.",
        "",
    ]
    for row in rows:
        flags = []
        if row.small_sample or row.did_small_sample:
            flags.append("small sample")
        if not row.window_complete:
            flags.append("window cut by the data period")
        name = ("* " if row.targeted else "  ") + row.persona_name
        lines.append(
            f"{name[:28]:<28} {row.metric:<20} {value(row.metric, row.before):>10} -> "
            f"{value(row.metric, row.after):<10} change {value(row.metric, row.change, True)} "
            f"{interval(row.metric, row.change_low, row.change_high)} p {p(row.p_value_holm)}; "
            f"DiD {value(row.metric, row.did, True)} {interval(row.metric, row.did_low, row.did_high)} "
            f"p {p(row.did_p_value_holm)}; n {row.n_before}/{row.n_after} {row.units}"
            + (f" ({', '.join(flags)})" if flags else "")
        )
    return lines


def _add_kpis_parser(sub: Any) -> None:
    kp = sub.add_parser(
        "kpis", help="before/after impact of a marketing action, per persona",
        description="Conversion, average order value and retention in equal windows before "
        "and after an action's start, per persona, with 95% intervals, Holm-adjusted "
        "p-values and the difference-in-differences against a control.",
    )
    kp.add_argument("--db", required=True, help="DuckDB file of the shop (opened read-only)")
    kp.add_argument("--action", required=True, type=int, help="action id")
    kp.add_argument("--window-days", type=int, default=30,
                    help="length of each window, 7 to 180 days (default 30)")
    kp.add_argument("--control", default="untargeted",
                    help="'untargeted' (customers in no targeted persona, default) or a persona id")
    kp.add_argument("--metrics", default="conversion_rate,average_order_value,retention_rate",
                    help="comma-separated; also revenue_per_customer, orders_per_customer")
    kp.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    kp.add_argument("--seed", type=int, default=0, help="bootstrap seed (same seed, same numbers)")
    kp.add_argument("--json", action="store_true", help="print the rows as a JSON list (see README)")


def _cmd_cluster(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from persona_engine.clustering import STEPS, cluster_customers, parse_k, resolve_features
    from persona_engine.drafting import describe_trait
    from persona_engine.store import get_setting, open_store

    parse_k(args.k)  # bad parameters are reported before the database is opened
    resolve_features(args.features)
    store = open_store(args.db)  # then the file, so a lock is reported before any work
    try:
        cur = store.cursor()
        with tqdm(total=len(STEPS), desc="cluster", unit="step", file=sys.stderr,
                  disable=args.quiet or args.json) as bar:

            def progress(done: int, total: int, label: str) -> None:
                bar.set_postfix_str(label)
                bar.update(done - bar.n)

            run = cluster_customers(cur, k=args.k, seed=args.seed, features=args.features,
                                    method=args.method, user="cli", progress=progress)
        currency = get_setting(cur, "currency")
    finally:
        store.close()
    if args.json:
        _print_json(run.to_json())
        return 0
    quality = f"silhouette {run.silhouette:.3f}" if run.silhouette is not None else "silhouette n/a"
    print(f"Run {run.run_id}: {run.k} clusters of {run.n_customers:,} customers ({run.method}, "
          f"features: {run.feature_set}), {quality}, stability {run.stability:.2f}.")
    if run.k_scores:
        print("Silhouette by k: " + ", ".join(f"{k}: {v:.3f}" for k, v in sorted(run.k_scores.items())))
    for c in run.clusters:
        revenue = f"{c.revenue_share:.0%}" if c.revenue_share is not None else "n/a"
        traits = "; ".join(describe_trait(t, "en", currency) for t in run.traits(c.cluster, 3))
        print(f"  cluster {c.cluster}: {c.size:,} customers ({c.share:.0%}), {revenue} of revenue - {traits}")
    print(f"Next: python -m persona_engine personas create-from-run --db {args.db} --run {run.run_id}")
    return 0


def _cmd_personas(args: argparse.Namespace) -> int:
    from persona_engine.drafting import create_personas_from_run
    from persona_engine.errors import ValidationError
    from persona_engine.personas import get_persona
    from persona_engine.store import open_store

    groups = None
    if args.clusters:
        try:
            groups = [[int(c) for c in part.split("+")] for part in args.clusters.split(",") if part.strip()]
        except ValueError:
            raise ValidationError(
                f"--clusters takes cluster numbers separated by commas, + to merge (e.g. 0,1+3); got {args.clusters!r}"
            ) from None
    store = open_store(args.db)
    try:
        cur = store.cursor()
        ids = create_personas_from_run(cur, args.run, groups, user=args.user)
        personas = [get_persona(cur, i) for i in ids]
    finally:
        store.close()
    if args.json:
        _print_json([{"persona_id": p.persona_id, "name": p["name"], "kind": p["kind"],
                      "clusters": p.source_clusters, "run_id": p.source_run_id} for p in personas])
        return 0
    for p in personas:
        print(f"persona {p.persona_id}: {p['name']} ({p['kind']}, clusters {', '.join(map(str, p.source_clusters))})")
    return 0


COMMANDS["cluster"] = _cmd_cluster
COMMANDS["personas"] = _cmd_personas


def _add_cluster_parsers(sub: Any) -> None:
    cl = sub.add_parser(
        "cluster", help="cluster customers into groups and store the run with its profiles",
        description="Cluster the consenting customers on their features (run `features` first). "
        "Every run is stored with its parameters, quality scores and cluster profiles.",
    )
    cl.add_argument("--db", required=True, help="DuckDB file of the shop")
    cl.add_argument("--k", default="auto", help="number of clusters, or 'auto' (3 to 8, by silhouette; default)")
    cl.add_argument("--seed", type=int, default=0, help="random seed (same seed and data, same clusters)")
    cl.add_argument("--features", default="both",
                    help="both (default), behaviour, demographics, or comma-separated feature names")
    cl.add_argument("--method", default="auto", choices=["auto", "kmeans", "minibatch", "gmm"],
                    help="auto: KMeans, MiniBatchKMeans above 200,000 customers; gmm: Gaussian mixture")
    cl.add_argument("--json", action="store_true", help="print the run as JSON (see README)")
    cl.add_argument("--quiet", action="store_true", help="no progress bar")

    pe = sub.add_parser("personas", help="personas from a clustering run")
    pe_sub = pe.add_subparsers(dest="personas_command", required=True)
    cfr = pe_sub.add_parser("create-from-run", help="draft one persona per cluster of a run (status draft)")
    cfr.add_argument("--db", required=True, help="DuckDB file of the shop")
    cfr.add_argument("--run", type=int, help="clustering run id (default: the latest)")
    cfr.add_argument("--clusters", help="clusters to keep, comma-separated; + merges (e.g. 0,1+3,4); default all")
    cfr.add_argument("--user", default="cli", help="who the history records as author (default: cli)")
    cfr.add_argument("--json", action="store_true", help="print the new personas as JSON")


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
    _add_import_parser(sub)
    _add_collab_parsers(sub)
    _add_kpis_parser(sub)
    _add_cluster_parsers(sub)
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
