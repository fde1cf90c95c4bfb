"""The web chat: a Gradio 6 app over the library (``ask_stream``, ``retrieve``, ``build_index``).

The app holds no answering logic of its own. It renders what the library returns, escaping every
piece of corpus text before adding its own markup (Gradio's sanitizer is a second line, not the
first), saves uploads into the seeds folder under safe names, rebuilds the index with progress,
and exposes ``/ask`` and ``/retrieve`` as named API endpoints for ``gradio_client``.

Gradio is imported inside ``build_app`` and ``launch`` only, so the rendering and upload helpers
can be imported and tested without it.
"""

from __future__ import annotations

import html
import logging
import os
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path
from typing import Any

from .answer.render import split_quote
from .config import Settings
from .documents import DocumentError, add_document_route, check_document, find_duplicate
from .errors import AssistantError, IndexLockedError
from .extract import format_of, is_plain, supported_extensions
from .sources import outdated_sources, with_outdated_notice
from .types import Answer, Citation, Document, Passage, counted

log = logging.getLogger(__name__)

DOCUMENT_ROUTE = "/document"
UPLOAD_EXTENSIONS = supported_extensions()  # .txt .md .pdf .docx .html .htm .xhtml .epub
NAME_MAX = 80
CONTEXT_CHARS = 280
EXAMPLES_MAX = 4

CSS = """
.answer .cite { font-weight: 600; color: var(--color-accent); }
.answer .searched, .answer .notice, .excerpt .where { font-size: 0.82em; opacity: 0.75; }
.answer .excerpts { margin-top: 0.5em; }
.answer details.excerpt { border-left: 3px solid var(--color-accent); padding: 0.1em 0.6em;
  margin: 0.35em 0; }
.answer details.excerpt summary { cursor: pointer; }
.answer details.excerpt .passage { margin: 0.4em 0 0.2em 0; font-size: 0.92em; }
.answer mark.quote { background: #fde68a; color: inherit; padding: 0 0.1em; }
.answer.abstained { border-left: 4px solid #f59e0b; padding-left: 0.7em; }
.answer.abstained .verdict { font-weight: 600; }
.answer.abstained details.excerpt { border-left-color: #9ca3af; }
.answer.error { border-left: 4px solid #ef4444; padding-left: 0.7em; }
#status-banner .banner { border-radius: 6px; padding: 0.5em 0.8em; }
#status-banner .banner.warn { background: #fef3c7; color: #78350f; }
#status-banner .banner.ok { font-size: 0.85em; opacity: 0.8; }
.docs-table td, .docs-table th { padding: 0.2em 0.8em 0.2em 0; text-align: left; }
.docs-table tr.skipped { color: #b45309; }
.answer .files { font-size: 0.82em; margin: 0.1em 0 0.3em 0; }
.answer .outdated { color: #b45309; font-size: 0.82em; }
/* Example questions wrap instead of being cut with an ellipsis mid-word. */
#examples button, #examples button * { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; }
"""


# --- rendering: every corpus string goes through _esc before any markup is added ----------


def _esc(text: object) -> str:
    """HTML-escaped text with line breaks as ``<br>``: no raw newline reaches the markdown
    renderer, so the whole message stays one HTML block and corpus text is never parsed as
    markdown either."""
    escaped = html.escape(str(text), quote=True)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def _clip(text: str, n: int, left: bool = False) -> str:
    if len(text) <= n:
        return text
    return "…" + text[-n:].lstrip() if left else text[:n].rstrip() + "…"


def _markers(escaped: str) -> str:
    """``[n]`` citation markers in already-escaped text, styled."""
    return re.sub(r"\[(\d{1,3})\]", r'<span class="cite">[\1]</span>', escaped)


