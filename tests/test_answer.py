import pytest

from assistant.answer import (
    ask,
    ask_stream,
    metadata_question,
    metadata_spans,
    render_markdown,
    standalone_query,
    verify_citation,
)
from assistant.answer.reader import NOT_ABOUT_TEXT
from assistant.build import build_index
from assistant.retrieval import Retriever
from tests.conftest import write


@pytest.fixture
def retriever(seeded, fake_embedder):
    build_index(seeded, embedder=fake_embedder)
    return Retriever(seeded, embedder=fake_embedder)


def test_answer_quotes_a_verified_sentence(seeded, retriever):
    answer = ask(
        "How many troops featured in the Wednesday night military parade?",
        settings=seeded,
        retriever=retriever,
    )
    assert not answer.abstained
    assert "14,000 troops" in answer.text and "[1]" in answer.text
    for c in answer.citations:
        source = (seeded.seeds_dir / c.source).read_text(encoding="utf-8")
        assert source[c.start : c.end] == c.quote
        assert source[c.passage_start : c.passage_end] == c.passage
        assert f"[{c.n}]" in answer.text
    assert "**" in render_markdown(answer)


def test_every_marker_refers_to_a_citation(seeded, retriever):
    import re

    for q in [
        "How long do cats sleep?",
        "How long should the dough be kneaded?",
        "Who is Kim Ju Ae?",
    ]:
        answer = ask(q, settings=seeded, retriever=retriever)
        markers = {int(m) for m in re.findall(r"\[(\d+)\]", answer.text)}
        assert markers == {c.n for c in answer.citations}


def test_citation_that_does_not_match_the_file_is_dropped(seeded, retriever):
    answer = ask("How long do cats sleep?", settings=seeded, retriever=retriever)
    assert not answer.abstained
    (seeded.seeds_dir / "cats.txt").write_text("Rewritten after the build, offsets are now wrong.")
    assert not verify_citation(answer.citations[0], seeded.seeds_dir)


def test_off_topic_question_abstains(seeded, retriever):
    answer = ask(
        "What is the airspeed velocity of an unladen swallow?", settings=seeded, retriever=retriever
    )
    assert answer.abstained and not answer.citations
    assert answer.text == NOT_ABOUT_TEXT  # nothing in the documents is about swallows
    assert answer.passages  # the closest matches are still shown
    assert "Closest matches" in render_markdown(answer)


def test_follow_up_carries_the_conversation():
    history = [("How many troops marched in the parade?", "“more than 14,000 troops” [1]")]
    query = standalone_query("And when was that?", history)
    assert query.startswith("And when was that?")
    assert "troops" in query and "parade" in query
    assert standalone_query("How long do cats sleep?", history) == "How long do cats sleep?"
    q2 = standalone_query(
        "What did he say about China?", [("What did Kim say?", "“Kim Jong Un said it” [1]")]
    )
    assert "Kim" in q2


def test_empty_question_rejected(seeded, retriever):
    with pytest.raises(ValueError):
        ask("  ", settings=seeded, retriever=retriever)


# --------------------------------------------------------------------------- metadata questions


def test_who_wrote_it_quotes_the_byline(seeded, retriever):
    answer = ask("Who wrote it?", settings=seeded, retriever=retriever)
    assert not answer.abstained
    assert answer.citations[0].quote == "Write to Dasl Yoon at dasl.yoon@wsj.com"
    assert answer.text == "“Write to Dasl Yoon at dasl.yoon@wsj.com” [1]"
    c = answer.citations[0]
    source = (seeded.seeds_dir / c.source).read_text(encoding="utf-8")
    assert source[c.passage_start : c.passage_end] == c.passage and c.quote in c.passage


def test_when_was_it_published_quotes_the_date_line(seeded, retriever):
    answer = ask("When was the article published?", settings=seeded, retriever=retriever)
    assert not answer.abstained and answer.citations[0].quote == "date 2026-02-26"


def test_metadata_questions_are_recognized_generally():
    for q in ["Who wrote it?", "Who is the author of this article?", "who wrote this story"]:
        assert metadata_question(q) == "author", q
    for q in ["When was it published?", "What is the date of the article?"]:
        assert metadata_question(q) == "date", q
    for q in ["Who wrote the national anthem?", "When was the parade?", "Who is Kim Ju Ae?"]:
        assert metadata_question(q) is None, q


def test_byline_and_date_lines():
    text = (
        "Harbour report\n\nBy Jane Doe and John Smith\nBy 2020, the harbour had doubled.\n"
        "Published: March 3, 2021\nThe ships came in 2019.\nReporting by Ann Lee; "
        "editing by Bo Chan\nJane Doe, jane@example.org\n"
    )
    authors = [text[a:b] for a, b, _, _ in metadata_spans(text, "author")]
    assert authors == ["By Jane Doe and John Smith", "Jane Doe, jane@example.org"]
    dates = [text[a:b] for a, b, _, _ in metadata_spans(text, "date")]
    assert dates == ["Published: March 3, 2021"]


