"""One DuckDB connection per database per process, one cursor per thread.

DuckDB refuses concurrent calls on a single connection object but is happy with one
`cursor()` per thread, so `Store.cursor()` hands each thread its own cursor over the
shared connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

from persona_engine.errors import MigrationError, StoreError, StoreLockedError
from persona_engine.store.schema import MIGRATIONS, Migration

MEMORY = ":memory:"


def _locked_message(path: str) -> str:
    name = Path(path).name
    return (
        f"{name} is in use by another process: close the app or the other command using "
        f"{name}, or open it read-only once that process has finished ({path})."
    )


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a raw DuckDB connection, turning a file lock into a one-line StoreLockedError."""
    target = str(path)
    if target != MEMORY:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(target, read_only=read_only)
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise StoreLockedError(_locked_message(target)) from e
        raise StoreError(f"cannot open {target}: {e}") from e
    except duckdb.Error as e:
        raise StoreError(f"cannot open {target}: {e}") from e


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    return {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(
    con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration] = MIGRATIONS
) -> list[int]:
    """Apply the migrations not yet recorded, each in its own transaction.

    Returns the versions applied now. A migration that fails is rolled back entirely
    (DuckDB DDL is transactional) and raises MigrationError; earlier ones stay applied.
    """
    done = applied_versions(con)
    applied: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                [migration.version, migration.name],
            )
            con.execute("COMMIT")
        except duckdb.Error as e:
            con.execute("ROLLBACK")
            raise MigrationError(
                f"migration {migration.version} ({migration.name}) failed and was rolled back: {e}"
            ) from e
        applied.append(migration.version)
    return applied


class Store:
    """A migrated DuckDB database shared by every thread of the process.

    The connection is opened lazily under a lock; `cursor()` returns the calling thread's
    own cursor, created on first use.
    """

    def __init__(self, path: str | Path = MEMORY, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._local = threading.local()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._connection is None:
                con = connect(self.path, read_only=self.read_only)
                if not self.read_only:
                    migrate(con)
                self._connection = con
            return self._connection

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor over the shared connection."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.connection.cursor()
            self._local.cursor = cur
        return cur

    def close(self, timeout_s: float = 120.0) -> None:
        """Close the connection, once the work in progress on its cursors is done (a
        background build of the explorer's date ranges, say): DuckDB refuses to close a
        connection busy with a call."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            if self._connection is not None:
                while True:
                    try:
                        self._connection.close()
                        break
                    except duckdb.ResourceInUseException:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                self._connection = None
        self._local = threading.local()


def open_store(path: str | Path = MEMORY, read_only: bool = False) -> Store:
    """Open (and migrate) a store now, so lock and migration errors surface at once."""
    store = Store(path, read_only=read_only)
    store.connection  # noqa: B018 - open eagerly
    return store


@contextmanager
def transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run a block in one transaction: committed when it returns, rolled back if it raises."""
    cur.execute("BEGIN TRANSACTION")
    try:
        yield cur
    except BaseException:
        _rollback_quietly(cur)
        raise
    try:
        cur.execute("COMMIT")
    except duckdb.Error:
        _rollback_quietly(cur)  # a failed commit (write conflict) must not leave the cursor mid-transaction
        raise


def _rollback_quietly(cur: duckdb.DuckDBPyConnection) -> None:
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:
        pass  # DuckDB already ended the transaction


def table_exists(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = cur.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return bool(rows[0][0])


def get_setting(cur: duckdb.DuckDBPyConnection, key: str, default: str | None = None) -> str | None:
    rows = cur.execute("SELECT value FROM shop_settings WHERE key = ?", [key]).fetchall()
    return rows[0][0] if rows else default


def set_setting(cur: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO shop_settings (key, value) VALUES (?, ?)", [key, value]
    )
