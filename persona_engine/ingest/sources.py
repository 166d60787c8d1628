"""Source files: find them, tell their format, encoding and delimiter, stage them in DuckDB.

Every source is read through text columns named c0, c1, ... (a read_csv or read_parquet
call, or a TEMP table for a workbook sheet). Header names stay in Python
(`StagedFile.columns`): nothing read from a file is ever formatted into SQL.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import glob
import gzip
import hashlib
import io
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from persona_engine.errors import ImportRejected

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
SUPPORTED_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + EXCEL_SUFFIXES
DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 1 << 20
EXPECTED_ENCODINGS = "expected UTF-8 (with or without BOM), UTF-16 with BOM, or Latin-1/Windows-1252"

_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls workbooks


@dataclass
class SourceFile:
    """A file to import, with what sniffing found out about it."""

    path: Path
    kind: str  # csv, parquet or xlsx
    encoding: str | None = None  # utf-8, utf-16, latin-1 or cp1252 (csv only)
    delimiter: str | None = None  # csv only
    sha256: str = ""

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class StagedFile:
    """One source ready to be typed: a file, or one sheet of a workbook.

    `columns` maps each header name, as written in the file, to a generated column name
    (c0, c1, ...) of `from_sql`, a FROM clause built by this module (a read_csv or
    read_parquet call with `params`, or a TEMP table for a workbook sheet). Nothing is
    materialised until a preset types it; line numbers come from the typed table's rowid
    (`line_of`), so the common path never numbers rows.
    """

    source: SourceFile
    label: str
    index: int
    columns: dict[str, str]
    from_sql: str
    params: list[Any]
    line_word: str = "line"
    first_line: int = 2
    rows: int = 0
    rowid_offset: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)
    malformed_count: int = 0
    # Accepted rows before each rejected line (ascending): shifts later line numbers.
    reject_positions: list[int] = field(default_factory=list)

    def line_of(self, rowid: int) -> int:
        """The line (CSV), sheet row (Excel) or row (Parquet) of a typed row."""
        position = rowid - self.rowid_offset
        return position + self.first_line + bisect.bisect_right(self.reject_positions, position)

    def where(self, rowid: int) -> str:
        """'orders.csv line 14', for messages."""
        return f"{self.label} {self.line_word} {self.line_of(rowid)}"


def _first_bytes(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(8)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files to import from file paths, folders (their supported files) and glob patterns.

    A folder contributes its files with a supported suffix, sorted by name (not its
    sub-folders); a pattern such as `data/2011-*.csv` its matches, sorted. The same file
    named twice is kept once.
    """
    found: list[Path] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.is_file() and _suffix(p) in SUPPORTED_SUFFIXES
            )
            if not files:
                raise ImportRejected(
                    f"{text}: the folder holds no file to import; expected files ending in "
                    f"{', '.join(SUPPORTED_SUFFIXES)}"
                )
            found.extend(files)
        elif path.is_file():
            found.append(path)
        elif any(ch in text for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
            if not matches:
                raise ImportRejected(f"{text}: no file matches this pattern")
            found.extend(matches)
        else:
            raise ImportRejected(f"{text}: file not found")
    unique: list[Path] = []
    seen: set[Path] = set()
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    if not unique:
        raise ImportRejected("no file to import: name at least one file, folder or pattern")
    return unique


def scan_file(path: Path) -> tuple[str, bool]:
    """(SHA-256 of the file, whether its bytes are valid UTF-8), in one read of the file.

    ASCII chunks skip the decoder (a chunk that is ASCII cannot break UTF-8 when no
    multi-byte sequence is pending), so a 1 GB export costs about one hash pass.
    """
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    valid = True
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
            if valid and not (chunk.isascii() and not decoder.getstate()[0]):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    valid = False
    if valid:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            valid = False
    if _first_bytes(path).startswith(_GZIP_MAGIC):
        valid = _scan_whole_file(path)[0]  # compressed bytes say nothing of the text
    return digest.hexdigest(), valid


def _open_binary(path: Path) -> io.BufferedIOBase:
    head = _first_bytes(path)
    if head.startswith(_GZIP_MAGIC):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _read_sample(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    with _open_binary(path) as f:
        return f.read(size)


def _decode_strict(data: bytes, encoding: str, final: bool) -> str | None:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        return decoder.decode(data, final=final)
    except UnicodeDecodeError:
        return None


def _scan_whole_file(path: Path) -> tuple[bool, bool, bool]:
    """(valid UTF-8, valid Windows-1252, has bytes 0x80-0x9F) over the whole file."""
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
    cp1252 = codecs.getincrementaldecoder("cp1252")(errors="strict")
    is_utf8 = is_cp1252 = True
    has_c1 = False
    with _open_binary(path) as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            if is_utf8:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    is_utf8 = False
            if is_cp1252:
                try:
                    cp1252.decode(chunk)
                except UnicodeDecodeError:
                    is_cp1252 = False
            if not has_c1 and any(0x80 <= b <= 0x9F for b in chunk):
                has_c1 = True
    return is_utf8, is_cp1252, has_c1


def detect_encoding(path: Path, whole_file: bool = False) -> str:
    """utf-8, utf-16, latin-1 or cp1252, from the byte-order mark and the bytes themselves.

    The first megabyte decides unless `whole_file` (used when DuckDB later finds a
    non-UTF-8 byte further down). Latin-1 is preferred over Windows-1252 when both read
    the file the same (no byte in 0x80-0x9F), because DuckDB reads Latin-1 natively.
    """
    sample = _read_sample(path)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise ImportRejected(
            f"{path.name}: unknown encoding (the file holds NUL bytes: binary, or UTF-16 "
            f"without byte-order mark); {EXPECTED_ENCODINGS}"
        )
    if whole_file:
        is_utf8, is_cp1252, has_c1 = _scan_whole_file(path)
    else:
        complete = len(sample) < SAMPLE_BYTES
        is_utf8 = _decode_strict(sample, "utf-8", final=complete) is not None
        is_cp1252 = _decode_strict(sample, "cp1252", final=True) is not None
        has_c1 = any(0x80 <= b <= 0x9F for b in sample)
    if is_utf8:
        return "utf-8"
    if is_cp1252:
        return "cp1252" if has_c1 else "latin-1"
    raise ImportRejected(
        f"{path.name}: unknown encoding (bytes that are neither UTF-8 nor Windows-1252 text); "
        f"{EXPECTED_ENCODINGS}"
    )


def _first_record(text: str, delimiter: str) -> list[str]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"')
    for row in reader:
        if any(cell.strip() for cell in row):
            return row
    return []


def detect_delimiter(header_line: str) -> str:
    """The delimiter among , ; tab | that splits the header line into the most fields."""
    best, best_fields = ",", 1
    for delimiter in DELIMITERS:
        fields = len(_first_record(header_line, delimiter))
        if fields > best_fields:
            best, best_fields = delimiter, fields
    return best


def _unique_names(names: Sequence[str]) -> list[str]:
    result: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(names):
        name = str(raw).strip().lstrip("\ufeff").strip() or f"column {i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        result.append(name)
    return result


def sniff_file(path: Path) -> SourceFile:
    """Tell a file's format from its content and name; refuse a file that is not what it says.

    A workbook named .csv, a CSV named .xlsx or .parquet, a legacy .xls: each is rejected
    with a message saying what the file really is and what was expected.
    """
    if path.stat().st_size == 0:
        raise ImportRejected(f"{path.name} is empty: expected a header line and at least one data line")
    head = _first_bytes(path)
    suffix = _suffix(path)
    if head.startswith(_OLE_MAGIC):
        raise ImportRejected(
            f"{path.name} is a legacy Excel .xls workbook: save it as .xlsx or export it as CSV"
        )
    if head.startswith(_ZIP_MAGIC):
        if suffix in EXCEL_SUFFIXES:
            return SourceFile(path, "xlsx")
        raise ImportRejected(
            f"{path.name} is a zip archive or an Excel workbook, not a {suffix or 'text'} file: "
            "name a workbook .xlsx, or unzip the archive and import the files inside"
        )
    if head.startswith(_PARQUET_MAGIC):
        if suffix in PARQUET_SUFFIXES or suffix not in SUPPORTED_SUFFIXES:
            return SourceFile(path, "parquet")
        raise ImportRejected(f"{path.name} is a Parquet file, not a {suffix} file: name it .parquet")
    if suffix in EXCEL_SUFFIXES:
        raise ImportRejected(
            f"{path.name} is not an Excel .xlsx workbook (expected a file saved by Excel as .xlsx)"
        )
    if suffix in PARQUET_SUFFIXES:
        raise ImportRejected(f"{path.name} is not a Parquet file (it lacks the PAR1 signature)")
    encoding = detect_encoding(path)
    text = _decode_sample(path, encoding)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    if not first_line:
        raise ImportRejected(f"{path.name} is empty: expected a header line and at least one data line")
    return SourceFile(path, "csv", encoding=encoding, delimiter=detect_delimiter(first_line))


def _decode_sample(path: Path, encoding: str) -> str:
    sample = _read_sample(path)
    python_encoding = {"utf-8": "utf-8-sig", "utf-16": "utf-16"}.get(encoding, encoding)
    return sample.decode(python_encoding, errors="replace")


def csv_header(source: SourceFile) -> list[str]:
    """The header names of a CSV source, made unique and never empty."""
    assert source.encoding is not None and source.delimiter is not None
    text = _decode_sample(source.path, source.encoding)
    return _unique_names(_first_record(text, source.delimiter))


class TempFiles:
    """A temporary folder for transcoded copies, removed when the import ends."""

    def __init__(self) -> None:
        self._dir: Path | None = None

    def path(self, name: str) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="persona-import-"))
        return self._dir / name

    def cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _transcode_to_utf8(source: SourceFile, temp: TempFiles) -> Path:
    # DuckDB reads UTF-8, UTF-16 and Latin-1 only: a Windows-1252 file (with € or curly
    # quotes in 0x80-0x9F) is copied as UTF-8 first, streaming, so memory stays flat.
    target = temp.path(f"{source.path.stem}.utf8.csv")
    assert source.encoding is not None
    with _open_binary(source.path) as raw, target.open("w", encoding="utf-8", newline="") as out:
        reader = codecs.getreader(source.encoding)(raw)
        for chunk in iter(lambda: reader.read(1 << 20), ""):
            out.write(chunk)
    return target


