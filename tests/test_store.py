"""Store: migrations are recorded, idempotent and atomic; per-thread cursors; file locks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from persona_engine.errors import MigrationError, StoreLockedError
from persona_engine.store import Store, migrate, open_store, table_exists
from persona_engine.store.connection import connect
from persona_engine.store.schema import MIGRATIONS, Migration

DESIGN_TABLES = [
    "customers", "products", "orders", "order_items", "sessions", "events",
    "customer_features", "clustering_runs", "cluster_assignments", "cluster_profiles",
    "personas", "persona_history", "persona_members", "actions", "schema_migrations",
    "sample_truth", "sample_effects", "imports",
]


def test_every_design_table_exists(cur):
    for name in DESIGN_TABLES:
        assert table_exists(cur, name), name


def test_migrations_recorded_once_and_idempotent(store):
    cur = store.cursor()
    versions = [r[0] for r in cur.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
    assert versions == [m.version for m in MIGRATIONS]
    # Running again applies nothing and records nothing new.
    assert migrate(store.connection) == []
    assert cur.execute("SELECT count(*) FROM schema_migrations").fetchall()[0][0] == len(MIGRATIONS)


def test_failing_migration_leaves_nothing_behind(tmp_path):
    con = connect(tmp_path / "m.duckdb")
    migrate(con)
    broken = Migration(99, "half-broken", "CREATE TABLE half_done (x INTEGER); SELECT * FROM no_such_table;")
    with pytest.raises(MigrationError, match="99"):
        migrate(con, [*MIGRATIONS, broken])
    # The table created before the failing statement was rolled back, and 99 is not recorded.
    assert not table_exists(con, "half_done")
    assert con.execute("SELECT count(*) FROM schema_migrations WHERE version = 99").fetchall()[0][0] == 0
    con.close()


def test_each_thread_gets_its_own_cursor_and_all_can_write(tmp_path):
    store = open_store(tmp_path / "t.duckdb")
    store.cursor().execute("CREATE TABLE hits (thread INTEGER)")
    cursors: dict[int, int] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            c = store.cursor()
            cursors[i] = id(c)
            for _ in range(10):
                c.execute("INSERT INTO hits VALUES (?)", [i])
                c.execute("SELECT count(*) FROM hits").fetchall()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(cursors.values())) == 20
    assert store.cursor().execute("SELECT count(*) FROM hits").fetchall()[0][0] == 200
    store.close()


def test_second_process_gets_a_one_line_lock_message(tmp_path):
    db = tmp_path / "shop.duckdb"
    holder = open_store(db)  # this process holds the file for writing
    script = textwrap.dedent(
        f"""
        import sys
        from persona_engine.store import open_store
        from persona_engine.errors import StoreLockedError
        try:
            open_store({str(db)!r})
        except StoreLockedError as e:
            print(e)
            sys.exit(3)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    holder.close()
    assert out.returncode == 3, out.stderr
    message = out.stdout.strip()
    assert "\n" not in message
    assert "shop.duckdb" in message and "close the app or the other command" in message


def test_cli_reports_lock_without_traceback(tmp_path):
    db = tmp_path / "shop.duckdb"
    holder = open_store(db)
    out = subprocess.run(
        [sys.executable, "-m", "persona_engine", "generate", "--db", str(db), "--customers", "10"],
        capture_output=True, text=True, cwd=Path(__file__).parents[1],
    )
    holder.close()
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: shop.duckdb is in use by another process")


def test_lock_error_type(tmp_path):
    assert issubclass(StoreLockedError, Exception)
    s = Store(tmp_path / "x.duckdb")
    assert s.cursor() is s.cursor()  # same thread, same cursor
    s.close()