def render_citation(c: Citation, open_: bool = False) -> str:
    """One numbered excerpt: title and location, then the quote highlighted in its passage."""
    a = max(0, c.start - c.passage_start)
    b = max(a, c.end - c.passage_start)
    before = _clip(c.passage[:a], CONTEXT_CHARS, left=True)
    after = _clip(c.passage[b:], CONTEXT_CHARS)
    quote = c.passage[a:b] or c.quote
    where = f"{_esc(c.locator)} · " if c.locator else ""
    return (
        f'<details class="excerpt"{" open" if open_ else ""}>'
        f'<summary><span class="cite">[{c.n}]</span> <b>{_esc(c.title)}</b> '
        f'<span class="where">{_esc(c.source)} · {where}chars {c.start}-{c.end}</span></summary>'
        f'<div class="passage">{_esc(before)}<mark class="quote">'
        f"{_quote_html(c) if quote == c.quote else _esc(quote)}</mark>"
        f"{_esc(after)}</div>{render_file_links(c.source, c.page)}</details>"
    )


def document_url(doc_id: str, page: int | None = None) -> str:
    """The app's link to a seed document (``#page=N`` opens a PDF viewer at that page)."""
    from urllib.parse import quote

    return f"{DOCUMENT_ROUTE}/{quote(doc_id, safe='/')}" + (f"#page={page}" if page else "")


def render_file_links(doc_id: str, page: int | None = None) -> str:
    """Links to the original file: open a PDF at the page in a new tab; download the file."""
    links = []
    if page and format_of(doc_id) == "pdf":
        links.append(
            f'<a class="open-page" href="{_esc(document_url(doc_id, page))}" target="_blank" '
            f'rel="noopener noreferrer">open the PDF at p. {int(page)}</a>'
        )
    links.append(
        f'<a class="download" href="{_esc(document_url(doc_id))}" download>download the file</a>'
    )
    return f'<div class="files">{" · ".join(links)}</div>'


def _quote_html(c: Citation) -> str:
    """The quote, escaped, with the answering phrase (when located) in bold."""
    before, phrase, after = split_quote(c)
    return _esc(before) + (f"<b>{_esc(phrase)}</b>{_esc(after)}" if phrase else "")


OUTDATED = "the file changed since the index was built: this is its old text; rebuild the index"


def render_match(p: Passage, outdated: bool = False) -> str:
    """A closest match shown under an abstention (no quote to highlight); ``outdated`` when
    the file no longer holds this text (edited since the build)."""
    note = f' <span class="outdated">({OUTDATED})</span>' if outdated else ""
    return (
        f'<details class="excerpt match{" outdated-match" if outdated else ""}">'
        f"<summary><b>{_esc(p.title)}</b> "
        f'<span class="where">{_esc(p.source)} · chars {p.start}-{p.end}</span>{note}</summary>'
        f'<div class="passage">{_esc(_clip(p.text, 2 * CONTEXT_CHARS))}</div></details>'
    )


def render_answer(answer: Answer, outdated: frozenset[str] | set[str] = frozenset()) -> str:
    """The chat message for a finished answer (one line of HTML, corpus text escaped);
    ``outdated``: sources whose file no longer holds the text the index shows."""
    parts: list[str] = []
    if answer.abstained:
        parts.append(
            '<div class="answer abstained answer-final">'
            '<p class="verdict">Not found in the documents.</p>'
            f'<p class="answer-text">{_esc(answer.text)}</p>'
        )
    else:
        mode = _esc(answer.mode)
        text = _markers(_esc(answer.text))
        if answer.mode == "extractive" and answer.kind == "fact":
            text = " ".join(
                f'“{_quote_html(c)}” <span class="cite">[{c.n}]</span>' for c in answer.citations
            )
        parts.append(
            f'<div class="answer answer-final mode-{mode}"><p class="answer-text">{text}</p>'
        )
        if answer.kind == "fact" and answer.mode == "extractive":
            parts.append(f'<p class="confidence">confidence {answer.confidence:.0%}</p>')
    if answer.query and answer.question and answer.query != answer.question:
        parts.append(f'<p class="searched">searched for: {_esc(answer.query)}</p>')
    for notice in answer.notices:
        parts.append(f'<p class="notice">note: {_esc(notice)}</p>')
    if answer.abstained:
        if answer.passages:
            parts.append('<p class="closest">Closest matches:</p><div class="excerpts">')
            parts.extend(render_match(p, p.source in outdated) for p in answer.passages[:3])
            parts.append("</div>")
    elif answer.citations:
        parts.append('<div class="excerpts">')
        parts.extend(render_citation(c, open_=i == 0) for i, c in enumerate(answer.citations))
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def render_partial(text: str) -> str:
    """The answer while it streams in."""
    return (
        f'<div class="answer streaming"><p class="answer-text">{_markers(_esc(text))} …</p></div>'
    )


