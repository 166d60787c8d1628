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

    from persona_engine.features import compute_customer_features

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


COMMANDS: dict[str, Handler] = {"generate": _cmd_generate, "features": _cmd_features, "export": _cmd_export, "import-persona": _cmd_import_persona, "users": _cmd_users}


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
    _add_collab_parsers(sub)
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
