import logging
import os

import pytest

from assistant.corpus import load_corpus, make_title
from assistant.errors import EmptyCorpusError

from .conftest import REPO, write


def test_reads_txt_and_md_recursively_with_ids_and_sha(seeded):
    corpus = load_corpus(seeded.seeds_dir)
    ids = [d.id for d in corpus.documents]
    assert ids == ["cats.txt", "news.txt", "notes/bread.md"]
    bread = corpus.documents[2]
    assert bread.title == "Baking bread"
    import hashlib

    raw = (seeded.seeds_dir / "notes/bread.md").read_bytes()
    assert bread.sha256 == hashlib.sha256(raw).hexdigest()


def test_bad_files_are_skipped_with_reasons(settings, caplog):
    caplog.set_level(logging.INFO, logger="assistant.corpus")  # a build's report lists them
    write(settings, "good.txt", "A fine sentence.")
    write(settings, "empty.txt", "")
    write(settings, "blank.md", "   \n\n")
    write(settings, "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    write(settings, "latin1.txt", "caf\xe9".encode("latin-1"))
    write(settings, "fake.pdf", "not a PDF at all")
    write(settings, "sheet.xlsx", b"PK\x03\x04 a spreadsheet")
    corpus = load_corpus(settings.seeds_dir)
    assert [d.id for d in corpus.documents] == ["good.txt"]
    reasons = dict(corpus.skipped)
    assert reasons["empty.txt"] == "empty" and reasons["blank.md"] == "empty"
    assert reasons["binary.txt"].startswith("binary")
    assert reasons["latin1.txt"].startswith("not UTF-8")
    # Nothing is silently ignored: a broken PDF and an unsupported format each get a reason.
    assert reasons["fake.pdf"].startswith("damaged or truncated PDF")
    assert reasons["sheet.xlsx"].startswith("unsupported format (.xlsx)")
    assert "latin1.txt" in caplog.text


def test_symlink_outside_is_not_followed(settings, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret words")
    write(settings, "ok.txt", "inside text")
    os.symlink(outside, settings.seeds_dir / "link.txt")
    os.symlink(tmp_path, settings.seeds_dir / "linkdir")
    inside_target = write(settings, "real.txt", "real text")
    os.symlink(inside_target, settings.seeds_dir / "alias.txt")
    corpus = load_corpus(settings.seeds_dir)
    texts = [d.text for d in corpus.documents]
    assert "top secret words" not in texts
    reasons = dict(corpus.skipped)
    assert "outside" in reasons["link.txt"] and "outside" in reasons["linkdir"]
    assert "alias.txt" in [d.id for d in corpus.documents]


def test_too_large_is_skipped(settings):
    write(settings, "big.txt", "word " * 1000)
    write(settings, "small.txt", "tiny")
    corpus = load_corpus(settings.seeds_dir, max_bytes=1000)
    assert [d.id for d in corpus.documents] == ["small.txt"]
    assert "too large" in dict(corpus.skipped)["big.txt"]


def test_no_documents_is_a_clear_error(settings, tmp_path):
    with pytest.raises(EmptyCorpusError, match="holds no documents: add files"):
        load_corpus(settings.seeds_dir)
    with pytest.raises(EmptyCorpusError, match="does not exist"):
        load_corpus(tmp_path / "missing")


def test_title_is_first_short_line_else_file_name():
    assert make_title("# Heading\nbody", "a.md") == "Heading"
    assert make_title("x" * 300 + "\nmore", "dir/my_long-file.txt") == "my long file"
    assert make_title("\n\n  Title here  \n", "t.txt") == "Title here"


def test_titles_come_from_the_text_not_the_file_name():
    seed = (REPO / "seeds" / "kim-jong-un-party-congress.txt").read_text(encoding="utf-8")
    title = make_title(seed, "kim-jong-un-party-congress.txt")
    # The first sentence, its date and dateline dropped, cut after a clause.
    assert title == "Kim Jong Un, offering closing remarks at a twice-a-decade party conclave…"
    assert make_title("Cats sleep a lot. They dream.\n", "cats.txt") == "Cats sleep a lot"
    assert make_title("The U.S. Senate met Mr. Smith. Then it rained.", "x.txt") == (
        "The U.S. Senate met Mr. Smith"
    )
    long = "word " * 40
    cut = make_title(long, "x.txt")
    assert (
        cut.endswith("…")
        and len(cut) <= 80
        and cut[:-1].split() == ["word"] * len(cut[:-1].split())
    )
    german = "Ein Überblick über die Geschichte der Stadt Zürich und ihrer Umgebung, von den Anfängen bis heute."
    assert make_title(german, "x.txt") == (
        "Ein Überblick über die Geschichte der Stadt Zürich und ihrer Umgebung…"
    )
    for text in ("x" * 300, "", "...\n"):
        assert make_title(text, "dir/my_long-file.txt") == "my long file"


def test_offsets_refer_to_decoded_text_without_newline_translation(settings):
    write(settings, "crlf.txt", b"First line.\r\nSecond line.\r\n")
    doc = load_corpus(settings.seeds_dir).documents[0]
    assert doc.text == "First line.\r\nSecond line.\r\n"