def render_question(text: str) -> str:
    return f'<div class="question">{_esc(text)}</div>'


def render_error(message: str) -> str:
    return f'<div class="answer error answer-final"><p>{_esc(message)}</p></div>'


def _how_to_add(info: dict) -> str:
    folder = info.get("seeds_dir") or "seeds"
    return (
        "Add one in the <b>Documents</b> tab (PDF, Word .docx, HTML, EPUB, .txt or .md), or put "
        f"files into the seeds folder <code>{_esc(folder)}</code> (or point "
        "<code>ASSISTANT_SEEDS_DIR</code> at your own folder)"
    )


def render_status(info: dict) -> str:
    """The banner above the chat: what to do next when there is nothing to search yet, a
    warning with the fix when the index is missing or stale."""
    files = info.get("seed_files")
    if files == 0 and not info.get("documents"):
        return (
            '<div class="banner warn empty"><b>No documents yet.</b> '
            f"{_how_to_add(info)}; then press <b>Build the index</b>.</div>"
        )
    if not info.get("built"):
        held = f"The {counted(files, 'file')} in" if files else "The documents in"
        have = "has" if files == 1 else "have"
        return (
            f'<div class="banner warn"><b>No index yet.</b> {held} the seeds folder {have} '
            "not been indexed, so questions cannot be answered. Press "
            "<b>Build the index</b> (or run <code>assistant build</code>).</div>"
        )
    if info.get("error"):
        return (
            f'<div class="banner warn"><b>The index cannot be read:</b> {_esc(info["error"])}. '
            "Press <b>Build the index</b>.</div>"
        )
    if info.get("stale"):
        changes = info.get("changes") or []
        shown = ", ".join(changes[:5]) + (
            f" and {len(changes) - 5} more" if len(changes) > 5 else ""
        )
        return (
            '<div class="banner warn"><b>The index is out of date:</b> the documents changed '
            f"since it was built ({_esc(shown)}). Answers may miss the changes until you press "
            "<b>Build the index</b>.</div>"
        )
    return (
        f'<div class="banner ok">{counted(len(info.get("documents", {})), "document")}, '
        f"{counted(int(info.get('chunks', 0)), 'chunk')} indexed with "
        f"{_esc(info.get('model', ''))}.</div>"
    )


def render_documents(info: dict) -> str:
    """The documents panel: index facts, then one row per indexed document."""
    if not info.get("built"):
        if info.get("seed_files") == 0:
            return f"<p>No index has been built yet, and there are no documents. {_how_to_add(info)}.</p>"
        return "<p>No index has been built yet: press <b>Build the index</b>.</p>"
    docs = info.get("documents", {})
    rows = "".join(
        f"<tr><td>{_esc(d.get('title', ''))}</td><td><code>{_esc(doc_id)}</code></td>"
        f"<td>{_esc(d.get('format') or format_of(doc_id) or '')}</td>"
        f"<td>{int(d['pages']) if d.get('pages') else ''}</td>"
        f"<td>{int(d.get('chunks', 0))}</td><td></td></tr>"
        for doc_id, d in sorted(docs.items())
    )
    rows += "".join(
        f'<tr class="skipped"><td></td><td><code>{_esc(name)}</code></td>'
        f"<td>{_esc(format_of(name) or '')}</td><td></td><td>0</td>"
        f"<td>skipped: {_esc(reason)}</td></tr>"
        for name, reason in sorted((info.get("skipped") or {}).items())
    )
    state = "out of date: rebuild to include the changes" if info.get("stale") else "up to date"
    return (
        '<div class="docs">'
        f"<p><b>Index:</b> model <code>{_esc(info.get('model', ''))}</code>, "
        f"{counted(int(info.get('chunks', 0)), 'chunk')}, {counted(len(docs), 'document')}, built "
        f"{_esc(info.get('created', ''))}; {state}.</p>"
        '<table class="docs-table"><thead><tr><th>title</th><th>file</th><th>format</th>'
        "<th>pages</th><th>chunks</th><th>note</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></div>"
    )