def test_document_without_byline_falls_back_to_content(settings, fake_embedder):
    write(settings, "a.txt", "The anthem was written by Francis Scott Key in 1814.\n")
    build_index(settings, embedder=fake_embedder)
    r = Retriever(settings, embedder=fake_embedder)
    answer = ask("Who wrote it?", settings=settings, retriever=r)
    assert answer.kind != "metadata"  # scored as content, no byline invented


# --------------------------------------------------------------------------- scoring


def test_few_sentences_embedded_and_cached(seeded, fake_embedder):
    from assistant.answer.select import SHORTLIST

    build_index(seeded, embedder=fake_embedder)
    r = Retriever(seeded, embedder=fake_embedder)
    q = "What did Kim say about the nuclear program and relations with the U.S.?"
    before = fake_embedder.texts_embedded
    ask(q, settings=seeded, retriever=r)
    first = fake_embedder.texts_embedded - before
    assert first <= SHORTLIST + 1  # + the query (its vector and wordpieces: one pass)
    before = fake_embedder.texts_embedded
    ask(q, settings=seeded, retriever=r)
    assert fake_embedder.texts_embedded == before  # sentences and query vector cached


# --------------------------------------------------------------------------- follow-ups


def test_follow_up_when_was_that(seeded, retriever):
    history = [
        (
            "How many troops featured in the military parade?",
            "“A Wednesday night military parade featured more than 14,000 troops” [1]",
        )
    ]
    always = seeded.model_copy(update={"abstain_threshold": 0.0})  # fake embedder: not tested here
    answer = ask("and when was that?", history=history, settings=always, retriever=retriever)
    assert answer.query.startswith("and when was that?") and "parade" in answer.query
    assert answer.question == "and when was that?"
    assert not answer.abstained and "Wednesday" in answer.citations[0].quote


def test_follow_up_person_pronoun_keeps_the_name(seeded, retriever):
    history = [
        (
            "Who gave the closing remarks at the party congress?",
            "“SEOUL—Kim Jong Un, offering closing remarks at a twice-a-decade party conclave, "
            "left the door open for talks with the U.S.” [1]",
        )
    ]
    answer = ask(
        "What did he say about China?", history=history, settings=seeded, retriever=retriever
    )
    assert "Kim Jong Un" in answer.query and "China" in answer.query
    q2 = standalone_query("What did he say about China?", [("What did Kim Jong Un say?", "…")])
    assert q2 == "What did Kim Jong Un say about China?"


def test_follow_up_chain_and_standalone_questions():
    history = [
        ("How many troops marched in the parade?", "“more than 14,000 troops” [1]"),
        ("and when was that?", "“A Wednesday night military parade” [1]"),
    ]
    # the last turn has nothing to carry, so the one before it is used
    assert "troops" in standalone_query("Where was it?", history)
    assert standalone_query("Who is Kim Ju Ae?", history) == "Who is Kim Ju Ae?"


def test_stream_protocol(seeded, retriever):
    steps = list(
        ask_stream(
            "How many troops featured in the Wednesday night military parade?",
            settings=seeded,
            retriever=retriever,
        )
    )
    assert all(isinstance(t, str) and a is None for t, a in steps[:-1])
    text, answer = steps[-1]
    assert answer is not None and text == answer.text


def test_quotes_come_from_different_passages(seeded, retriever):
    for q in [
        "What did Kim say about nuclear talks with the U.S.?",
        "How many troops featured in the Wednesday night military parade?",
    ]:
        always = seeded.model_copy(update={"abstain_threshold": 0.0})  # fake embedder
        answer = ask(q, settings=always, retriever=retriever)
        assert 1 <= len(answer.citations) <= seeded.answer_sentences
        places = {(c.source, c.passage_start) for c in answer.citations}
        assert len(places) == len(answer.citations)


@pytest.mark.model
def test_real_model_on_the_default_seeds():
    from assistant.config import Settings
    from tests.conftest import REPO

    settings = Settings(seeds_dir=REPO / "seeds", index_dir=REPO / "embeddings")
    r = Retriever(settings)
    for q in ["What is the capital of Australia?", "How do I bake sourdough bread?"]:
        answer = ask(q, settings=settings, retriever=r)
        assert answer.abstained, (q, answer.confidence)
    answer = ask("Who wrote it?", settings=settings, retriever=r)
    assert answer.citations[0].quote == "Write to Dasl Yoon at dasl.yoon@wsj.com"
    answer = ask("How many troops took part in the parade?", settings=settings, retriever=r)
    assert not answer.abstained and "14,000 troops" in answer.citations[0].quote
    follow = ask(
        "and when was that?",
        history=[("How many troops took part in the parade?", answer.text)],
        settings=settings,
        retriever=r,
    )
    assert "parade" in follow.query and not follow.abstained
    assert any("Wednesday" in c.quote for c in follow.citations)
