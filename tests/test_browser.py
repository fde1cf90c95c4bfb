"""The web chat in a real browser: Debian's Chromium driven by Playwright against a live server.

The server is ``python -m assistant serve --build`` on a free port, with the real model, over a
temporary copy of the seed corpus plus a document full of HTML that must show as text. Screenshots
go to ``artifacts/`` (gitignored: they are made fresh by every run, for a person to look at).

``test_first_hour_walk_through`` is the path a newcomer takes, from an empty seeds folder and a
fresh index folder, against an in-process server (real model, one small document).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
ARTIFACTS = REPO / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS_DOC = (
    "<img src=x onerror=alert(1)>\n"
    "The harbour festival opens with <script>alert(1)</script> fireworks over the bay. "
    "Lantern boats <img src=x onerror=alert(1)> drift past the old pier at dusk.\n"
    "The harbour festival lasts three days and ends with a rowing race.\n"
)
UPLOADED_DOC = (
    "Quill Island lighthouse\n\n"
    "The lighthouse on Quill Island was painted teal in 1987 by a crew of nine volunteers. "
    "Its lamp can be seen from forty kilometres away on a clear night.\n"
)
LONG = 180_000  # ms: the first answer loads the model on a shared 2-core machine

if CHROMIUM is None:
    pytest.skip(
        "Debian's chromium is not installed (apt-get install -y chromium); browser tests skipped",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)
# Builds and first answers take seconds on a busy 2-core machine: Playwright's 5 s default for
# expect() made these tests fail under load (the PDF build), not for any fault of the app.
playwright_api.expect.set_options(timeout=LONG)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``assistant serve --build`` over the seeds plus the HTML-laden document; yields its URL."""
    root = tmp_path_factory.mktemp("web")
    seeds = root / "seeds"
    shutil.copytree(REPO / "seeds", seeds)
    (seeds / "harbour-festival.txt").write_text(XSS_DOC, encoding="utf-8")
    port = _free_port()
    env = {
        **os.environ,
        "ASSISTANT_SEEDS_DIR": str(seeds),
        "ASSISTANT_INDEX_DIR": str(root / "index"),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    log_path = root / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant", "serve", "--build", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited ({proc.returncode}):\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not start in time:\n{log_path.read_text()}")
            time.sleep(1)
        yield {"url": url, "seeds": seeds, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(LONG)
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.dialogs = dialogs  # type: ignore[attr-defined]
    page.goto(server["url"], wait_until="domcontentloaded")
    page.wait_for_selector("#question textarea")
    page.wait_for_selector("#status-banner .banner")
    yield page
    context.close()


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def _ask(page, question: str):
    """Type the question, press Enter, wait for the finished answer; return its locator."""
    before = page.locator("#chat .answer-final").count()
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#chat .answer-final').length > n", arg=before
    )
    return page.locator("#chat .answer-final").last


