import pytest

from assistant.answer import ask, render_markdown, standalone_query, verify_citation
from assistant.index import build_index
from assistant.retrieval import Retriever


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
    assert "do not contain" in answer.text
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
