from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from assistant.chunking import Chunker, split_sentences
from assistant.tokens import get_encoding
from assistant.types import Document

from .conftest import SEED

ENC = get_encoding("cl100k_base")


def chunker(max_tokens=40, overlap=8, fits=None):
    return Chunker(ENC, max_tokens, overlap, fits)


def test_sentences_split_on_punctuation_and_lines_not_abbreviations():
    text = "Dr. Smith met Mr. Jones in the U.S. yesterday. It rained!\nNew line here\n\nAnd “Quoted.” Next one? Yes."
    got = [text[a:b] for a, b in split_sentences(text)]
    assert got == [
        "Dr. Smith met Mr. Jones in the U.S. yesterday.",
        "It rained!",
        "New line here",
        "And “Quoted.”",
        "Next one?",
        "Yes.",
    ]


def test_seed_chunks_exact_within_budget_and_on_sentence_boundaries():
    text = SEED.read_text(encoding="utf-8")
    doc = Document("seed.txt", "t", text, "x")
    chunks = chunker(200, 32).chunk(doc)
    assert len(chunks) >= 3
    starts = {a for a, _ in split_sentences(text)}
    ends = {b for _, b in split_sentences(text)}
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.n_tokens == len(ENC.encode_ordinary(c.text)) <= 200
        assert c.start in starts and c.end in ends
    # Together the chunks cover every sentence.
    covered = set()
    for c in chunks:
        covered |= {s for s in starts if c.start <= s < c.end}
    assert covered == starts


def test_overlap_repeats_trailing_sentences():
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = chunker(40, 16).chunk(Document("d", "t", text, "x"))
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:]))
    for a, b in zip(chunks, chunks[1:]):
        assert b.start > a.start  # always progresses


def test_long_sentence_is_split_at_token_boundaries():
    text = "word " * 500 + "end."
    chunks = chunker(50, 10).chunk(Document("d", "t", text, "x"))
    assert len(chunks) > 10
    for c in chunks:
        assert text[c.start : c.end] == c.text and c.n_tokens <= 50


def test_fits_predicate_shrinks_chunks():
    text = " ".join(f"Alpha beta gamma delta {i}." for i in range(60))
    chunks = chunker(200, 0, fits=lambda t: len(t) <= 120).chunk(Document("d", "t", text, "x"))
    assert all(len(c.text) <= 120 for c in chunks)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=1500),
    st.integers(8, 80),
    st.integers(0, 7),
)
def test_offsets_exact_on_arbitrary_text(text, max_tokens, overlap):
    chunks = chunker(max_tokens, overlap).chunk(Document("d", "t", text, "x"))
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text.strip() == c.text and c.text
        assert len(ENC.encode_ordinary(c.text)) <= max_tokens
    if text.strip():
        assert chunks