def test_chat_answers_with_citation_highlighted_excerpt_and_follow_up(page):
    expect = playwright_api.expect
    answer = _ask(page, "How many troops took part in the parade?")
    expect(answer.locator(".answer-text")).to_contain_text("14,000 troops")
    expect(answer.locator(".answer-text .cite").first).to_have_text("[1]")
    excerpt = answer.locator("details.excerpt").first
    expect(excerpt.locator("summary")).to_contain_text("[1]")
    expect(excerpt.locator("summary")).not_to_contain_text("chars ")  # offsets: details line
    expect(excerpt.locator(".files .offsets")).to_contain_text("chars ")
    mark = excerpt.locator("mark.quote")
    expect(mark).to_be_visible()
    expect(mark).to_contain_text("14,000 troops")
    answer.scroll_into_view_if_needed()
    _shot(page, "browser-01-answer-troops.png")

    follow = _ask(page, "And when was that?")  # the UI flow of a follow-up is tested here
    expect(follow.locator(".searched")).to_contain_text("searched for:")
    expect(follow.locator(".answer-text .cite").first).to_have_text("[1]")
    expect(follow.locator("mark.quote").first).to_be_visible()
    assert page.locator("#chat .answer-final").count() == 2
    _shot(page, "browser-02-follow-up.png")

    off_topic = _ask(page, "What is the airspeed velocity of an unladen swallow?")
    expect(off_topic).to_have_class(re.compile(r"\babstained\b"))
    expect(off_topic.locator(".verdict")).to_have_text("Not found in the documents.")
    expect(off_topic.locator(".closest")).to_be_visible()
    assert off_topic.locator("mark.quote").count() == 0
    _shot(page, "browser-03-abstention.png")

    page.click("#new-chat")
    expect(page.locator("#chat .answer-final")).to_have_count(0)

    # The example questions come from the indexed documents; clicking one asks it.
    page.locator("#examples").get_by_text("How many troops", exact=False).first.click()
    expect(page.locator("#chat .answer-final")).to_have_count(1)
    expect(page.locator("#chat .question")).to_contain_text("How many troops are there?")
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_html_in_documents_and_questions_shows_as_text_and_runs_nothing(page):
    expect = playwright_api.expect
    answer = _ask(page, "<img src=x onerror=alert(1)> How long does the harbour festival last?")
    expect(answer.locator("details.excerpt summary").first).to_contain_text("harbour-festival.txt")
    passage = answer.locator("details.excerpt .passage").first
    expect(passage).to_be_visible()
    expect(passage).to_contain_text("<script>alert(1)</script>")
    expect(page.locator("#chat")).to_contain_text("<img src=x onerror=alert(1)> How long")
    _shot(page, "browser-04-html-shown-as-text.png")

    page.get_by_role("tab", name="Documents").click()
    docs = page.locator("#documents")
    expect(docs).to_contain_text("harbour-festival.txt")
    expect(docs).to_contain_text("<img src=x onerror=alert(1)>")  # its title, as text
    _shot(page, "browser-05-documents.png")

    page.wait_for_timeout(500)
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate(
        "() => [...document.scripts].every(s => !s.textContent.includes('alert(1)'))"
    )
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_upload_is_indexed_at_once_then_answered(page, server, tmp_path):
    expect = playwright_api.expect
    upload = tmp_path / "Quill Island (notes).txt"
    upload.write_text(UPLOADED_DOC, encoding="utf-8")

    page.get_by_role("tab", name="Documents").click()
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    expect(page.locator("#upload-message .upload-ok")).to_contain_text("Quill-Island-notes.txt")
    assert (server["seeds"] / "Quill-Island-notes.txt").read_text() == UPLOADED_DOC
    # Indexed at once, without pressing anything; no Build button meanwhile or after.
    expect(page.locator("#build-log .build-done")).to_contain_text("1 new")
    assert _build_buttons(page) == 0
    expect(page.locator("#documents")).to_contain_text("Quill-Island-notes.txt")
    expect(page.locator("#status-banner")).not_to_contain_text("out of date")
    _shot(page, "browser-06-uploaded-and-rebuilt.png")

    page.get_by_role("tab", name="Chat").click()
    answer = _ask(page, "What colour was the Quill Island lighthouse painted?")
    expect(answer.locator("mark.quote").first).to_contain_text("teal")
    expect(answer.locator("details.excerpt summary").first).to_contain_text(
        "Quill-Island-notes.txt"
    )
    _shot(page, "browser-07-answer-from-upload.png")
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_pdf_upload_page_link_duplicate_and_delete(page, server, tmp_path):
    """Upload a PDF (indexed at once), ask: the excerpt says "p. 17" and links the PDF at #page=17; the
    same file again is refused with the existing name; deleting it removes it from answers."""
    from tests.documents import pdf_30_pages

    expect = playwright_api.expect
    pdf = tmp_path / "Field manual.pdf"
    pdf.write_bytes(pdf_30_pages())

    page.get_by_role("tab", name="Documents").click()
    page.locator("#upload input[type=file]").set_input_files(str(pdf))
    expect(page.locator("#upload-message .upload-ok")).to_contain_text("Field-manual.pdf")
    expect(page.locator("#build-log .build-done")).to_contain_text("1 new")  # nothing pressed
    row = page.locator("#documents tr", has_text="Field-manual.pdf")
    expect(row).to_contain_text("pdf")
    expect(row).to_contain_text("30")  # pages

    page.get_by_role("tab", name="Chat").click()
    answer = _ask(page, "What kind of lamp does the northern beacon use?")
    excerpt = answer.locator("details.excerpt").first
    expect(excerpt.locator("summary")).to_contain_text("Field-manual.pdf")
    expect(excerpt.locator("summary")).to_contain_text("p. 17")
    expect(excerpt.locator("mark.quote")).to_contain_text("xenon lamp")
    _shot(page, "browser-08-pdf-page-citation.png")
    link = excerpt.locator("a.open-page")
    expect(link).to_have_attribute("href", "/document/Field-manual.pdf#page=17")
    with page.context.expect_page() as opened:
        link.click()
    viewer = opened.value
    assert viewer.url.endswith("/document/Field-manual.pdf#page=17")
    viewer.close()
    with urllib.request.urlopen(server["url"] + "document/Field-manual.pdf", timeout=10) as resp:
        assert resp.headers["Content-Type"] == "application/pdf"
        assert resp.read() == pdf.read_bytes()
    for probe in ("document/../server.log", "document/%2e%2e/server.log", "document/nope.pdf"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server["url"] + probe, timeout=10)
        assert err.value.code == 404

    page.get_by_role("tab", name="Documents").click()
    page.locator("#upload input[type=file]").set_input_files(str(pdf))
    expect(page.locator("#upload-message .upload-error")).to_contain_text(
        "already in the documents as Field-manual.pdf"
    )
    assert sorted(p.name for p in server["seeds"].glob("*.pdf")) == ["Field-manual.pdf"]

    row = page.locator(".doc-row", has_text="Field-manual.pdf")
    files = [p for p in server["seeds"].iterdir() if not p.name.startswith(".")]
    expect(page.locator(".doc-row")).to_have_count(len(files))  # a Delete… per file in seeds/
    _shot(page, "browser-10-documents-panel.png")
    row.locator("button.delete-doc").click()
    expect(page.locator("#delete-message .confirm")).to_contain_text("Field-manual.pdf")
    page.click("#confirm-delete")
    expect(page.locator("#delete-message .upload-ok")).to_contain_text("Deleted")
    expect(page.locator("#build-log .build-done")).to_contain_text("1 removed")
    expect(page.locator("#documents")).not_to_contain_text("Field-manual.pdf")
    assert not (server["seeds"] / "Field-manual.pdf").exists()

    page.get_by_role("tab", name="Chat").click()
    again = _ask(page, "What kind of lamp does the northern beacon use?")
    expect(again).not_to_contain_text("Field-manual.pdf")
    _shot(page, "browser-09-after-delete.png")
    assert page.dialogs == []  # type: ignore[attr-defined]