_READ_CSV = (
    "read_csv(?, auto_detect = false, header = true, delim = ?, quote = '\"', escape = '\"', "
    "columns = ?, encoding = ?, ignore_errors = true, store_rejects = true, "
    "rejects_table = 'ingest_rejects', rejects_scan = 'ingest_reject_scans')"
)

_REJECTS_SQL = """
SELECT line, any_value(error_message), any_value(csv_line)
FROM ingest_rejects GROUP BY line ORDER BY line
"""

MALFORMED_EXAMPLES = 5


def _csv_params(staged: StagedFile, temp: TempFiles) -> None:
    source = staged.source
    path, encoding = source.path, source.encoding or "utf-8"
    if encoding == "cp1252":
        path, encoding = _transcode_to_utf8(source, temp), "utf-8"
    staged.params = [
        str(path), source.delimiter, {c: "VARCHAR" for c in staged.columns.values()}, encoding,
    ]


def _stage_csv(source: SourceFile, index: int, temp: TempFiles) -> StagedFile:
    header = csv_header(source)
    staged = StagedFile(
        source=source, label=source.name, index=index,
        columns={name: f"c{i}" for i, name in enumerate(header)},
        from_sql=_READ_CSV, params=[],
    )
    _csv_params(staged, temp)
    return staged


