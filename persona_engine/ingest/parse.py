"""Turn staged text columns into typed ones, counting the values that do not parse.

Parsing runs in DuckDB through TEMP macros (one definition per kind of value), so ten
million rows parse in seconds. Each field says whether its column must exist and whether
every row needs a value; what fails becomes a SoftProblem with a count and the first
lines, so the caller can stop or skip those rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb

from persona_engine.errors import ImportRejected
from persona_engine.ingest.report import SoftProblem
from persona_engine.ingest.sources import StagedFile, drop_rejects, execute_on_source

# Dates: ISO first (what DuckDB casts natively: 2010-12-01 08:26[:00], with T, with a
# timezone offset, which is dropped: times stay the shop's wall-clock time), then
# slash dates month-first (the UCI Excel original, 12/1/2010 8:26) or day-first when a
# column's values only make sense that way (31/1/2011), then dotted day-first dates.
# Two-digit years come before four-digit ones: %Y would read "10" as year 10.
_MDY_FORMATS = (
    "%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%y", "%m/%d/%Y",
)
_DMY_FORMATS = (
    "%d/%m/%y %H:%M:%S", "%d/%m/%y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
    "%d/%m/%y", "%d/%m/%Y",
)
_DOTTED_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")


def _sql_list(formats: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{f}'" for f in formats) + "]"


TRUE_WORDS = ("1", "true", "t", "yes", "y", "oui", "o", "ja", "j", "si", "x")
FALSE_WORDS = ("0", "false", "f", "no", "n", "non", "nein", "")

# Every macro body is a code constant; values only ever reach them as column data.
_MACROS = f"""
CREATE OR REPLACE TEMP MACRO ingest_text(v) AS NULLIF(trim(v), '');
CREATE OR REPLACE TEMP MACRO ingest_id(v) AS
    NULLIF(regexp_replace(trim(v), '^([0-9]+)\\.0+$', '\\1'), '');
CREATE OR REPLACE TEMP MACRO ingest_ts_range(ts) AS
    CASE WHEN ts >= TIMESTAMP '1970-01-01' AND ts < TIMESTAMP '2100-01-01' THEN ts END;
CREATE OR REPLACE TEMP MACRO ingest_ts_mdy(v) AS ingest_ts_range(COALESCE(
    TRY_CAST(trim(v) AS TIMESTAMP),
    try_strptime(trim(v), {_sql_list(_MDY_FORMATS)}),
    try_strptime(trim(v), {_sql_list(_DOTTED_FORMATS)})));
CREATE OR REPLACE TEMP MACRO ingest_ts_dmy(v) AS ingest_ts_range(COALESCE(
    TRY_CAST(trim(v) AS TIMESTAMP),
    try_strptime(trim(v), {_sql_list(_DMY_FORMATS)}),
    try_strptime(trim(v), {_sql_list(_DOTTED_FORMATS)})));
CREATE OR REPLACE TEMP MACRO ingest_num_clean(v) AS
    regexp_replace(trim(v), '[\\s\\x{{00A0}}\\x{{202F}}£€$]|^[A-Z]{{3}}|[A-Z]{{3}}$', '', 'g');
CREATE OR REPLACE TEMP MACRO ingest_num_dot(v) AS COALESCE(
    TRY_CAST(trim(v) AS DECIMAL(18, 6)),
    TRY_CAST(CASE WHEN regexp_full_match(ingest_num_clean(v), '[-+]?[0-9]{{1,3}}(,[0-9]{{3}})+(\\.[0-9]+)?')
                  THEN replace(ingest_num_clean(v), ',', '') ELSE ingest_num_clean(v) END
             AS DECIMAL(18, 6)));
CREATE OR REPLACE TEMP MACRO ingest_num_comma(v) AS TRY_CAST(replace(
    CASE WHEN regexp_full_match(ingest_num_clean(v), '[-+]?[0-9]{{1,3}}(\\.[0-9]{{3}})+(,[0-9]+)?')
         THEN replace(ingest_num_clean(v), '.', '') ELSE ingest_num_clean(v) END,
    ',', '.') AS DECIMAL(18, 6));
CREATE OR REPLACE TEMP MACRO ingest_whole(n) AS
    CASE WHEN n = trunc(n) AND abs(n) < 2147483647 THEN CAST(n AS INTEGER) END;
CREATE OR REPLACE TEMP MACRO ingest_bool(v) AS CASE
    WHEN lower(trim(v)) IN ({", ".join(f"'{w}'" for w in TRUE_WORDS)}) THEN true
    WHEN lower(trim(v)) IN ({", ".join(f"'{w}'" for w in FALSE_WORDS if w)}) THEN false END;
"""


def install_macros(cur: duckdb.DuckDBPyConnection) -> None:
    """Create the parsing macros on this cursor's connection (TEMP: they vanish with it)."""
    cur.execute(_MACROS)


