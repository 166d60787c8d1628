"""Import a shop's own data: CSV, Parquet or Excel files, through a preset, atomically.

Presets: `generic` (documented layout per table, or any layout with a column mapping;
includes the minimal transaction log), `online-retail` (UCI Online Retail and Online
Retail II line files) and `shopify` (orders export). An import replaces the shop's data
in one transaction and is recorded in `imports`; a rejected import changes nothing.
"""

from persona_engine.ingest.engine import (
    PRESETS,
    check_files,
    guess_preset,
    import_files,
    list_imports,
    parse_consent,
)
from persona_engine.ingest.erasure import erase_customer, find_customer, list_erasures
from persona_engine.ingest.mapping import GENERIC_LAYOUTS, load_mapping, propose_mapping
from persona_engine.ingest.quality import DataQuality, data_quality
from persona_engine.ingest.report import (
    ImportReport,
    ProgressCallback,
    SoftProblem,
    SoftProblemsFound,
    describe_consent,
)
from persona_engine.ingest.sources import expand_inputs, preview_file, sniff_file
from persona_engine.ingest.writer import stable_id

__all__ = [
    "GENERIC_LAYOUTS",
    "PRESETS",
    "DataQuality",
    "ImportReport",
    "ProgressCallback",
    "SoftProblem",
    "SoftProblemsFound",
    "check_files",
    "data_quality",
    "describe_consent",
    "erase_customer",
    "expand_inputs",
    "find_customer",
    "guess_preset",
    "import_files",
    "list_erasures",
    "list_imports",
    "load_mapping",
    "parse_consent",
    "preview_file",
    "propose_mapping",
    "sniff_file",
    "stable_id",
]
