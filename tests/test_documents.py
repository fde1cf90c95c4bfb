"""The documents panel's helpers: uploads of any format, duplicates, deletion, the file route."""

from __future__ import annotations

import os

import pytest

from assistant import app as web
from assistant.documents import delete_document, document_file, find_duplicate
from assistant.types import Citation
from tests import documents as D
from tests.conftest import write

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)


def test_upload_of_each_format_and_duplicate_refused_by_name(settings):
    pdf = D.pdf_simple("A tiny manual")
    saved = web.save_upload(pdf, "My manual.pdf", settings)
    assert saved.name == "My-manual.pdf" and saved.read_bytes() == pdf
    with pytest.raises(web.UploadError, match="already in the documents as My-manual.pdf"):
        web.save_upload(pdf, "copy.pdf", settings)
    web.save_upload(D.docx_with_headings(), "h.docx", settings)
    web.save_upload(D.HTML_PAGE.encode(), "g.html", settings)
    with pytest.raises(web.UploadError, match="does not look like a .pdf"):
        web.save_upload(b"plain words", "fake.pdf", settings)
    with pytest.raises(web.UploadError, match="only .txt .md .pdf"):
        web.save_upload(D.xlsx_file(), "budget.xlsx", settings)
    assert sorted(p.name for p in settings.seeds_dir.iterdir()) == [
        "My-manual.pdf",
        "g.html",
        "h.docx",
    ]


def test_duplicates_use_recorded_hashes_and_disk(settings):
    write(settings, "a.txt", "Same words.")
    write(settings, "b.txt", "Other words")
    assert find_duplicate(b"Same words.", settings) == "a.txt"
    assert find_duplicate(b"Same words!", settings) is None
    assert find_duplicate(b"Same words.", settings, known={"a.txt": "0" * 64}) is None


def test_document_file_serves_seed_documents_only(settings, tmp_path):
    write(settings, "m.pdf", D.pdf_simple("x"))
    write(settings, "notes/n.md", "# Notes\n")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", settings.seeds_dir / "link.txt")
    assert document_file("m.pdf", settings)[1] == "application/pdf"
    assert document_file("notes/n.md", settings)[0].name == "n.md"
    for bad in ("../secret.txt", "link.txt", "/etc/passwd", "notes/../m.pdf", "missing.pdf", ""):
        assert document_file(bad, settings) is None, bad


def test_delete_removes_only_a_seed_document(settings, tmp_path):
    write(settings, "a.txt", "Words.")
    (tmp_path / "outside.txt").write_text("keep me")
    with pytest.raises(ValueError, match="no document"):
        delete_document("../outside.txt", settings)
    delete_document("a.txt", settings)
    assert not (settings.seeds_dir / "a.txt").exists() and (tmp_path / "outside.txt").exists()


def test_citation_renders_locator_and_file_links():
    c = Citation(
        1, "dir/m a.pdf", "Manual", 10, 20, "quote", "a quote b", 8, 30, page=17, locator="p. 17"
    )
    html = web.render_citation(c)
    summary, details = html.split("</summary>")
    assert "dir/m a.pdf · p. 17</span>" in summary and "chars" not in summary
    assert "chars 10-20" in details.split('<div class="files">')[1]
    assert 'href="/document/dir/m%20a.pdf#page=17" target="_blank"' in html
    assert 'href="/document/dir/m%20a.pdf" download' in html
    plain = web.render_citation(Citation(1, "n.txt", "N", 0, 5, "quote", "quote", 0, 5))
    assert "open-page" not in plain and "chars 0-5" in plain


def test_documents_panel_lists_format_pages_and_skip_reasons():
    info = {
        "built": True,
        "model": "m",
        "chunks": 3,
        "created": "now",
        "documents": {"m.pdf": {"title": "Manual", "chunks": 3, "format": "pdf", "pages": 30}},
        "skipped": {"scan.pdf": "no text layer in 1 page(s) (a scanned PDF?); run OCR on it first"},
    }
    html = web.render_documents(info)
    assert "<td>pdf</td><td>30</td><td>3</td>" in html
    assert "scan.pdf" in html and "skipped: no text layer" in html


def test_the_panel_lists_each_broken_file_with_its_reason(settings, fake_embedder):
    from assistant.build import build_index

    write(settings, "ok.txt", "A readable document about lighthouses.")
    write(settings, "scan.pdf", D.pdf_scanned())
    write(settings, "locked.pdf", D.pdf_simple("secret", encrypt="pw"))
    write(settings, "cut.pdf", D.pdf_truncated())
    write(settings, "budget.xlsx", D.xlsx_file())
    report = build_index(settings, embedder=fake_embedder)
    html = web.render_documents(web._status(settings))
    assert len(report.skipped) == 4
    for name, reason in report.skipped:
        assert f"<code>{name}</code>" in html and f"skipped: {web._esc(reason)}" in html


def test_example_questions_never_extract_in_the_web_server(settings, fake_embedder, monkeypatch):
    from assistant import extract
    from assistant.build import build_index
    from assistant.retrieval import Retriever
    from assistant.store.status import index_status

    write(settings, "manual.pdf", D.pdf_30_pages())
    build_index(settings, embedder=fake_embedder)

    def refuse(*args, **kwargs):
        raise AssertionError("extraction in the server process")

    monkeypatch.setattr(extract, "extract_path", refuse)
    info = index_status(settings)
    assert web.example_questions(settings, info) == []  # no index loaded in this process yet
    retriever = Retriever(settings, embedder=fake_embedder)
    assert retriever.index.size  # loading registers its stored texts
    questions = web.example_questions(settings, info)
    assert questions  # from the stored text (and its title), extracted by the build only