def execute_on_source(
    cur: duckdb.DuckDBPyConnection, staged: StagedFile, sql: str, params: list[Any]
) -> None:
    """Run `sql` (which reads staged.from_sql; its parameters come first) and record the
    lines a CSV reader could not split (malformed lines), with their line numbers.

    The encoding was settled before (sniff_file, then the whole file in scan_file), so
    every line DuckDB sets aside here is a line of the wrong shape.
    """
    try:
        cur.execute(sql, [*staged.params, *params])
    except duckdb.Error as e:
        raise ImportRejected(
            f"{staged.label} cannot be read as a {staged.source.kind} file: {_first_line(str(e))}"
        ) from e
    if staged.source.kind != "csv":
        return
    rejects = cur.execute(_REJECTS_SQL).fetchall()
    cur.execute("DROP TABLE IF EXISTS ingest_rejects")
    cur.execute("DROP TABLE IF EXISTS ingest_reject_scans")
    staged.malformed_count = len(rejects)
    staged.malformed = [
        (int(line), f"{message}: {str(csv_line).strip()[:80]!r}")
        for line, message, csv_line in rejects[:MALFORMED_EXAMPLES]
    ]
    # Before the k-th rejected line (1-based) come line - first_line data lines, k - 1 of
    # them rejected: line - first_line - k + 1 accepted rows.
    staged.reject_positions = [
        int(line) - staged.first_line - k + 1 for k, (line, _m, _c) in enumerate(rejects, start=1)
    ]


def drop_rejects(cur: duckdb.DuckDBPyConnection) -> None:
    cur.execute("DROP TABLE IF EXISTS ingest_rejects")
    cur.execute("DROP TABLE IF EXISTS ingest_reject_scans")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Invalid Input Error", "Possible"))]
    return (useful or lines or ["unreadable"])[0][:200]