KINDS = ("text", "id", "timestamp", "number", "integer", "boolean")

EXPECTED = {
    "timestamp": "expected YYYY-MM-DD HH:MM or M/D/YYYY H:MM",
    "timestamp_dmy": "expected YYYY-MM-DD HH:MM or D/M/YYYY H:MM",
    "number": "expected a number such as 2.55",
    "integer": "expected a whole number such as 6 or -6",
    "boolean": "expected yes/no, true/false or 1/0",
}
# What a value that does not parse is not, in the singular and the plural.
_WHAT = {
    "timestamp": ("is not a date", "are not dates"),
    "number": ("is not a number", "are not numbers"),
    "integer": ("is not a whole number", "are not whole numbers"),
    "boolean": ("is not a yes/no answer", "are not yes/no answers"),
}


def counted(count: int, singular: str, plural: str) -> str:
    """'1 value', '3 values' ('value', 'values' given)."""
    return f"{count:,} {singular if count == 1 else plural}"


@dataclass(frozen=True)
class Field:
    """A column an import reads.

    required: the column must exist in the file.
    needs_value: every row needs a value (a row without one is a soft problem).
    aliases: other header spellings that mean this field (compared lower-case, letters
    and digits only).
    """

    name: str
    kind: str = "text"
    required: bool = False
    needs_value: bool = False
    aliases: tuple[str, ...] = ()
    help: str = ""

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind
        assert re.fullmatch(r"[a-z_]+", self.name), self.name


def normalise_name(name: str) -> str:
    """Header comparison key: lower case, letters and digits only ('Customer ID' -> 'customerid')."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def match_columns(header: Sequence[str], fields: Sequence[Field]) -> dict[str, str]:
    """Field name -> header name, by exact name then alias (normalised); each header used once."""
    by_key: dict[str, str] = {}
    for name in header:
        by_key.setdefault(normalise_name(name), name)
    result: dict[str, str] = {}
    used: set[str] = set()
    for f in fields:
        for key in (normalise_name(f.name), *(normalise_name(a) for a in f.aliases)):
            column = by_key.get(key)
            if column is not None and column not in used:
                result[f.name] = column
                used.add(column)
                break
    return result


def resolve_columns(
    staged: StagedFile,
    fields: Sequence[Field],
    layout: str,
    explicit: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Field name -> header name for one staged file; refuses a missing required column.

    `explicit` (from a mapping) wins over name matching; the columns it names must exist.
    """
    header = list(staged.columns)
    resolved = match_columns(header, fields)
    if explicit:
        known = {f.name for f in fields}
        by_key = {normalise_name(h): h for h in header}
        for field_name, column in explicit.items():
            if field_name not in known:
                raise ImportRejected(
                    f"the mapping for {staged.label} names an unknown field '{field_name}'; "
                    f"expected one of: {', '.join(sorted(known))}"
                )
            if not column:
                resolved.pop(field_name, None)
                continue
            found = column if column in staged.columns else by_key.get(normalise_name(column))
            if found is None:
                raise ImportRejected(
                    f"{staged.label}: the mapping names column '{column}' for {field_name}, but "
                    f"the file has no such column; found: {_list(header)}"
                )
            resolved[field_name] = found
    missing = [f for f in fields if f.required and f.name not in resolved]
    if missing:
        first = missing[0]
        spellings = " or ".join(repr(a) for a in (first.name, *first.aliases[:2]))
        raise ImportRejected(
            f"{staged.label}: column {spellings} is missing ({first.help or first.kind}); "
            f"found: {_list(header)}; expected {layout}"
        )
    return resolved