# --- uploads ----------------------------------------------------------------------------------


class UploadError(ValueError):
    """An upload was refused; the message says why."""


NAME_BYTES = 200  # UTF-8 bytes: under the 255 of common file systems, with room for "-2"
# Names Windows reserves, with any extension (``con.txt`` cannot be created or opened there).
_RESERVED = re.compile(r"^(?:con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(?:\..*)?$", re.I)


def _name_char(ch: str) -> str:
    """Letters, marks and digits of any script, ``_``, ``-`` and ``.`` are kept; anything else
    (separators, controls, bidi overrides, shell and Windows specials, spaces) becomes ``-``."""
    if ch in "-_." or unicodedata.category(ch)[0] in "LMN":
        return ch
    return "-"


def safe_filename(name: str) -> str:
    """A plain file name for an upload: no folders, no hidden names, a supported extension.

    ``"../../etc/passwd.txt"`` becomes ``"passwd.txt"``; ``".bashrc.md"`` becomes
    ``"bashrc.md"``; ``"Überblick (2024).pdf"`` becomes ``"Überblick-2024.pdf"``: letters
    of every script are kept, other characters become ``-``. Names Windows reserves
    (``con.txt``, ``aux.md``) are refused.
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = unicodedata.normalize("NFC", base).strip()
    stem, dot, ext = base.rpartition(".")
    ext = ("." + ext.lower()) if dot else ""
    if ext not in UPLOAD_EXTENSIONS:
        raise UploadError(
            f"only {' '.join(UPLOAD_EXTENSIONS)} files can be added, not {_shown(base)}"
        )
    stem = "".join(_name_char(ch) for ch in stem)
    stem = re.sub(r"\.{2,}", ".", stem)
    stem = re.sub(r"-{2,}", "-", stem).strip(".-_ ")
    while stem and (len(stem) > NAME_MAX - len(ext) or len(stem.encode()) > NAME_BYTES):
        stem = stem[:-1]
    stem = stem.rstrip(".-_ ")
    if not stem:
        stem = "document"
    if _RESERVED.match(stem):
        raise UploadError(
            f"{_shown(base)} is a name Windows reserves for a device; rename the file"
        )
    return stem + ext


def _shown(name: str) -> str:
    return repr(name[:60]) if name else "a file without a name"


def _size(n: int) -> str:
    """A size that never reads as equal to the limit it exceeds: exact bytes under 10 MB."""
    return f"{n:,} bytes" if n < 10 * 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def check_upload(data: bytes, max_kb: int) -> str:
    """The upload's text, or ``UploadError`` if it is too large, empty, binary or not UTF-8."""
    if len(data) > max_kb * 1024:
        raise UploadError(
            f"the file is {_size(len(data))}, over the limit of {max_kb} KB "
            f"({max_kb * 1024:,} bytes; ASSISTANT_MAX_UPLOAD_KB)"
        )
    if not data.strip():
        raise UploadError("the file is empty")
    if b"\x00" in data:
        raise UploadError("the file is binary (it contains NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UploadError(
            f"the file is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8"
        ) from exc


def save_upload(
    data: bytes, original_name: str, settings: Settings, known: dict[str, str] | None = None
) -> Path:
    """Write an accepted upload into the seeds folder under a safe, new name; return its path.

    A file identical to a seed document (same sha256; ``known`` maps ids to recorded hashes)
    is refused, naming that document.

    An existing file is never overwritten: ``notes.txt`` becomes ``notes-2.txt`` and so on.
    """
    name = safe_filename(original_name)
    fmt = format_of(name)
    if is_plain(fmt):
        check_upload(data, settings.max_upload_kb)
    else:
        if len(data) > settings.max_upload_kb * 1024:
            check_upload(data, settings.max_upload_kb)  # the size message
        try:
            check_document(data, fmt or "")
        except DocumentError as exc:
            raise UploadError(str(exc)) from exc
    duplicate = find_duplicate(data, settings, known)
    if duplicate is not None:
        raise UploadError(f"the same file is already in the documents as {duplicate}")
    root = Path(settings.seeds_dir)
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    stem, ext = os.path.splitext(name)
    for i in range(1, 1000):
        candidate = root / (name if i == 1 else f"{stem}-{i}{ext}")
        if candidate.parent.resolve() != real_root:  # pragma: no cover - name has no separators
            raise UploadError("refused: the file name points outside the seeds folder")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return candidate
    raise UploadError(f"too many files named like {name!r} already")


