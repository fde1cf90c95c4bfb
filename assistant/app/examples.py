"""Example questions, drawn from the indexed documents themselves."""

from __future__ import annotations

import re
from collections import Counter
from itertools import zip_longest

from ..config import Settings
from ..types import Document

EXAMPLES_MAX = 4

_COUNTED = re.compile(r"\b\d[\d,.]*\s+(?:[a-z]+-)?([a-z]{3,}s)\b")
_ENTITY = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_NOT_ENTITIES = {
    "The", "A", "An", "In", "On", "At", "It", "This", "That", "But", "And", "He", "She", "They",
    "We", "I", "If", "As", "For", "To", "Of", "By", "With", "From", "After", "Before", "When",
    "Then", "There", "Their", "His", "Her", "Its", "Our", "Absent", "Thursday", "Wednesday",
    "Monday", "Tuesday", "Friday", "Saturday", "Sunday", "January", "February", "March",
    "April", "May", "June", "July", "August", "September", "October", "November", "December",
}  # fmt: skip


_UNITS = {
    "degrees", "minutes", "hours", "days", "weeks", "months", "years", "seconds", "percent",
    "dollars", "euros", "pounds", "metres", "meters", "kilometres", "kilometers", "miles",
    "grams", "kilograms", "tonnes", "tons", "litres", "liters", "pages", "times", "watts",
    "kilowatts", "volts", "amps", "bytes", "points", "inches", "feet", "centimetres",
}  # fmt: skip
EXAMPLE_CHARS = 60  # an example is a short question, shown whole on its chip


def _names(text: str, title: str) -> Counter:
    """Capitalized names mentioned inside sentences (a capital word that only ever starts a
    sentence is not a name), not those of the title; a longer name that holds a frequent
    shorter one gets its count ("Kim Jong Un" over "Kim")."""
    title_words = {w.lower() for w in re.findall(r"\w+", title)}
    names: Counter = Counter()
    for m in _ENTITY.finditer(text):
        name = m.group(0)
        before = text[: m.start()].rstrip(" \t")
        if name in _NOT_ENTITIES or len(name) <= 2 or not before or before[-1] in '.!?\n:"“':
            continue
        if {w.lower() for w in name.split()} <= title_words and len(title_words) <= 3:
            continue
        names[name] += 1
    for name in list(names):
        longer = [n for n in names if n != name and n.startswith(name + " ") and names[n] >= 2]
        if longer:
            best = max(longer, key=lambda n: names[n])
            names[best] += names.pop(name)
    return names


def example_questions(settings: Settings, info: dict, limit: int = EXAMPLES_MAX) -> list[str]:
    """A few short questions built from the indexed documents themselves (not a fixed list),
    phrased as a person would ask them and short enough to show whole.

    For each document, largest first: "How many <things> are there?" from a counted noun in
    it, and "What is said about <name>?" from its most mentioned name; a
    document with neither offers "Summarize “<title>”" when its title is short.
    """
    from ..corpus import read_document, source_path
    from ..sources import is_extracted, stored_text

    docs = sorted(
        (info.get("documents") or {}).items(), key=lambda kv: (-kv[1].get("chunks", 0), kv[0])
    )
    per_doc: list[list[str]] = []
    for doc_id, meta in docs[:limit]:
        out: list[str] = []
        per_doc.append(out)
        if is_extracted(doc_id):
            # Never extract in the web server: the stored text, once an index is loaded.
            stored = stored_text(settings.seeds_dir, doc_id)
            if not stored:
                continue
            doc = Document(doc_id, meta.get("title", doc_id), stored, "")
        else:
            try:
                doc = read_document(doc_id, source_path(settings.seeds_dir, doc_id), 2_000_000)
            except (OSError, ValueError):
                continue
            if isinstance(doc, str):
                continue
        title = " ".join(meta.get("title", doc.title).split())
        counted_noun = next(
            (m.group(1) for m in _COUNTED.finditer(doc.text) if m.group(1) not in _UNITS), None
        )
        if counted_noun:
            out.append(f"How many {counted_noun} are there?")
        names = _names(doc.text, title)
        name = next((n for n, _ in names.most_common(3) if len(n) <= 30), None)
        if name:
            out.append(f"What is said about {name}?")
        elif not counted_noun and len(title) <= 40 and not title.endswith("…"):
            out.append(f"Summarize “{title}”")
    # Round-robin, so that several documents are represented when there are several.
    ordered = [q for row in zip_longest(*per_doc) for q in row if q]
    shown = [q for q in dict.fromkeys(ordered) if len(q) <= EXAMPLE_CHARS]
    return shown[:limit]
