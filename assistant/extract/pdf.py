"""PDF: the text layer, page by page, through pypdfium2 (PDFium; Apache-2.0 / BSD-3-Clause).

Per page, PDFium's text in reading order is split into lines; lines repeated at the top or
bottom of most pages (running headers and footers, page numbers) are dropped; a word broken by
a hyphen at a line end is joined; wrapped lines of a paragraph are joined into one line, while
short lines (headings, table rows, list items) stay lines of their own, so a table comes out as
one row of text per line. Each page opens with a ``p. N`` mark. A PDF with no text on any page
is reported as scanned; a password-protected one as encrypted.
"""

from __future__ import annotations

import re
from collections import Counter

from ..errors import CorruptDocumentError, EncryptedDocumentError, NoTextLayerError
from . import Extracted
from .text import TextBuilder, clean_inline, join_hyphenated

EDGE_LINES = 3  # lines at the top and at the bottom of a page that may be a header or footer
REPEATED = 0.5  # ... dropped when found on at least this share of the pages (and on 3 or more)
RUNNING_MAX = 120  # longer lines are text, even when repeated
NUMBER_LINE_MAX = 40  # a page-number line ("Page 7 of 30") is short
WRAPPED = 0.75  # a line at least this share of the page's longest line wraps into the next


def extract(data: bytes) -> Extracted:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise EncryptedDocumentError(
                "encrypted PDF (password-protected); save an unprotected copy"
            ) from exc
        raise CorruptDocumentError(f"damaged or truncated PDF ({exc})") from exc
    try:
        pages: list[list[str]] = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            raw = textpage.get_text_range()
            textpage.close()
            page.close()
            lines = [clean_inline(line) for line in re.split(r"\r\n|\r|\n", raw)]
            pages.append([line for line in lines if line])
        title = (pdf.get_metadata_dict().get("Title") or "").strip()
        if title.lower() in ("", "(anonymous)", "untitled", "(untitled)"):
            title = None
    finally:
        pdf.close()
    if not any(pages):
        raise NoTextLayerError(
            f"no text layer in {len(pages)} page(s) (a scanned PDF?); run OCR on it first"
        )
    pages = drop_running_lines(pages)
    out = TextBuilder()
    for number, lines in enumerate(pages, 1):
        out.page(number)
        for line in paragraphs(join_hyphenated(lines)):
            out.block(line, row=True)
    return out.result(title=title, pages=len(pages))


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", line.lower())


def drop_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Remove headers and footers: a line among the first or last ``EDGE_LINES`` of a page
    whose exact text is at that edge on at least half of the pages, or whose shape (digits
    aside) is and whose number is the page's own (``Page 7 of 30``, ``- 7 -``)."""
    if len(pages) < 3:
        return pages
    exact: Counter[str] = Counter()
    shape: Counter[str] = Counter()
    for lines in pages:
        edges = set(lines[:EDGE_LINES]) | set(lines[-EDGE_LINES:])
        exact.update(edges)
        shape.update({_shape(line) for line in edges})
    need = max(3, REPEATED * len(pages))
    out = []
    for number, lines in enumerate(pages, 1):
        n = len(lines)

        def running(i: int, line: str, number: int = number, n: int = n) -> bool:
            if EDGE_LINES <= i < n - EDGE_LINES:
                return False
            if exact[line] >= need and len(line) <= RUNNING_MAX:
                return True
            numbers = re.findall(r"\d+", line)
            return (
                len(line) <= NUMBER_LINE_MAX
                and shape[_shape(line)] >= need
                and str(number) in numbers
            )

        out.append([line for i, line in enumerate(lines) if not running(i, line)])
    return out


def paragraphs(lines: list[str]) -> list[str]:
    """Wrapped lines joined into paragraphs: a line as long as most of the page's text lines
    continues into the next one; shorter lines (headings, rows, last lines) end where they are."""
    if not lines:
        return []
    width = max(len(line) for line in lines)
    out: list[str] = []
    joining = False
    for line in lines:
        if joining:
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
        joining = len(line) >= WRAPPED * width and width >= 40
    return out
