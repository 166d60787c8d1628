"""Language catalogues: same keys in English and French, and pages hold no bare UI text."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ui.i18n import catalogue

ROOT = Path(__file__).resolve().parents[1]


def test_catalogues_have_the_same_keys():
    en, fr = catalogue("en"), catalogue("fr")
    assert set(en) - set(fr) == set(), "missing in fr.toml"
    assert set(fr) - set(en) == set(), "missing in en.toml"
    assert len(en) > 50


def test_placeholders_match_between_languages():
    en, fr = catalogue("en"), catalogue("fr")
    for key, text in en.items():
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", fr[key])), key


def test_pages_take_their_words_from_the_catalogue():
    # Calls like st.title("...") / st.button("...") with a literal string would skip translation.
    ui_calls = {"title", "header", "subheader", "caption", "write", "markdown", "button", "info",
                "warning", "error", "success", "metric", "selectbox", "multiselect", "text_input",
                "number_input", "date_input", "checkbox", "radio", "toggle", "expander", "tabs"}
    offenders = []
    for path in [*ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ui_calls:
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.strip():
                    offenders.append(f"{path.name}:{node.lineno} {first.value[:40]!r}")
    assert offenders == []