_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


# --- example questions, drawn from the indexed documents ---------------------------------------

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
    from .corpus import read_document, source_path
    from .sources import is_extracted, stored_text

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


# --- the app ------------------------------------------------------------------------------------


def _status(settings: Settings) -> dict:
    """The index status plus the seeds folder's facts (for the empty state)."""
    from .documents import seed_documents
    from .store.status import index_status

    seeds = {
        "seeds_dir": str(Path(settings.seeds_dir).resolve()),
        "seed_files": len(seed_documents(settings)),
    }
    try:
        return {**index_status(settings), **seeds}
    except AssistantError as exc:
        return {"built": True, "error": str(exc), "documents": {}, "stale": True, **seeds}
    except (OSError, ValueError, KeyError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        return {"built": True, "error": error, "documents": {}, **seeds}


def _needs_build(info: dict) -> bool:
    return not info.get("built") or bool(info.get("stale")) or bool(info.get("error"))


CHAT_KEEP = 100  # messages kept in the browser's storage (50 questions and answers)


def build_app(settings: Settings | None = None) -> Any:
    """The Gradio Blocks app for ``settings`` (not launched)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from .answer import ask, ask_stream
    from .build import build_index
    from .retrieval import retrieve

    settings = settings or Settings()
    build_lock = threading.Lock()

    # -- event handlers ---------------------------------------------------------------------

    def refresh() -> tuple:
        info = _status(settings)
        samples = [[q] for q in example_questions(settings, info)] if info.get("built") else []
        needs = _needs_build(info) and bool(info.get("seed_files"))
        return (
            render_status(info),
            gr.Button(visible=needs),  # one "Build the index" button at a time: this one
            render_documents(info),  # when the index needs it, the Documents tab's otherwise
            gr.Dataset(  # no chips before there is anything to ask about
                samples=samples or [["What are these documents about?"]],
                visible=bool(info.get("built")) and not info.get("error"),
            ),
            gr.Button(visible=not needs and bool(info.get("seed_files"))),
        )

    def saved_chat(chat: list, turns: list) -> dict:
        """What the browser keeps (localStorage, encrypted by Gradio): the last messages, and
        the turns' plain text HTML-escaped, so that nothing the browser receives is markup."""
        turns = [[html.escape(q), html.escape(a)] for q, a in list(turns)[-CHAT_KEEP // 2 :]]
        return {"chat": list(chat)[-CHAT_KEEP:], "turns": turns}

    def respond(message: str, chat: list, turns: list) -> Iterator[tuple]:
        message = (message or "").strip()
        chat = list(chat or [])
        turns = list(turns or [])
        if not message:
            yield gr.skip(), chat, turns, gr.skip()
            return
        chat.append({"role": "user", "content": render_question(message)})
        chat.append({"role": "assistant", "content": render_partial("")})
        yield "", list(chat), list(turns), gr.skip()
        try:
            for text, answer in ask_stream(message, [tuple(t) for t in turns], settings):
                if answer is None:
                    chat[-1] = {"role": "assistant", "content": render_partial(text)}
                    yield "", list(chat), list(turns), gr.skip()
                    continue
                outdated = outdated_sources(answer, settings.seeds_dir)
                content = render_answer(with_outdated_notice(answer, outdated), outdated)
                chat[-1] = {"role": "assistant", "content": content}
                turns.append([message, answer.text])
        except (AssistantError, ValueError) as exc:
            chat[-1] = {"role": "assistant", "content": render_error(str(exc))}
        yield "", list(chat), list(turns), saved_chat(chat, turns)

    def restore(saved: Any) -> tuple:
        """The conversation this browser kept, shown again after a reload."""
        if not isinstance(saved, dict):
            return [], []
        chat = [
            m
            for m in saved.get("chat") or []
            if isinstance(m, dict) and m.get("role") in ("user", "assistant")
        ]
        turns = [
            [html.unescape(str(t[0])), html.unescape(str(t[1]))]
            for t in saved.get("turns") or []
            if isinstance(t, (list, tuple)) and len(t) == 2
        ]
        return chat, turns

    def new_chat() -> tuple:
        return [], [], "", {"chat": [], "turns": []}

    def pick_example(sample: Any) -> str:
        if isinstance(sample, (list, tuple)):
            return str(sample[0]) if sample else ""
        return str(sample or "")

    def add_document(path: str | None) -> tuple:
        if not path:
            return gr.skip(), gr.skip()
        original = Path(path).name
        known = {k: v.get("sha256", "") for k, v in _status(settings).get("documents", {}).items()}
        try:
            saved = save_upload(Path(path).read_bytes(), original, settings, known)
        except UploadError as exc:
            return f"<p class='upload-error'>Not added: {_esc(exc)}.</p>", None
        except OSError as exc:
            return f"<p class='upload-error'>Not added: {_esc(exc.strerror or exc)}.</p>", None
        rel = saved.relative_to(Path(settings.seeds_dir)).as_posix()
        return (
            f"<p class='upload-ok'>Added <code>{_esc(rel)}</code> to the documents. "
            "Press <b>Build the index</b> to make it searchable.</p>",
            None,
        )

    def rebuild() -> Iterator[tuple]:
        state: dict[str, Any] = {"stage": "starting", "done": 0, "total": 0}

        def on_progress(stage: str, done: int, total: int) -> None:
            state.update(stage=stage, done=done, total=total)

        def work() -> None:
            try:
                with build_lock:
                    state["report"] = build_index(settings, on_progress=on_progress, wait=120)
            except Exception as exc:  # shown in the panel; the app keeps serving
                state["error"] = exc

        thread = threading.Thread(target=work, name="assistant-build", daemon=True)
        thread.start()
        started = time.monotonic()
        skip = (gr.skip(),) * 5
        while thread.is_alive():
            thread.join(0.4)
            done, total = state["done"], state["total"]
            detail = f"{state['stage']} {done}/{total} chunks" if total else "reading documents"
            yield (
                f"<p class='build-progress'>Building the index… {_esc(detail)} "
                f"({time.monotonic() - started:.0f}s)</p>",
                *skip,
            )
        if "error" in state:
            exc = state["error"]
            if not isinstance(exc, AssistantError):
                log.exception("build failed", exc_info=exc)
            if isinstance(exc, IndexLockedError):
                exc = (
                    "another build of this index is still running (from the command line or "
                    "another window); press Build the index again when it has finished"
                )
            message = f"<p class='build-error'>Build failed: {_esc(exc)}</p>"
        else:
            report = state["report"]
            skipped = "".join(
                f"<br>skipped {_esc(name)}: {_esc(reason)}" for name, reason in report.skipped
            )
            message = (
                f"<p class='build-done'>Index built: {_esc(report.summary())} "
                f"({report.total_chunks} chunks, {report.seconds:.1f}s).{skipped}</p>"
            )
        yield (message, *refresh())

    def ask_delete(doc_id: str | None) -> tuple:
        if not doc_id:
            return "<p class='upload-error'>Choose a document to delete.</p>", gr.Row(visible=False)
        return (
            f"<p class='confirm'>Delete <code>{_esc(doc_id)}</code> from the seeds folder? "
            "The index is rebuilt without it.</p>",
            gr.Row(visible=True),
        )

    def do_delete(doc_id: str | None) -> tuple:
        from .documents import delete_document

        try:
            delete_document(doc_id or "", settings)
        except (DocumentError, OSError) as exc:
            return f"<p class='upload-error'>Not deleted: {_esc(exc)}.</p>", gr.Row(visible=False)
        return f"<p class='upload-ok'>Deleted <code>{_esc(doc_id)}</code>.</p>", gr.Row(
            visible=False
        )

    def cancel_delete() -> tuple:
        return "", gr.Row(visible=False)

    def choices() -> list[str]:
        from .documents import seed_documents

        return sorted(seed_documents(settings))

    def asker(doc_id: str) -> Any:
        def handler() -> tuple:
            return (doc_id, *ask_delete(doc_id))

        return handler

    # -- API endpoints (data in, data out) --------------------------------------------------

    def api_ask(question: str, history: list | None = None) -> dict:
        """Answer a question from the documents. ``history``: earlier ``[question, answer]``
        pairs. Returns the answer as data: text with [n] markers, citations (source, title,
        start, end, quote, passage, page, locator), passages, abstained, query."""
        try:
            result = ask(question, history, settings)
            return with_outdated_notice(
                result, outdated_sources(result, settings.seeds_dir)
            ).to_dict()
        except (AssistantError, ValueError, TypeError) as exc:
            raise gr.Error(str(exc)) from exc

    def api_retrieve(query: str, k: int = 5) -> list:
        """The k passages that best match the query (hybrid dense + BM25 search), as data.
        ``k``: a whole number from 1 to ASSISTANT_MAX_K, as in ``retrieve()``."""
        try:  # k as sent: "7", 2.5 and true are refused here as retrieve() refuses them
            return [p.to_dict() for p in retrieve(query, k, settings)]
        except (AssistantError, ValueError, TypeError) as exc:
            raise gr.Error(str(exc)) from exc

    # -- layout -------------------------------------------------------------------------------

    with gr.Blocks(title="assistant: ask the documents", analytics_enabled=False) as demo:
        gr.Markdown("## Ask the documents\nAnswers quote the documents verbatim, with sources.")
        status = gr.Markdown(elem_id="status-banner", latex_delimiters=[])
        fix = gr.Button("Build the index", variant="primary", visible=False, elem_id="fix-index")
        turns = gr.State([])
        # The conversation lives in this browser only (localStorage, encrypted with a key of
        # this server process): a reload shows it again; New chat clears it; nothing is stored
        # on the server.
        kept = gr.BrowserState({"chat": [], "turns": []}, storage_key="assistant-chat")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"):
                chatbot = gr.Chatbot(
                    elem_id="chat",
                    label="Chat",
                    height=560,
                    latex_delimiters=[],
                    sanitize_html=True,
                    allow_tags=False,
                    feedback_options=None,
                    buttons=["copy", "copy_all"],
                    placeholder="Ask a question about the documents.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        elem_id="question",
                        show_label=False,
                        placeholder="Ask a question about the documents…",
                        scale=8,
                        autofocus=True,
                        max_lines=4,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="send")
                    clear = gr.Button("New chat", scale=1, elem_id="new-chat")
                examples = gr.Dataset(
                    components=[question],
                    samples=[["What are these documents about?"]],
                    label="Try asking",
                    elem_id="examples",
                )
            with gr.Tab("Documents", id="docs-tab"):
                documents = gr.Markdown(elem_id="documents", latex_delimiters=[])
                upload = gr.File(
                    label="Add a document: PDF, Word (.docx), HTML, EPUB, .txt or .md "
                    f"(up to {settings.max_upload_kb} KB)",
                    file_types=list(UPLOAD_EXTENSIONS),
                    type="filepath",
                    elem_id="upload",
                )
                upload_msg = gr.Markdown(elem_id="upload-message", latex_delimiters=[])
                rebuild_btn = gr.Button("Build the index", variant="primary", elem_id="rebuild")
                build_log = gr.Markdown(elem_id="build-log", latex_delimiters=[])
                to_delete = gr.State(None)  # the document whose Delete… was pressed
                doc_ids = gr.State([])
                gr.Markdown("**Files in the seeds folder**")

                @gr.render(inputs=doc_ids)
                def document_rows(ids: list) -> None:
                    for doc_id in ids or []:
                        with gr.Row(elem_classes=["doc-row"], equal_height=True):
                            gr.HTML(f"<code>{_esc(doc_id)}</code>", padding=False)
                            button = gr.Button(
                                "Delete…",
                                variant="stop",
                                size="sm",
                                scale=0,
                                min_width=90,
                                elem_classes=["delete-doc"],
                            )
                        button.click(
                            asker(doc_id),
                            None,
                            [to_delete, delete_msg, confirm_row],
                            api_visibility="private",
                        )

                delete_msg = gr.Markdown(elem_id="delete-message", latex_delimiters=[])
                with gr.Row(visible=False) as confirm_row:
                    confirm_btn = gr.Button(
                        "Yes, delete it and rebuild", variant="stop", elem_id="confirm-delete"
                    )
                    cancel_btn = gr.Button("Cancel", elem_id="cancel-delete")

        hidden = {"api_visibility": "private"}
        panel = [status, fix, documents, examples, rebuild_btn]
        demo.load(refresh, None, panel, **hidden).then(choices, None, doc_ids, **hidden)
        demo.load(restore, kept, [chatbot, turns], **hidden)
        cancel_btn.click(cancel_delete, None, [delete_msg, confirm_row], **hidden)
        confirm_btn.click(do_delete, to_delete, [delete_msg, confirm_row], **hidden).then(
            rebuild,
            None,
            [build_log, *panel],
            concurrency_limit=1,
            concurrency_id="build",
            **hidden,
        ).then(choices, None, doc_ids, **hidden)
        chat_io = {
            "inputs": [question, chatbot, turns],
            "outputs": [question, chatbot, turns, kept],
        }
        question.submit(respond, **chat_io, concurrency_limit=4, **hidden)
        send.click(respond, **chat_io, concurrency_limit=4, **hidden)
        clear.click(new_chat, None, [chatbot, turns, question, kept], **hidden)
        chatbot.clear(new_chat, None, [chatbot, turns, question, kept], **hidden)
        examples.click(pick_example, examples, question, **hidden).then(
            respond, **chat_io, concurrency_limit=4, **hidden
        )
        upload.upload(add_document, upload, [upload_msg, upload], **hidden).then(
            refresh, None, panel, **hidden
        ).then(choices, None, doc_ids, **hidden)
        for button in (fix, rebuild_btn):
            button.click(
                rebuild,
                None,
                [build_log, *panel],
                concurrency_limit=1,
                concurrency_id="build",
                show_progress="minimal",
                **hidden,
            ).then(choices, None, doc_ids, **hidden)
        gr.api(api_ask, api_name="ask", concurrency_limit=4)
        gr.api(api_retrieve, api_name="retrieve", concurrency_limit=4)
    return demo


def _theme() -> Any:
    import gradio as gr

    # System fonts: the default theme fetches Google Fonts, which an offline machine cannot.
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "monospace"],
    )


class PortInUseError(AssistantError):
    """The port asked for is taken (by another server, often an earlier ``assistant serve``)."""


def check_port(host: str, port: int) -> None:
    """Raise ``PortInUseError``, saying to pick another ``--port``, when ``host:port`` is busy
    (before the model and the app are loaded; Gradio's own advice names its variables)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on {host} is already in use ({exc.strerror or exc}), maybe by "
                f"another `assistant serve`: stop it, or choose another port with --port "
                f"(for example --port {port + 1 if port < 65535 else 8080})"
            ) from None


def launch(
    settings: Settings | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    **launch_kwargs: Any,
) -> Any:
    """Serve the app on ``host:port`` (localhost unless told otherwise); blocks until stopped
    unless ``prevent_thread_lock=True`` is passed, in which case the running app is returned."""
    settings = settings or Settings()
    check_port(host, port)
    demo = build_app(settings)
    blocked = sorted(
        {str(Path(p).resolve()) for p in (settings.seeds_dir, settings.index_dir, Path.cwd())}
    )
    options: dict[str, Any] = {
        "server_name": host,
        "server_port": port,
        "share": False,
        "inbrowser": False,
        "ssr_mode": False,
        "show_error": True,
        # Serve no file from disk except Gradio's own upload cache: nothing of the project,
        # the seeds or the index is readable through /gradio_api/file=.
        "allowed_paths": [],
        "blocked_paths": blocked,
        "max_file_size": settings.max_upload_kb * 1024 * 2,
        "theme": _theme(),
        "css": CSS,
    }
    options.update(launch_kwargs)
    block = not options.pop("prevent_thread_lock", False)
    demo.queue(default_concurrency_limit=2)
    demo.launch(**options, prevent_thread_lock=True)
    add_document_route(demo.app, settings, DOCUMENT_ROUTE)
    if block:  # pragma: no cover - the CLI's serve; tests use prevent_thread_lock
        demo.block_thread()
    return demo


__all__ = [
    "UploadError",
    "build_app",
    "check_upload",
    "example_questions",
    "launch",
    "render_answer",
    "render_partial",
    "safe_filename",
    "save_upload",
]
