"""EPUB: the book's XHTML chapters in spine order (a zip; read with the HTML extractor).

EbookLib is AGPL, so the container is read here with ``zipfile``: ``META-INF/container.xml``
names the package file, whose spine lists the chapters.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile

from ..errors import CorruptDocumentError, EncryptedDocumentError
from . import Extracted
from .html import decode, extract_markup
from .text import TextBuilder

MAX_CHAPTER_BYTES = 50 << 20


def extract(data: bytes) -> Extracted:
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
        container = book.read("META-INF/container.xml").decode("utf-8", "replace")
        if "META-INF/encryption.xml" in book.namelist():
            raise EncryptedDocumentError("encrypted EPUB (DRM)")
        opf_path = re.search(r'full-path="([^"]+)"', container).group(1)  # type: ignore[union-attr]
        opf = book.read(opf_path).decode("utf-8", "replace")
    except EncryptedDocumentError:
        raise
    except (zipfile.BadZipFile, KeyError, AttributeError, OSError) as exc:
        raise CorruptDocumentError(f"not a readable EPUB ({exc})") from exc
    base = posixpath.dirname(opf_path)
    items = {
        m.group("id"): m.group("href")
        for m in re.finditer(
            r"<item\b(?=[^>]*\bid=\"(?P<id>[^\"]+)\")(?=[^>]*\bhref=\"(?P<href>[^\"]+)\")", opf
        )
    }
    spine = re.findall(r"<itemref\b[^>]*\bidref=\"([^\"]+)\"", opf)
    title_match = re.search(r"<dc:title[^>]*>([^<]+)</dc:title>", opf)
    out = TextBuilder()
    for idref in spine:
        href = items.get(idref)
        if not href:
            continue
        name = posixpath.normpath(posixpath.join(base, href.split("#")[0]))
        try:
            info = book.getinfo(name)
            if info.file_size > MAX_CHAPTER_BYTES:
                raise CorruptDocumentError(f"EPUB chapter {name} is too large")
            markup = decode(book.read(info))
        except KeyError:
            continue
        extract_markup(markup, out)
    return out.result(title=title_match.group(1).strip() if title_match else None)