def _line_counts(page, selector: str) -> list[tuple[str, int]]:
    """``(text, lines)`` of each element matched: the line boxes its text is laid out in."""
    return page.evaluate(
        """sel => [...document.querySelectorAll(sel)].map(el => {
            const range = document.createRange();
            range.selectNodeContents(el);
            const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
            return [el.textContent.trim(), tops.size];
        })""",
        selector,
    )


def test_documents_table_is_readable_at_400_px(page):
    """On a 400 px screen the documents table's headers stay whole words on one line (they
    broke letter by letter), a title wraps only between words, and a table wider than the
    screen scrolls sideways in its own box: the page itself does not (issue 25)."""
    expect = playwright_api.expect
    page.get_by_role("tab", name="Documents").click()
    table = page.locator("#documents table.docs-table")
    expect(table).to_be_visible()
    for width in (400, 360):
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(300)  # the layout settles
        headers = _line_counts(page, "#documents .docs-table th")
        assert [h for h, _ in headers] == ["title", "file", "format", "pages", "chunks", "note"]
        assert all(lines == 1 for _, lines in headers), headers
        titles = _line_counts(page, "#documents .docs-table tbody td:first-child")
        assert titles and all(lines <= max(1, len(t.split())) for t, lines in titles), titles
        box = page.locator("#documents .docs-scroll")
        assert box.evaluate("el => getComputedStyle(el).overflowX") == "auto"
        edge = box.bounding_box()
        assert edge is not None and edge["x"] + edge["width"] <= width + 1, edge  # on screen
        _shot(page, f"browser-11-documents-{width}px.png")


# --- the first hour of a new user ---------------------------------------------------------------