def _list(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _parsed_sql(f: Field, raw: str, decimal_comma: bool, day_first: bool) -> str:
    if f.kind == "text":
        return f"ingest_text({raw})"
    if f.kind == "id":
        return f"ingest_id({raw})"
    if f.kind == "timestamp":
        return f"ingest_ts_{'dmy' if day_first else 'mdy'}({raw})"
    number = f"ingest_num_{'comma' if decimal_comma else 'dot'}({raw})"
    if f.kind == "number":
        return number
    if f.kind == "integer":
        return f"ingest_whole({number})"
    return f"ingest_bool({raw})"


_SQL_TYPES = {
    "text": "VARCHAR", "id": "VARCHAR", "timestamp": "TIMESTAMP",
    "number": "DECIMAL(18, 6)", "integer": "INTEGER", "boolean": "BOOLEAN",
}

EXAMPLES = 3
# Conventions (decimal comma, day-first dates) are read from the first rows; the whole
# column is examined only when values then fail to parse.
SAMPLE_ROWS = 100_000


def _detect_conventions(
    cur: duckdb.DuckDBPyConnection,
    staged: StagedFile,
    columns: Mapping[str, tuple[Field, str]],
    sample: bool,
) -> tuple[set[str], set[str]]:
    """(fields with decimal commas, date fields written day-first), from the values."""
    probes: list[str] = []
    keys: list[tuple[str, str]] = []
    for name, (f, raw) in columns.items():
        # CASE, not AND: DuckDB evaluates both sides of AND, and the costly test
        # should only run on the few values that can pass it.
        if f.kind in ("number", "integer"):
            probes.append(f"count(*) FILTER (CASE WHEN contains({raw}, ',') THEN "
                          f"regexp_full_match(trim({raw}), '[-+]?[0-9. ]*,[0-9]+') ELSE false END)")
            probes.append(f"count(*) FILTER (CASE WHEN contains({raw}, '.') THEN "
                          f"regexp_full_match(trim({raw}), '[-+]?[0-9, ]*\\.[0-9]+') ELSE false END)")
            keys.append(("comma", name))
        elif f.kind == "timestamp":
            for formats in (_MDY_FORMATS, _DMY_FORMATS):
                probes.append(
                    f"count(*) FILTER (CASE WHEN contains({raw}, '/') THEN "
                    f"try_strptime(trim({raw}), {_sql_list(formats)}) IS NOT NULL ELSE false END)"
                )
            keys.append(("dmy", name))
    if not probes:
        return set(), set()
    # from_sql is built by the sources module from code constants and generated names.
    source = (
        f"(SELECT * FROM {staged.from_sql} LIMIT {SAMPLE_ROWS})"  # noqa: S608
        if sample else staged.from_sql
    )
    try:
        counts = cur.execute(
            f"SELECT {', '.join(probes)} FROM {source}", staged.params  # noqa: S608 - generated
        ).fetchall()[0]
    except duckdb.Error as e:
        raise ImportRejected(f"{staged.label} cannot be read: {str(e).splitlines()[0]}") from e
    finally:
        drop_rejects(cur)
    comma: set[str] = set()
    day_first: set[str] = set()
    for i, (what, name) in enumerate(keys):
        first, second = counts[2 * i], counts[2 * i + 1]
        if what == "comma" and first > second:
            comma.add(name)
        # Month-first unless day-first reads strictly more values (12/1/2010 is 1 December).
        if what == "dmy" and second > first:
            day_first.add(name)
    return comma, day_first


def _materialise(
    cur: duckdb.DuckDBPyConnection,
    staged: StagedFile,
    fields: Sequence[Field],
    columns: Mapping[str, tuple[Field, str]],
    target: str,
    append: bool,
    conventions: tuple[set[str], set[str]],
    row_hash: bool,
) -> None:
    comma, day_first = conventions
    selects = [f"CAST({staged.index} AS INTEGER) AS _file"]
    bad: list[str] = []
    for f in fields:
        if f.name not in columns:
            selects.append(f"CAST(NULL AS {_SQL_TYPES[f.kind]}) AS {f.name}")
            continue
        raw = columns[f.name][1]
        selects.append(f"{_parsed_sql(f, raw, f.name in comma, f.name in day_first)} AS {f.name}")
        if f.kind not in ("text", "id"):
            # The text of a value that did not parse, kept for the report (NULL otherwise).
            selects.append(f"CASE WHEN {f.name} IS NULL THEN ingest_text({raw}) END AS _raw_{f.name}")
            bad.append(f"_raw_{f.name} IS NOT NULL")
        if f.needs_value:
            bad.append(f"{f.name} IS NULL")
    selects.append(f"({' OR '.join(bad) or 'false'}) AS _bad")
    if row_hash:
        # A hash of the line as written, for counting exact duplicate lines cheaply later.
        selects.append(f"hash({', '.join(sorted(staged.columns.values()))}) AS _line_hash")
    select = f"SELECT {', '.join(selects)} FROM {staged.from_sql}"  # noqa: S608 - generated
    if append:
        sql = f"INSERT INTO {target} {select}"
    else:
        sql = f"CREATE OR REPLACE TEMP TABLE {target} AS {select}"
    execute_on_source(cur, staged, sql, [])
    rows, first = cur.execute(
        f"SELECT count(*), min(rowid) FROM {target} WHERE _file = ?", [staged.index]  # noqa: S608
    ).fetchall()[0]
    staged.rows = int(rows)
    staged.rowid_offset = int(first or 0)


def type_columns(
    cur: duckdb.DuckDBPyConnection,
    staged: StagedFile,
    fields: Sequence[Field],
    resolved: Mapping[str, str],
    target: str,
    append: bool = False,
    row_hash: bool = False,
) -> list[SoftProblem]:
    """Read one staged source into TEMP table `target`, typed; return its soft problems.

    `target` gets `_file` (staged.index), one typed column per field (typed NULLs for
    fields without a column), `_raw_<field>` (the text of values that did not parse)
    and `_bad` (a value did not parse, or a field that needs a value has none). With
    `append`, rows are added to an existing `target` (several files of one layout); with
    `row_hash`, `_line_hash` holds a hash of the row's text as written.
    Refuses a source without any data row.
    """
    columns: dict[str, tuple[Field, str]] = {}
    for f in fields:
        if f.name in resolved:
            columns[f.name] = (f, staged.columns[resolved[f.name]])
    conventions = _detect_conventions(cur, staged, columns, sample=True)
    _materialise(cur, staged, fields, columns, target, append, conventions, row_hash)
    if staged.rows == 0 and staged.malformed_count == 0:
        raise ImportRejected(f"{staged.label} is empty: expected a header line and at least one data line")
    problems = _problems(cur, staged, fields, resolved, target, conventions[1])
    convention_fields = {p.column for p in problems if p.problem in ("not_parsed:timestamp",
                                                                    "not_parsed:number",
                                                                    "not_parsed:integer")}
    if convention_fields:
        # The first rows may not settle 12/1 versus 1/12, or 1,5 versus 1.5: decide on
        # the whole column and type again if that changes the reading.
        whole = _detect_conventions(cur, staged, columns, sample=False)
        if whole != conventions:
            if append:
                cur.execute(f"DELETE FROM {target} WHERE _file = ?", [staged.index])  # noqa: S608
            _materialise(cur, staged, fields, columns, target, append, whole, row_hash)
            problems = _problems(cur, staged, fields, resolved, target, whole[1])
    return problems


def _problems(
    cur: duckdb.DuckDBPyConnection,
    staged: StagedFile,
    fields: Sequence[Field],
    resolved: Mapping[str, str],
    target: str,
    day_first: set[str],
) -> list[SoftProblem]:
    checks: list[tuple[Field, str, str]] = []  # (field, condition, kind of problem)
    for f in fields:
        if f.name not in resolved:
            continue
        parsed = f.kind not in ("text", "id")
        if parsed:
            checks.append((f, f"_raw_{f.name} IS NOT NULL", "not_parsed"))
        if f.needs_value:
            missing = f"{f.name} IS NULL" + (f" AND _raw_{f.name} IS NULL" if parsed else "")
            checks.append((f, missing, "missing"))
    if not checks:
        return []
    counts = cur.execute(
        "SELECT " + ", ".join(f"count(*) FILTER ({cond})" for _, cond, _ in checks)  # noqa: S608
        + f" FROM {target} WHERE _file = ?",
        [staged.index],
    ).fetchall()[0]
    problems: list[SoftProblem] = []
    for (f, cond, kind), count in zip(checks, counts, strict=True):
        if not count:
            continue
        header = resolved[f.name]
        value = f"_raw_{f.name}" if kind == "not_parsed" else "NULL"
        rows = cur.execute(
            f"SELECT rowid, {value} FROM {target} WHERE _file = ? AND {cond} "  # noqa: S608
            f"ORDER BY rowid LIMIT {EXAMPLES}",
            [staged.index],
        ).fetchall()
        word = staged.line_word
        if kind == "missing":
            examples = [f"{word} {staged.line_of(rowid)}" for rowid, _ in rows]
            expected = "expected a value on every row"
            message = (
                f"{staged.label}, column '{header}': "
                f"{counted(count, 'row has', 'rows have')} no value, "
                f"e.g. {examples[0]}; {expected}"
            )
        else:
            examples = [f"{word} {staged.line_of(rowid)}: {value!r}" for rowid, value in rows]
            key = "timestamp_dmy" if f.kind == "timestamp" and f.name in day_first else f.kind
            expected = EXPECTED[key]
            message = (
                f"{staged.label}, column '{header}': {counted(count, 'value', 'values')} "
                f"{_WHAT[f.kind][0 if count == 1 else 1]}, "
                f"e.g. {examples[0]}; {expected}"
            )
        problems.append(SoftProblem(
            file=staged.label, column=header, problem=f"{kind}:{f.kind}", count=int(count),
            examples=examples, expected=expected, message=message,
        ))
    return problems


def malformed_problem(staged: StagedFile) -> SoftProblem | None:
    """Lines DuckDB could not split into the header's columns, as a soft problem."""
    if not staged.malformed_count:
        return None
    examples = [f"line {line}: {text}" for line, text in staged.malformed[:EXAMPLES]]
    expected = f"expected {len(staged.columns)} fields per line, like the header"
    return SoftProblem(
        file=staged.label, column=None, problem="malformed_line", count=staged.malformed_count,
        examples=examples, expected=expected,
        message=(
            f"{staged.label}: {counted(staged.malformed_count, 'line', 'lines')} cannot be split "
            "into columns, "
            f"e.g. {examples[0]}; {expected}"
        ),
    )
