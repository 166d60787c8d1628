"""What an import did or would do: rows read and written, soft problems, rules applied.

The report is built during the checks (before anything is written), so a UI can show it
and let the user choose to skip the bad rows or stop, then run the import for real.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from persona_engine.errors import ImportRejected

# Called after each step with (steps done, total steps, what was just done); the same
# shape as persona_engine.features' callback so a UI drives both with one progress bar.
ProgressCallback = Callable[[int, int, str], None]

# A few bad rows may be skipped; beyond this share of a file (and more than
# MAX_SKIPPABLE_ROWS rows) the file is more likely in another format or date convention
# than "a few bad rows", and skipping would silently drop a real part of the shop.
MAX_SKIPPABLE_SHARE = 0.05
MAX_SKIPPABLE_ROWS = 10


@dataclass
class SoftProblem:
    """Rows of one file that cannot be imported as they are.

    `message` is one line a marketer can act on, naming the file, the column, how many
    rows, the first example and what was expected.
    """

    file: str
    column: str | None
    problem: str
    count: int
    examples: list[str]
    expected: str
    message: str


@dataclass
class ImportReport:
    """The outcome of `import_files` (committed) or `check_files` (a dry run).

    rows_read: data rows per source (file, or file and sheet).
    rows_written: rows per table written (or that would be written by a dry run).
    problems: soft problems, each with a count and first examples.
    rules: how the data was interpreted, as {rule: rows or orders it concerned}, e.g.
        {"cancellation invoices (C...) imported as cancelled orders": 3836}.
    notes: anything else worth reading (duplicate files, skipped features...).
    """

    preset: str
    files: list[str]
    consent: str
    pseudonymised: bool
    on_soft_errors: str
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    problems: list[SoftProblem] = field(default_factory=list)
    rules: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rows_skipped: int = 0
    committed: bool = False
    import_id: int | None = None
    features: str = "not run"
    seconds: float = 0.0

    @property
    def total_rows_read(self) -> int:
        return sum(self.rows_read.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (stored in imports.report and printed by `--json`)."""
        return asdict(self)

    def summary_lines(self) -> list[str]:
        """A short human summary: what was written, problems, rules, notes."""
        verb = "Imported" if self.committed else "Would import"
        written = ", ".join(f"{n:,} {table}" for table, n in self.rows_written.items() if n)
        lines = [
            f"{verb} {self.total_rows_read:,} rows from {len(self.rows_read)} source(s) "
            f"with preset {self.preset} in {self.seconds:.1f} s: {written or 'nothing'}.",
            f"Consent declared: {describe_consent(self.consent)}.",
        ]
        if self.import_id is not None:
            lines.append(f"Import id {self.import_id}; customer features: {self.features}.")
        for problem in self.problems:
            lines.append(f"Problem: {problem.message}")
        if self.rows_skipped:
            lines.append(f"{self.rows_skipped:,} bad row{'s were' if self.rows_skipped != 1 else ' was'} "
                         "left out.")
        for rule, count in self.rules.items():
            lines.append(f"Rule: {rule}: {count:,}")
        lines.extend(f"Note: {note}" for note in self.notes)
        return lines


def describe_consent(consent: str) -> str:
    """The consent declaration in words, for reports and pages."""
    if consent == "all":
        return "all customers consented to analytics (declared by the importer)"
    if consent == "none":
        return "no customer consented to analytics (declared by the importer)"
    if consent.startswith("column:"):
        return f"per customer, from the column '{consent[len('column:'):]}'"
    return consent


class SoftProblemsFound(ImportRejected):
    """The import stopped on soft problems; `report` lists them all (nothing was written)."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report
