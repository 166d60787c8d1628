"""Numbers as people read them in each language: 1,234.5 in English, 1 234,5 in French."""

from __future__ import annotations

from ui.i18n import current_language

NARROW_NBSP = "\u202f"
CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def _localise(text: str) -> str:
    if current_language() == "fr":
        return text.replace(",", NARROW_NBSP).replace(".", ",")
    return text


def number(value: float | int | None, decimals: int = 0) -> str:
    if value is None:
        return "–"
    return _localise(f"{value:,.{decimals}f}")


def money(value: float | None, currency: str | None, decimals: int = 0) -> str:
    if value is None:
        return "–"
    symbol = CURRENCY_SYMBOLS.get(currency or "", currency or "")
    amount = number(value, decimals)
    if current_language() == "fr":
        return f"{amount}{NARROW_NBSP}{symbol}".strip()
    return f"{symbol}{amount}" if len(symbol) == 1 else f"{amount} {symbol}".strip()


def percent(value: float | None, decimals: int = 1) -> str:
    if value is None:
        return "–"
    text = number(value * 100, decimals)
    return f"{text}{NARROW_NBSP}%" if current_language() == "fr" else f"{text}%"


def signed_percent(value: float | None, decimals: int = 1) -> str:
    if value is None:
        return ""
    sign = "+" if value >= 0 else "-"  # ASCII minus: st.metric reads it to colour the delta
    return sign + percent(abs(value), decimals)
