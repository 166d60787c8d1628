"""Make text people typed safe to show: Markdown without dangerous links, plain names, PDF markup.

Streamlit's Markdown (without unsafe_allow_html) already shows HTML tags as text; what it
does not decide for us is which link targets are acceptable. A persona bio travels to other
browsers, to Markdown files and to PDFs, so links are limited to web and mail addresses
everywhere; any other target (`javascript:`, `data:`, `vbscript:`...) is left as inert text.
"""

from __future__ import annotations

import re
from html import escape as html_escape
from html import unescape as html_unescape

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})

# Any "](target" is the start of an inline link or image, whatever its label holds (labels
# may nest brackets, so matching the label itself is not reliable).
_LINK_TARGET = re.compile(r"\]\(\s*(<[^>\n]*>|[^)\s]*)")
# <scheme:...> autolinks (CommonMark accepts any scheme there).
_AUTOLINK = re.compile(r"<([^<>\s]+)>")
# [label]: target  (reference definitions, used by [text][label]).
_REFERENCE = re.compile(r"^( {0,3})\[([^\]\n]+)\]:[ \t]*(<[^>\n]*>|\S+)", re.MULTILINE)
# CommonMark backslash escapes inside a link target ("javascript\:").
_BACKSLASH_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
# Characters that start Markdown syntax in a line of plain text.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:])")


def _normalise_target(target: str) -> str:
    """The address a browser would follow: Markdown escapes and HTML entities decoded, and the
    tabs, newlines and spaces browsers drop from a scheme ("java\tscript:") removed."""
    text = target.strip().removeprefix("<").removesuffix(">")
    text = html_unescape(_BACKSLASH_ESCAPE.sub(r"\1", text))
    return re.sub(r"[\x00-\x20\x7f]", "", text)


def is_safe_url(target: str) -> bool:
    """True for http(s) and mailto addresses and for relative targets (no scheme)."""
    cleaned = _normalise_target(target)
    head = re.split(r"[/?#]", cleaned, maxsplit=1)[0]
    if ":" not in head:
        return True  # relative, or protocol-relative ("//host"), which is http(s)
    return head.split(":", 1)[0].lower() in SAFE_SCHEMES


def safe_markdown(text: str | None) -> str:
    """Markdown in which every link or image pointing anywhere but http(s)/mailto is inert text.

    `[click](javascript:alert(1))` becomes `[click]\\(javascript:alert(1))`, which renders as
    the literal text "[click](javascript:alert(1))": readers see what was written, nobody
    can follow it. HTML tags are left for the renderer to show as text (Streamlit does
    without unsafe_allow_html; PDF export escapes them with `pdf_markup`).
    """
    if not text:
        return ""

    def inline(match: re.Match[str]) -> str:
        # "]\(" is no longer link syntax: the label and target show as plain text.
        return match.group(0) if is_safe_url(match.group(1)) else "]\\(" + match.group(0)[2:]

    def autolink(match: re.Match[str]) -> str:
        inner = match.group(1)
        if ":" not in inner or is_safe_url(inner):
            return match.group(0)
        return "\\<" + match.group(0)[1:]

    def reference(match: re.Match[str]) -> str:
        return match.group(0) if is_safe_url(match.group(3)) else match.group(1) + "\\" + match.group(0)[len(match.group(1)):]

    out = _LINK_TARGET.sub(inline, str(text))
    out = _AUTOLINK.sub(autolink, out)
    return _REFERENCE.sub(reference, out)


def plain_markdown(text: str | None) -> str:
    """Text shown literally inside Markdown (a name, a department): every Markdown sign escaped,
    line breaks and runs of spaces folded into one space (narrow no-break spaces of French
    numbers are kept)."""
    if not text:
        return ""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", re.sub(r"[ \t\r\n\f\v]+", " ", str(text)).strip())


def pdf_markup(text: str | None) -> str:
    """Text for a reportlab Paragraph, whose mini-HTML would otherwise read `<a href=...>` or
    `<script>` as markup: everything escaped, line breaks kept."""
    if not text:
        return ""
    return html_escape(str(text), quote=True).replace("\n", "<br/>")