def _stage_parquet(cur: duckdb.DuckDBPyConnection, source: SourceFile, index: int) -> StagedFile:
    try:
        described = cur.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(source.path)]).fetchall()
    except duckdb.Error as e:
        raise ImportRejected(f"{source.name} cannot be read as a Parquet file: {_first_line(str(e))}") from e
    header = _unique_names([row[0] for row in described])
    # Positional references (#1, #2...) select the columns without naming them in SQL.
    select = ", ".join(f"CAST(#{i + 1} AS VARCHAR) AS c{i}" for i in range(len(header)))
    return StagedFile(
        source=source, label=source.name, index=index,
        columns={name: f"c{i}" for i, name in enumerate(header)},
        from_sql=f"(SELECT {select} FROM read_parquet(?))",  # noqa: S608 - generated names
        params=[str(source.path)],
        line_word="row", first_line=1,
    )


def _read_workbook(path: Path, nrows: int | None = None) -> dict[str, pd.DataFrame]:
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="openpyxl", nrows=nrows)
    except Exception as e:  # openpyxl raises many kinds on a damaged workbook
        raise ImportRejected(f"{path.name} cannot be read as an Excel workbook: {e}") from e
    return {str(k): v for k, v in sheets.items()}


def _stage_excel(
    cur: duckdb.DuckDBPyConnection, source: SourceFile, index: int, table: str
) -> list[StagedFile]:
    sheets = _read_workbook(source.path)
    staged: list[StagedFile] = []
    first_header: list[str] | None = None
    for number, (sheet, frame) in enumerate(sheets.items()):
        header = _unique_names([str(c) for c in frame.columns])
        if first_header is None:
            first_header = header
        elif header != first_header:
            # Sheets with another layout (a notes sheet, a pivot) are not data.
            continue
        sheet_table = f"{table}_s{number}"
        data = frame.copy()
        data.columns = [f"c{i}" for i in range(len(header))]
        data = data.astype("object").where(data.notna(), None)
        cur.register("ingest_excel_frame", data)
        try:
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {sheet_table} AS SELECT "  # noqa: S608
                + ", ".join(f"CAST(c{i} AS VARCHAR) AS c{i}" for i in range(len(header)))
                + " FROM ingest_excel_frame"
            )
        finally:
            cur.unregister("ingest_excel_frame")
        label = source.name if len(sheets) == 1 else f"{source.name} [sheet {sheet}]"
        staged.append(StagedFile(
            source=source, label=label, index=index + len(staged),
            columns={name: f"c{i}" for i, name in enumerate(header)},
            from_sql=sheet_table, params=[], line_word="row",
        ))
    return staged


def stage_file(
    cur: duckdb.DuckDBPyConnection, source: SourceFile, index: int, table: str, temp: TempFiles
) -> list[StagedFile]:
    """Prepare one source for typing: one StagedFile per file, per data sheet of a workbook.

    `index` is the position of the first returned StagedFile among all staged sources;
    `table` names the TEMP tables a workbook's sheets are copied into (a code constant
    plus a number). Sheets whose header differs from the first sheet's are left out.
    """
    if source.kind == "csv":
        return [_stage_csv(source, index, temp)]
    if source.kind == "parquet":
        return [_stage_parquet(cur, source, index)]
    return _stage_excel(cur, source, index, table)


def _preview_rows(source: SourceFile, n: int) -> Iterator[list[str]]:
    assert source.encoding is not None and source.delimiter is not None
    text = _decode_sample(source.path, source.encoding)
    reader = csv.reader(io.StringIO(text), delimiter=source.delimiter, quotechar='"')
    next(reader, None)
    for i, row in enumerate(reader):
        if i >= n:
            break
        yield row


def preview_file(path: str | Path, n: int = 20) -> pd.DataFrame:
    """The header and first `n` data rows of a file, every value as text (for a mapping form).

    Columns are the file's header names (made unique); `attrs` holds the detected
    format, encoding and delimiter.
    """
    p = Path(path)
    if not p.is_file():
        raise ImportRejected(f"{p}: file not found")
    source = sniff_file(p)
    if source.kind == "csv":
        header = csv_header(source)
        rows = [(row + [""] * len(header))[: len(header)] for row in _preview_rows(source, n)]
        frame = pd.DataFrame(rows, columns=header, dtype="str")
    elif source.kind == "parquet":
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(p).iter_batches(batch_size=max(n, 1)), None)
        frame = batch.to_pandas().head(n).astype("str") if batch is not None else pd.DataFrame()
        frame.columns = _unique_names([str(c) for c in frame.columns])
    else:
        sheets = _read_workbook(p, nrows=n)
        frame = next(iter(sheets.values())) if sheets else pd.DataFrame()
        frame.columns = _unique_names([str(c) for c in frame.columns])
    frame.attrs.update(
        {"kind": source.kind, "encoding": source.encoding, "delimiter": source.delimiter}
    )
    return frame
