"""State shared by the presets while they turn staged files into the canonical staging tables.

Every preset fills the same TEMP tables (ingest_customers, ingest_products,
ingest_orders, ingest_order_items, ingest_sessions) keyed by the source's own ids
(external ids); the writer maps those to integer ids and replaces the shop in one
transaction. Order items may carry their ids already computed (order_id, product_id),
which saves the writer mapping ten million lines one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import duckdb

from persona_engine.errors import ImportRejected
from persona_engine.ingest.parse import Field, counted, malformed_problem, type_columns
from persona_engine.ingest.report import (
    MAX_SKIPPABLE_ROWS,
    MAX_SKIPPABLE_SHARE,
    ImportReport,
    SoftProblem,
)
from persona_engine.ingest.sources import StagedFile

CANONICAL_TABLES_SQL = """
CREATE OR REPLACE TEMP TABLE ingest_customers (
    external_id VARCHAR, created_at TIMESTAMP, first_name VARCHAR, last_name VARCHAR,
    email VARCHAR, age SMALLINT, gender VARCHAR, marital_status VARCHAR, city VARCHAR,
    region VARCHAR, country VARCHAR, education VARCHAR, occupation VARCHAR, income DOUBLE,
    acquisition_channel VARCHAR, preferred_device VARCHAR, newsletter_opt_in BOOLEAN,
    consent BOOLEAN
);
CREATE OR REPLACE TEMP TABLE ingest_products (
    external_id VARCHAR, name VARCHAR, category VARCHAR, brand VARCHAR, price DOUBLE
);
CREATE OR REPLACE TEMP TABLE ingest_orders (
    external_id VARCHAR, customer_external_id VARCHAR, ordered_at TIMESTAMP, channel VARCHAR,
    device VARCHAR, payment_method VARCHAR, amount DOUBLE, discount DOUBLE, status VARCHAR,
    currency VARCHAR
);
CREATE OR REPLACE TEMP TABLE ingest_order_items (
    order_external_id VARCHAR, product_external_id VARCHAR, quantity INTEGER, unit_price DOUBLE,
    order_id BIGINT, product_id BIGINT
);
CREATE OR REPLACE TEMP TABLE ingest_sessions (
    external_id VARCHAR, customer_external_id VARCHAR, started_at TIMESTAMP, device VARCHAR,
    source VARCHAR, pages_viewed INTEGER, duration_s INTEGER, viewed_product BOOLEAN,
    added_to_cart BOOLEAN, checkout_started BOOLEAN, order_external_id VARCHAR
);
"""

CANONICAL_TABLES = (
    "ingest_customers", "ingest_products", "ingest_orders", "ingest_order_items", "ingest_sessions",
)


@dataclass
class BuildContext:
    """What a preset needs: the cursor, the staged files, the user's choices, the report."""

    cur: duckdb.DuckDBPyConnection
    staged: list[StagedFile]
    report: ImportReport
    consent: str
    pseudonymise: bool
    mapping: list[dict[str, object]] = field(default_factory=list)
    bad_rows: dict[str, int] = field(default_factory=dict)
    temp_tables: list[str] = field(default_factory=list)
    # Told after each source is read, with its row count (drives a progress bar).
    progress: Callable[[str], None] | None = None

    @property
    def consent_column(self) -> str | None:
        """The column named by a `column:NAME` declaration, else None."""
        return self.consent[len("column:"):] if self.consent.startswith("column:") else None

    def temp(self, name: str) -> str:
        """Remember a TEMP table to drop at the end; returns the name (a code constant)."""
        if name not in self.temp_tables:
            self.temp_tables.append(name)
        return name

    def drop(self, *tables: str) -> None:
        for table in tables:
            # Names come from code constants (see temp()), never from input.
            self.cur.execute(f"DROP TABLE IF EXISTS {table}")

    def require_consent_column(self, staged: StagedFile) -> None:
        """Refuse a `column:NAME` declaration naming a column the file does not have."""
        name = self.consent_column
        if name is None:
            return
        if name in staged.columns or any(c.lower() == name.lower() for c in staged.columns):
            return
        raise ImportRejected(
            f"{staged.label}: the consent column '{name}' (declared as column:{name}) is missing; "
            f"found: {', '.join(list(staged.columns)[:12])}; name a column holding each "
            "customer's yes/no, or declare all or none"
        )

    def merge_overlapping_files(
        self, table: str, key: str, line: str, row: str, noun: str, rows_word: str, kept: str = "TRUE"
    ) -> int:
        """Keep once each order (`key`) found in several staged files with the same lines.

        Re-sent daily exports or overlapping exports repeat orders: an order present in
        several files must have the same lines (`line`, an SQL expression over the columns)
        in each, and is then kept from the first file only; different lines reject the
        import. `table`, `key`, `line`, `row` and `kept` (a filter on usable lines) are code
        constants; `noun` and `rows_word` word the message. Returns the orders merged.
        """
        rows = self.cur.execute(f"""
            WITH multi AS (
                SELECT {key} FROM {table} WHERE {kept} GROUP BY {key} HAVING count(DISTINCT _file) > 1
            ), prints AS (
                SELECT {key} AS k, _file, min({row}) AS first_row,
                       md5(string_agg({line}, chr(10) ORDER BY {line})) AS print
                FROM {table} WHERE {kept} AND {key} IN (SELECT {key} FROM multi)
                GROUP BY {key}, _file
            )
            SELECT k, count(DISTINCT print) AS versions, list(_file ORDER BY _file),
                   list(first_row ORDER BY _file)
            FROM prints GROUP BY k ORDER BY versions DESC, k
        """).fetchall()  # noqa: S608 - code constants only
        if not rows:
            return 0
        value, versions, files, first_rows = rows[0]
        if versions > 1:
            raise ImportRejected(
                f"{noun} {value} appears in {self.where(files[0], first_rows[0])} and in "
                f"{self.where(files[1], first_rows[1])} with different {rows_word}; expected each "
                f"{noun} in one file, or the same {rows_word} wherever it appears"
            )
        self.cur.execute(f"""
            DELETE FROM {table} l USING (
                SELECT {key} AS k, min(_file) AS keep FROM {table} WHERE {kept} GROUP BY {key}
                HAVING count(DISTINCT _file) > 1
            ) m WHERE l.{key} = m.k AND l._file <> m.keep
        """)  # noqa: S608 - code constants only
        return len(rows)

    def where(self, file_index: int, rowid: int) -> str:
        """'orders.csv line 14' for a row of a typed table."""
        return self.staged[file_index].where(rowid)

    def typed(
        self,
        staged: StagedFile,
        fields: Sequence[Field],
        resolved: Mapping[str, str],
        target: str,
        append: bool = False,
        hard_fields: Sequence[str] = (),
        row_hash: bool = False,
    ) -> None:
        """Type one staged source into TEMP `target` and record its soft problems.

        A problem on a field named in `hard_fields` (a consent column, say) rejects the
        import instead: guessing such a value is not acceptable.
        """
        problems = type_columns(
            self.cur, staged, fields, resolved, self.temp(target), append=append, row_hash=row_hash,
        )
        hard = {resolved[name] for name in hard_fields if name in resolved}
        for problem in problems:
            if problem.column in hard:
                raise ImportRejected(problem.message)
        malformed = malformed_problem(staged)
        if malformed is not None:
            problems.insert(0, malformed)
        self.report.problems.extend(problems)
        self.report.rows_read[staged.label] = staged.rows + staged.malformed_count
        if self.progress is not None:
            self.progress(f"read {staged.label}: {staged.rows + staged.malformed_count:,} rows")

    def flag_rows(
        self,
        staged: StagedFile,
        target: str,
        condition: str,
        column: str | None,
        value_sql: str,
        what: tuple[str, str],
        expected: str,
        problem: str,
    ) -> None:
        """Mark rows of `staged` in `target` matching `condition` (code SQL) as bad, as one
        soft problem; `value_sql` (code SQL) gives the value shown in examples and `what`
        names such rows (singular, plural)."""
        where = f"_file = ? AND NOT _bad AND ({condition})"
        count = self.count(f"SELECT count(*) FROM {target} WHERE {where}", [staged.index])  # noqa: S608
        if not count:
            return
        rows = self.cur.execute(
            f"SELECT rowid, CAST({value_sql} AS VARCHAR) FROM {target} WHERE {where} "  # noqa: S608
            "ORDER BY rowid LIMIT 3",
            [staged.index],
        ).fetchall()
        self.cur.execute(f"UPDATE {target} SET _bad = true WHERE {where}", [staged.index])  # noqa: S608
        examples = [f"{staged.line_word} {staged.line_of(rowid)}: {value!r}" for rowid, value in rows]
        place = f"{staged.label}, column '{column}'" if column else staged.label
        self.report.problems.append(SoftProblem(
            file=staged.label, column=column, problem=problem, count=count,
            examples=examples, expected=expected,
            message=f"{place}: {counted(count, *what)}, e.g. {examples[0]}; {expected}",
        ))

    def finish_file(self, staged: StagedFile, target: str) -> None:
        """Count the source's bad rows; refuse when they are too many to be "a few bad rows"."""
        bad = self.count(
            f"SELECT count(*) FILTER (_bad) FROM {target} WHERE _file = ?",  # noqa: S608
            [staged.index],
        ) + staged.malformed_count
        self.bad_rows[staged.label] = bad
        total = staged.rows + staged.malformed_count
        if bad > MAX_SKIPPABLE_ROWS and bad > MAX_SKIPPABLE_SHARE * total:
            first = next(p for p in self.report.problems if p.file == staged.label)
            raise ImportRejected(
                f"{first.message} ({bad:,} of {total:,} rows of {staged.label} have problems: "
                f"too many to skip; check the file's layout, delimiter and date format)"
            )

    def rule(self, text: str, count: int) -> None:
        """Record how the data was interpreted, when it concerned at least one row."""
        if count:
            self.report.rules[text] = self.report.rules.get(text, 0) + int(count)

    def count(self, sql: str, params: Sequence[object] | None = None) -> int:
        rows = self.cur.execute(sql, list(params or [])).fetchall()
        return int(rows[0][0] or 0) if rows else 0
