"""Turn a seed file into text: one extractor module per format, behind a small registry.

``FORMATS`` maps a file extension to a format name, and ``EXTRACTORS`` a format name to the
module that handles it; adding a format is one module and one line here. Every extractor
returns an ``Extracted``: the text (the source of truth for that document's citations), its
``marks`` (where pages and sections start, with the locator a citation shows: "p. 4",
"§ Warranty > Claims") and its ``breaks`` (section starts that chunks must not straddle).

Plain ``.txt``/``.md`` files are read by ``corpus.read_document`` and verified against the file
on disk; the other formats are extracted in a worker process with time and memory limits
(``sandbox.py``) and verified against the text stored in the index.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib import metadata

Mark = tuple[int, "int | None", str]  # (offset into the text, page or None, locator)

PLAIN = {".txt": "txt", ".md": "md"}
FORMATS = {
    **PLAIN,
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".epub": "epub",
}
# format -> (module under assistant.extract, version of our extraction logic, parser package)
EXTRACTORS = {
    "pdf": ("pdf", 1, "pypdfium2"),
    "docx": ("docx", 1, "python-docx"),
    "html": ("html", 1, "beautifulsoup4"),
    "epub": ("epub", 1, "beautifulsoup4"),
}


@dataclass
class Extracted:
    """A document's text as extracted, with where its pages and sections start."""

    text: str
    format: str
    extractor: str = ""
    title: str | None = None
    pages: int | None = None
    marks: list[Mark] = field(default_factory=list)
    breaks: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "format": self.format,
            "extractor": self.extractor,
            "title": self.title,
            "pages": self.pages,
            "marks": [list(m) for m in self.marks],
            "breaks": list(self.breaks),
        }

    @classmethod
    def from_json(cls, data: dict) -> Extracted:
        return cls(
            text=data["text"],
            format=data["format"],
            extractor=data.get("extractor", ""),
            title=data.get("title"),
            pages=data.get("pages"),
            marks=[(int(a), p, str(loc)) for a, p, loc in data.get("marks", [])],
            breaks=[int(b) for b in data.get("breaks", [])],
        )


def format_of(name: str) -> str | None:
    """The format of a file name (by extension), or None when it is not supported."""
    lower = name.lower()
    dot = lower.rfind(".")
    return FORMATS.get(lower[dot:]) if dot >= 0 else None


def is_plain(fmt: str | None) -> bool:
    return fmt in PLAIN.values()


def supported_extensions() -> tuple[str, ...]:
    return tuple(FORMATS)


_versions: dict[str, str] = {}


def extractor_version(fmt: str) -> str:
    """``"<format>/<our version> <parser> <parser version>"``: recorded per document, so a new
    extractor or parser version re-extracts (and re-embeds) the documents of that format."""
    if is_plain(fmt):
        return ""
    if fmt not in _versions:
        _module, ours, package = EXTRACTORS[fmt]
        try:
            theirs = metadata.version(package)
        except metadata.PackageNotFoundError:
            theirs = "missing"
        _versions[fmt] = f"{fmt}/{ours} {package} {theirs}"
    return _versions[fmt]


def extractor_module(fmt: str) -> str:
    """The module that extracts ``fmt``: a name under this package, or a full dotted path."""
    name = EXTRACTORS[fmt][0]
    return name if "." in name else f"{__name__}.{name}"


def extract_path(path: str, fmt: str, module: str | None = None) -> Extracted:
    """Extract ``path`` in this process (the sandbox worker calls this). Raises ``ExtractError``."""
    module = importlib.import_module(module or extractor_module(fmt))
    with open(path, "rb") as handle:
        data = handle.read()
    out: Extracted = module.extract(data)
    out.format, out.extractor = fmt, extractor_version(fmt)
    return out
