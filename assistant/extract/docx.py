"""Word ``.docx`` through python-docx (MIT): paragraphs and tables in document order.

Headings (the ``Heading N`` and ``Title`` styles) open sections with ``§ Heading > Subheading``
marks; each table row becomes one line, its cells joined by `` | ``.
"""

from __future__ import annotations

import io
import re
import zipfile

from ..errors import CorruptDocumentError, EncryptedDocumentError
from . import Extracted
from .text import TextBuilder, clean_inline


def extract(data: bytes) -> Extracted:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":  # OLE container: encrypted OOXML
        raise EncryptedDocumentError("encrypted Word document (password-protected)")
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise CorruptDocumentError(f"not a readable .docx ({exc})") from exc
    except Exception as exc:  # python-docx raises its own PackageNotFoundError, lxml errors
        raise CorruptDocumentError(f"not a readable .docx ({type(exc).__name__}: {exc})") from exc
    levels = _heading_levels(document)  # style id -> heading level, looked up once
    out = TextBuilder()
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(child, document)
            text = clean_inline(paragraph.text)
            level = levels.get(child.style) if child.style else None
            if level is not None:
                out.heading(text, level)
            else:
                out.block(text)
        elif tag == "tbl":
            for row in Table(child, document).rows:
                cells = []
                for cell in row.cells:
                    value = clean_inline(cell.text)
                    if value and (not cells or cells[-1] != value):  # merged cells repeat
                        cells.append(value)
                out.block(" | ".join(cells), row=True)
    title = (document.core_properties.title or "").strip() or None
    return out.result(title=title)


def _heading_levels(document: object) -> dict[str, int]:
    """``{style id: level}`` of the document's heading styles (``Title`` is level 0)."""
    levels: dict[str, int] = {}
    for style in document.styles:  # type: ignore[attr-defined]
        name = (getattr(style, "name", "") or "").lower()
        found = re.fullmatch(r"heading (\d)", name)
        if name == "title":
            levels[style.style_id] = 0
        elif found:
            levels[style.style_id] = int(found.group(1))
    return levels
