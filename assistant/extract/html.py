"""HTML through beautifulsoup4 (MIT) with the lxml parser (BSD): the page's main text.

Scripts, styles and page furniture (``nav``, ``header``, ``footer``, ``aside``, forms, hidden
elements) are dropped; when the page has a ``<main>`` or a single ``<article>``, only that is
read. Block elements become paragraphs, ``h1``-``h6`` open sections (``§ Heading > Sub``) and
each table row becomes one line, its cells joined by `` | ``.
"""

from __future__ import annotations

import re

from ..errors import CorruptDocumentError
from . import Extracted
from .text import TextBuilder, clean_inline

DROP = {
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
    "button", "select", "svg", "iframe", "object", "canvas", "head", "menu", "dialog",
}  # fmt: skip
BLOCKS = {
    "p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "pre",
    "blockquote", "figure", "figcaption", "caption", "address", "table", "tbody", "thead",
    "tfoot", "body", "html", "br", "hr", "center", "details", "summary",
}  # fmt: skip
HEADINGS = {f"h{i}": i for i in range(1, 7)}


def decode(data: bytes) -> str:
    """The page as text: its BOM or declared charset, else UTF-8, else cp1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    declared = re.search(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", data[:4096], re.I)
    for encoding in ([declared.group(1).decode()] if declared else []) + ["utf-8", "cp1252"]:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", "replace")


def extract(data: bytes) -> Extracted:
    return extract_markup(decode(data))


def extract_markup(markup: str, out: TextBuilder | None = None) -> Extracted:
    from bs4 import BeautifulSoup, Comment

    try:
        soup = BeautifulSoup(markup, "lxml")
    except Exception as exc:
        raise CorruptDocumentError(f"unreadable HTML ({exc})") from exc
    title_tag = soup.find("title")
    title = clean_inline(title_tag.get_text()) if title_tag else None
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in soup.find_all(_dropped):
        tag.decompose()
    articles = soup.find_all("article")
    root = soup.find("main") or (articles[0] if len(articles) == 1 else None) or soup.body or soup
    out = out or TextBuilder()
    _walk(root, out, [])
    return out.result(title=title or None)


def _dropped(tag: object) -> bool:
    name = getattr(tag, "name", None)
    if name in DROP:
        return True
    attrs = getattr(tag, "attrs", None) or {}
    return (
        "hidden" in attrs
        or attrs.get("aria-hidden") == "true"
        or attrs.get("role") in ("navigation", "banner", "contentinfo", "search")
        or "display:none" in str(attrs.get("style", "")).replace(" ", "")
    )


def _walk(node: object, out: TextBuilder, inline: list[str]) -> None:
    from bs4 import NavigableString, Tag

    for child in getattr(node, "children", ()):
        if isinstance(child, NavigableString):
            inline.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name
        if name in HEADINGS:
            _flush(out, inline)
            out.heading(child.get_text(" "), HEADINGS[name])
        elif name == "tr":
            _flush(out, inline)
            cells = [clean_inline(c.get_text(" ")) for c in child.find_all(["td", "th"])]
            out.block(" | ".join(c for c in cells if c), row=True)
        elif name in BLOCKS:
            _flush(out, inline)
            _walk(child, out, inline)
            _flush(out, inline)
        else:
            _walk(child, out, inline)


def _flush(out: TextBuilder, inline: list[str]) -> None:
    if inline:
        out.block(clean_inline("".join(inline)))
        inline.clear()