@pytest.fixture
def fresh_server(tmp_path, monkeypatch):
    """The app in this process over an empty seeds folder and no index. The real model: the
    walk-through checks that the example questions a newcomer is offered get answered."""
    from assistant import app as web
    from assistant.config import Settings

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "seeds").mkdir()
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "embeddings")
    demo = web.launch(settings, port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield {"url": demo.local_url, "settings": settings}
    finally:
        demo.close()


def _build_buttons(page) -> int:
    return (
        page.get_by_role("button", name="Build the index", exact=True).filter(visible=True).count()
    )


def test_first_hour_walk_through(browser, fresh_server, tmp_path_factory):
    """Empty state -> upload, indexed at once -> an example chip's question -> follow-up ->
    reload, the conversation still there -> new chat; a screenshot of each step; no console
    errors."""
    expect = playwright_api.expect
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(LONG)
    problems: list[str] = []
    reloading = [False]

    def on_console(m) -> None:
        # A reload aborts the old page's open requests (its event stream); the browser and
        # Gradio's client log that as an error. Only those, and only during a reload, are spared.
        aborted = "AbortError" in m.text or "Connection errored out" in m.text
        if m.type == "error" and not (reloading[0] and aborted):
            problems.append(f"console {m.type}: {m.text}")

    def reload() -> None:
        reloading[0] = True
        try:
            page.reload(wait_until="domcontentloaded")
            page.wait_for_timeout(300)  # the old page's last messages arrive
        finally:
            reloading[0] = False

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    shots = []

    def shot(name: str) -> None:
        shots.append(_shot(page, f"walkthrough-{len(shots) + 1:02d}-{name}.png"))

    # 1. A fresh start says what to do: add documents (where, and how), nothing to build yet.
    page.goto(fresh_server["url"], wait_until="domcontentloaded")
    banner = page.locator("#status-banner .banner")
    expect(banner).to_contain_text("No documents yet")
    expect(banner).to_contain_text("Documents tab")
    expect(banner).to_contain_text("ASSISTANT_SEEDS_DIR")
    assert _build_buttons(page) == 0
    expect(page.locator("#examples")).to_be_hidden()
    shot("empty-state")

    # 2. Upload the seed article from the Documents tab (the app saves it into the seeds folder).
    page.get_by_role("tab", name="Documents").click()
    expect(page.locator("#documents")).to_contain_text("no documents")
    upload = tmp_path_factory.mktemp("download") / "Kim Jong Un party congress.txt"
    upload.write_text((REPO / "seeds" / "kim-jong-un-party-congress.txt").read_text("utf-8"))
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    expect(page.locator("#upload-message .upload-ok")).to_contain_text(
        "Kim-Jong-Un-party-congress.txt"
    )
    shot("uploaded")

    # 3. It is indexed at once (no button to press): the banner turns to the index's facts.
    # The article opens with a long sentence, not a heading or a short line: its title is its
    # file name, not that sentence clipped.
    expect(page.locator("#build-log .build-done")).to_contain_text("1 document: 1 new")
    expect(banner).to_contain_text("1 document,")
    expect(page.locator("#documents")).to_contain_text("Kim Jong Un party congress")
    expect(page.locator("#documents")).not_to_contain_text("offering closing remarks")
    assert _build_buttons(page) == 0  # up to date: no Build button anywhere
    shot("built")

    # 4. An example chip: a question a person would ask, shown whole, asked on click.
    page.get_by_role("tab", name="Chat").click()
    chip = page.locator("#examples").get_by_text("How many troops are there?", exact=True)
    expect(chip).to_be_visible()
    page.set_viewport_size({"width": 360, "height": 800})  # a phone: chips wrap, never cut
    for el in page.locator("#examples button").all():
        text = el.inner_text().strip()
        assert "…" not in text and not text.endswith("..."), text
        fits = "e => [e, ...e.querySelectorAll('*')].every(x => x.scrollWidth <= x.clientWidth + 1)"
        assert el.evaluate(fits), f"example chip cut: {text}"
    page.set_viewport_size({"width": 1280, "height": 1000})
    chip.click()
    expect(page.locator("#chat .answer-final")).to_have_count(1)
    first = page.locator("#chat .answer-final").last
    expect(first.locator("mark.quote").first).to_contain_text("14,000 troops")
    shot("example-answered")

    # 5. A follow-up leans on the conversation.
    follow = _ask(page, "And when was that?")
    expect(follow.locator(".searched")).to_contain_text("searched for:")
    shot("follow-up")

    # 6. A reload shows the same conversation (kept in this browser), and it goes on from it.
    reload()
    expect(page.locator("#chat .answer-final")).to_have_count(2)
    expect(page.locator("#chat .question").first).to_contain_text("How many troops are there?")
    shot("after-reload")

    # 7. New chat clears it, in the browser's storage too: a reload stays empty.
    page.click("#new-chat")
    expect(page.locator("#chat .answer-final")).to_have_count(0)
    reload()
    expect(banner).to_contain_text("1 document,")
    page.wait_for_timeout(1500)  # give a stale restore the time it would need to appear
    expect(page.locator("#chat .answer-final")).to_have_count(0)
    shot("new-chat")

    # 8. Several chats: the first is still in the list; a second one gets its own question;
    # switching back shows the first intact, and so does a reload.
    chats = page.locator("#chat-list label")
    expect(chats).to_have_count(2)
    expect(chats.first).to_have_text("New chat")
    second = _ask(page, "What did Trump say about his relationship with Kim?")
    expect(second.locator(".answer-text")).to_be_visible()
    expect(chats).to_have_count(2)  # the new chat, titled by its question
    expect(chats.first).to_contain_text("What did Trump say")  # the last used on top
    chats.filter(has_text="How many troops").click()
    expect(page.locator("#chat .answer-final")).to_have_count(2)
    expect(page.locator("#chat .question").first).to_contain_text("How many troops are there?")
    reload()
    expect(page.locator("#chat .answer-final")).to_have_count(2)
    expect(page.locator("#chat .question").first).to_contain_text("How many troops are there?")
    expect(chats).to_have_count(2)
    shot("switched-back-after-reload")

    # 9. Export it as Markdown (made in the browser): the questions and the cited excerpts.
    with page.expect_download() as download:
        page.click("#export-chat")
    saved = download.value
    assert saved.suggested_filename == "how-many-troops-are-there.md"
    text = Path(saved.path()).read_text(encoding="utf-8")
    assert text.startswith("# How many troops are there?")
    assert "## How many troops are there?" in text and "## And when was that?" in text
    assert "14,000 troops" in text and "(Kim-Jong-Un-party-congress.txt)" in text

    # 10. Rename it, then delete the other chat.
    page.fill("#chat-title textarea, #chat-title input", "Parade facts")
    page.press("#chat-title textarea, #chat-title input", "Enter")
    expect(chats.filter(has_text="Parade facts")).to_have_count(1)
    expect(chats.filter(has_text="How many troops")).to_have_count(0)
    chats.filter(has_text="What did Trump say").click()
    expect(page.locator("#chat .answer-final")).to_have_count(1)
    page.click("#delete-chat")
    expect(chats).to_have_count(1)
    expect(page.locator("#chat .answer-final")).to_have_count(2)  # Parade facts again
    shot("renamed-and-deleted")

    # 11. Files copied into the seeds folder by another program are answered from within
    # seconds, and a question scoped to one of two documents on the same topic quotes only it.
    seeds = fresh_server["settings"].seeds_dir
    began = time.monotonic()
    for name, text in SCOPED_DOCS.items():
        (seeds / name).write_text(text, encoding="utf-8")
    expect(banner).to_contain_text("3 documents,")
    took = time.monotonic() - began
    assert took < 60, f"indexed {took:.0f}s after the copy"
    page.click("#new-chat")
    scope = page.locator("#scope input")
    scope.click()
    page.locator("ul[role=listbox] li", has_text="bakery-minutes.txt").click()
    page.keyboard.press("Escape")
    scoped = _ask(page, "When will the bakery open on Sundays?")
    summaries = scoped.locator("details.excerpt summary")
    expect(summaries.first).to_contain_text("bakery-minutes.txt")
    assert all("bakery-minutes.txt" in t for t in summaries.all_inner_texts())
    expect(scoped.locator("mark.quote").first).to_contain_text("Sunday")
    shot("scoped-question")
    page.get_by_role("tab", name="Documents").click()
    expect(page.locator(".doc-row")).to_have_count(3)  # the copied files listed too
    page.get_by_role("tab", name="Chat").click()

    assert problems == [], problems
    assert all(p.stat().st_size > 0 for p in shots) and len(shots) == 10
    context.close()


SCOPED_DOCS = {
    "bakery-minutes.txt": (
        "Minutes of the bakery committee, 3 March\n\n"
        "The committee agreed that the bakery will open on Sundays from 8 am to noon, starting "
        "in April. Ruth will draw up the staff rota for the Sunday shifts.\n"
    ),
    "bakery-announcement.txt": (
        "Announcement: our bakery is moving\n\n"
        "From May the bakery moves to 12 Mill Street. On Sundays the new shop opens at 9 am, "
        "and fresh rye bread is baked every morning.\n"
    ),
}
