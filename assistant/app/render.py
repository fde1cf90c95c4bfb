"""HTML for the chat and the documents panel: every corpus string goes through ``_esc`` before
any markup is added (Gradio's sanitizer is a second line, not the first)."""

from __future__ import annotations

import html
import re

from ..answer.render import clip_context, split_quote
from ..corpus import display_title
from ..extract import format_of
from ..types import Answer, Citation, Passage, counted

DOCUMENT_ROUTE = "/document"
CONTEXT_CHARS = 280


def _esc(text: object) -> str:
    """HTML-escaped text with line breaks as ``<br>``: no raw newline reaches the markdown
    renderer, so the whole message stays one HTML block and corpus text is never parsed as
    markdown either."""
    escaped = html.escape(str(text), quote=True)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def _clip(text: str, n: int, left: bool = False) -> str:
    """``text`` in about ``n`` characters, cut at a sentence or between words, never inside
    one (``clip_context``)."""
    return clip_context(text, n, left)


def _markers(escaped: str) -> str:
    """``[n]`` citation markers in already-escaped text, styled."""
    return re.sub(r"\[(\d{1,3})\]", r'<span class="cite">[\1]</span>', escaped)


def _offsets(start: int, end: int) -> str:
    """The character offsets, for the excerpt's details line (not its heading)."""
    return (
        f'<span class="offsets" title="character offsets in the document\'s text">'
        f"chars {int(start)}-{int(end)}</span>"
    )


def render_citation(c: Citation, open_: bool = False) -> str:
    """One numbered excerpt: title, file and place (``p. 17``), then the quote highlighted in
    its passage, then a details line: links to the file and the quote's character offsets."""
    a = max(0, c.start - c.passage_start)
    b = max(a, c.end - c.passage_start)
    before = _clip(c.passage[:a], CONTEXT_CHARS, left=True)
    after = _clip(c.passage[b:], CONTEXT_CHARS)
    quote = c.passage[a:b] or c.quote
    where = f" · {_esc(c.locator)}" if c.locator else ""
    return (
        f'<details class="excerpt"{" open" if open_ else ""}>'
        f'<summary><span class="cite">[{c.n}]</span> <b>{_esc(display_title(c.title, c.source))}'
        f'</b> <span class="where">{_esc(c.source)}{where}</span></summary>'
        f'<div class="passage">{_esc(before)}<mark class="quote">'
        f"{_quote_html(c) if quote == c.quote else _esc(quote)}</mark>"
        f"{_esc(after)}</div>{render_file_links(c.source, c.page, _offsets(c.start, c.end))}"
        "</details>"
    )


def document_url(doc_id: str, page: int | None = None) -> str:
    """The app's link to a seed document (``#page=N`` opens a PDF viewer at that page)."""
    from urllib.parse import quote

    return f"{DOCUMENT_ROUTE}/{quote(doc_id, safe='/')}" + (f"#page={page}" if page else "")


def render_file_links(doc_id: str, page: int | None = None, details: str = "") -> str:
    """Links to the original file: open a PDF at the page in a new tab; download the file;
    then ``details`` (markup already made safe: the excerpt's offsets)."""
    links = []
    if page and format_of(doc_id) == "pdf":
        links.append(
            f'<a class="open-page" href="{_esc(document_url(doc_id, page))}" target="_blank" '
            f'rel="noopener noreferrer">open the PDF at p. {int(page)}</a>'
        )
    links.append(
        f'<a class="download" href="{_esc(document_url(doc_id))}" download>download the file</a>'
    )
    if details:
        links.append(details)
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
    locator = p.where()[1]  # "p. 17", "§ Safety": where the passage starts
    where = f" · {_esc(locator)}" if locator else ""
    return (
        f'<details class="excerpt match{" outdated-match" if outdated else ""}">'
        f"<summary><b>{_esc(display_title(p.title, p.source))}</b> "
        f'<span class="where">{_esc(p.source)}{where}</span>{note}</summary>'
        f'<div class="passage">{_esc(_clip(p.text, 2 * CONTEXT_CHARS))}</div>'
        f'<div class="files">{_offsets(p.start, p.end)}</div></details>'
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


def _when_indexed(info: dict) -> str:
    if info.get("watching"):
        return ": they are indexed as they arrive"
    return "; uploads are indexed at once, files put into the folder when you press <b>Build the index</b>"


def render_status(info: dict) -> str:
    """The banner above the chat: what to do next when there is nothing to search yet, a
    warning with the fix when the index is missing or stale."""
    files = info.get("seed_files")
    if files == 0 and not info.get("documents"):
        return (
            '<div class="banner warn empty"><b>No documents yet.</b> '
            f"{_how_to_add(info)}{_when_indexed(info)}.</div>"
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


def render_indexing(running: dict) -> str:
    """The banner while the app indexes: why, how far, and that answers meanwhile come from
    the previous index."""
    why = ", ".join(running.get("reasons") or []) or "the documents changed"
    done, total = int(running.get("done", 0)), int(running.get("total", 0))
    stage = f"{running.get('stage', '')} {done}/{total} chunks" if total else "reading documents"
    return (
        f'<div class="banner busy"><b>Indexing…</b> {_esc(why)}: {_esc(stage)} '
        f"({float(running.get('seconds', 0)):.0f}s). Questions are answered from the previous "
        "index until it is done.</div>"
    )


def render_documents(info: dict) -> str:
    """The documents panel: index facts, then one row per indexed document (its title as
    ``display_title`` shows it)."""
    if not info.get("built"):
        if info.get("seed_files") == 0:
            return f"<p>No index has been built yet, and there are no documents. {_how_to_add(info)}.</p>"
        return "<p>No index has been built yet: press <b>Build the index</b>.</p>"
    docs = info.get("documents", {})
    rows = "".join(
        f"<tr><td>{_esc(display_title(d.get('title', ''), doc_id))}</td>"
        f"<td><code>{_esc(doc_id)}</code></td>"
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
        # In a scrolling box: on a narrow screen the table scrolls sideways as a whole instead
        # of breaking its headers letter by letter (style.py).
        '<div class="docs-scroll"><table class="docs-table"><thead><tr><th>title</th>'
        "<th>file</th><th>format</th><th>pages</th><th>chunks</th><th>note</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></div></div>"
    )
