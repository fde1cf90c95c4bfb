"""The reader's parts on documents written for the tests (tests/docs: a manual, board minutes,
an announcement). Most use the fake embedder; the ``model`` test measures the real reader."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import numpy as np
import pytest

from assistant.answer import ask, render_markdown, verify_citation
from assistant.answer.conversation import (
    MAX_TURNS,
    leans_on_history,
    recent_turns,
    standalone_query,
)
from assistant.answer.question import analyze, is_summary_request, respell, wanted_type
from assistant.answer.reader import evidence, search
from assistant.answer.scorer import WEIGHTS
from assistant.answer.select import CHEAP_FEATURES, FEATURES, Candidate, is_heading, quote_groups
from assistant.bm25 import bm25_tokens
from assistant.build import build_index
from assistant.config import Settings
from assistant.retrieval import Retriever
from tests.conftest import REPO, write
from tests.reader_cases import ANSWERABLE, NEAR_MISS, TYPOS

DOCS = Path(__file__).parent / "docs"


@pytest.fixture
def docs(settings, fake_embedder):
    for path in sorted(DOCS.iterdir()):
        write(settings, path.name, path.read_text(encoding="utf-8"))
    build_index(settings, embedder=fake_embedder)
    return settings, Retriever(settings, embedder=fake_embedder)


# --------------------------------------------------------------------------- structure


def _imports(path: Path, package: str) -> set[str]:
    """Modules of ``assistant`` that ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            mod = ".".join(base + ([node.module] if node.module else []))
            if node.module:  # "from . import x" imports the sibling x, not the package's code
                out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("assistant"):
            out.add(node.module)
    return out


def test_no_import_cycles_in_the_package():
    root = REPO / "assistant"
    modules = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(REPO).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = name if rel.name == "__init__" else ".".join(rel.parts[:-1])
        modules[name] = _imports(path, package)
    graph = {m: {d for d in deps if d in modules and d != m} for m, deps in modules.items()}
    # A package's __init__ may re-export its children; a child never imports its own package.
    for m, deps in graph.items():
        for d in deps:
            assert not (m.startswith(d + ".") and d != "assistant"), f"{m} imports its package {d}"
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            if d.startswith(m + "."):
                continue  # a package importing its own children
            if state.get(d) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*path, m, d])}")
            if not state.get(d):
                visit(d, [*path, m])
        state[m] = 2

    for m in graph:
        if not state.get(m):
            visit(m, [])


def test_reader_modules_stay_small():
    for path in (REPO / "assistant" / "answer").rglob("*.py"):
        n = len(path.read_text(encoding="utf-8").splitlines())
        assert n <= 500, f"{path.name}: {n} lines"


def test_package_modules_stay_small():
    for path in (REPO / "assistant").rglob("*.py"):
        n = len(path.read_text(encoding="utf-8").splitlines())
        assert n <= 500, f"{path.relative_to(REPO)}: {n} lines"


def test_weights_match_the_features_the_code_computes():
    weights = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    assert weights["shortlist"]["features"] == CHEAP_FEATURES
    assert weights["sentence"]["features"] == FEATURES
    from assistant.answer.abstain import ABSTAIN_FEATURES

    assert weights["abstain"]["features"] == ABSTAIN_FEATURES
    assert Settings.model_fields["abstain_threshold"].default == weights["threshold"]
    assert "fit_reader" in weights["fitted"]["command"]


def test_reader_model_card_matches_the_weights_and_the_settings():
    from assistant import crossencoder as model

    card = json.loads(model.CARD.read_text(encoding="utf-8"))
    assert model.sha256(model.WEIGHTS) == card["sha256"]
    assert model.WEIGHTS.stat().st_size <= 40_000_000
    assert Settings.model_fields["model_abstain_threshold"].default == card["threshold"]
    assert "train_reader" in card["command"] and card["learning_curve"]
    assert "CC BY-SA 4.0" in card["data"] and "Apache-2.0" in card["base"]
    # the fitted ranker and calibration name what they read, each a feature the code computes
    # (a card fitted before a feature was added reads the others, by name)
    from assistant.answer.model_reader import CONFIDENCE_FEATURES

    assert set(card["ranker"]["features"]) <= set(model.RANK_FEATURES)
    assert set(card["calibration"]["features"]) <= set(CONFIDENCE_FEATURES)
    assert card["ranker"]["features"][0] == "relevance"
    assert card["calibration"]["features"][0] == "answers_at_all"
    assert len(card["ranker"]["coef"]) == len(card["ranker"]["features"])
    assert len(card["calibration"]["coef"]) == len(card["calibration"]["features"])
    assert card["calibration_run"]["command"] == "python -m benchmarks.calibrate_reader"


def test_the_fitted_ranker_and_calibration_read_their_features_by_name():
    from assistant import crossencoder as model

    reader = model.ReaderModel.__new__(model.ReaderModel)  # the fitted parts only, no network
    names = ["a", "b", "c"]
    reader.card = {
        "ranker": {"features": ["relevance", "coverage"], "coef": [1.0, 2.0], "intercept": -1.0},
        "calibration": {"features": ["c", "a"], "coef": [3.0, -1.0], "intercept": 0.5},
    }
    rows = np.array([[0.5] + [0.25] + [9.0] * (len(model.RANK_FEATURES) - 2)])
    assert reader.ranked(rows)[0] == pytest.approx(1 / (1 + np.exp(-(0.5 + 0.5 - 1.0))))
    z = 3.0 * 2.0 - 1.0 * 1.0 + 0.5
    assert reader.calibrated(np.array([1.0, 7.0, 2.0]), names) == pytest.approx(
        1 / (1 + np.exp(-z))
    )
    reader.card = {}  # not fitted yet: the model's own logits
    assert reader.ranked(rows)[0] == pytest.approx(1 / (1 + np.exp(-0.5)))
    assert reader.calibrated(np.array([1.0, 7.0, 2.0]), names) == pytest.approx(
        1 / (1 + np.exp(-1))
    )


def test_a_reader_whose_weights_do_not_match_the_card_is_refused(tmp_path):
    from assistant import crossencoder as model
    from assistant.errors import ModelNotFoundError

    weights = tmp_path / "reader.safetensors"
    weights.write_bytes(model.WEIGHTS.read_bytes()[:-1] + b"\0")
    card = tmp_path / "reader.json"
    card.write_text(model.CARD.read_text(encoding="utf-8"), encoding="utf-8")
    base = str(model.resolve_base())
    with pytest.raises(ModelNotFoundError, match="does not match its model card"):
        model.ReaderModel(base, weights, card)


# --------------------------------------------------------------------------- question analysis


def test_numbers_and_single_characters_are_terms():
    assert bm25_tokens(["Batch 3 of model X"])[0] == ["batch", "3", "model", "x"]
    assert wanted_type("How many grams do I need?") == "number"
    assert wanted_type("When is the next meeting?") == "date"
    assert wanted_type("Who is the treasurer?") == "name"
    assert wanted_type("Why was the lock replaced?") is None


def test_batch_numbers_are_told_apart(docs):
    settings, r = docs
    q = analyze("Which batch was recalled, batch 3?", r.index)
    assert "3" in q.terms
    assert q.coverage({"batch", "3", "recal"}) > q.coverage({"batch", "2", "recal"})


def test_typos_are_corrected_against_the_vocabulary(docs):
    settings, r = docs
    q = analyze("How many boks does the new brnach have?", r.index)
    assert q.corrected.get("brnach") == "branch"
    assert q.spelled == "How many boks does the new branch have?"  # what the wordpieces read
    clean = r.search("How many books does the new branch have?", k=1)[0]
    typo = r.search("How many boks does the new brnach have?", k=1)[0]
    assert (typo.source, typo.start) == (clean.source, clean.start)
    # digits and short terms are never "corrected"
    assert analyze("batch 7", r.index).corrected == {}


def test_typos_the_stems_miss_are_respelled_from_the_retrieved_passages(docs):
    settings, r = docs
    typo = "Which solution do I use for descailng the machine?"
    q = analyze(typo, r.index)
    # the stem of the typo ("descailng") is 3 edits from the index's "descal": out of reach
    assert q.corrected.get("descailng") in (None, "descal") and "descailng" in typo
    passages = search(r, typo, typo, settings.answer_passages, q.spelled)
    again = respell(q, [p.text for p in passages], r.index)
    assert (
        again is not None and again.spelled == "Which solution do I use for descaling the machine?"
    )
    assert "descal" in again.terms and again.corrected["descailng"] == "descal"
    answer = ask(typo, settings=settings, retriever=r)
    assert answer.query == typo  # the shown query is the user's; only the reader reads the fix
    # nothing unknown, or nothing the passages spell: no second search
    clean = analyze("Which solution do I use for descaling the machine?", r.index)
    assert respell(clean, [p.text for p in passages], r.index) is None
    assert (
        respell(analyze("What is a zqxwv?", r.index), [p.text for p in passages], r.index) is None
    )


def test_what_the_question_pins_down_and_the_passage_lacks_is_an_abstention_feature(docs):
    settings, r = docs
    from assistant.answer import abstain

    def feats(question):
        q = analyze(question, r.index)
        passages = search(r, question, question, settings.answer_passages, q.spelled)
        q, ranked, cands = evidence(question, passages, r, settings, q)
        balance = [c for c in ranked if "balance of 4,250 euros" in c.text]
        assert balance, [c.text for c in ranked]
        return abstain.features(q, balance, cands, passages)

    asked = feats("What was the balance at the end of February?")
    other_month = feats("What was the balance at the end of March?")
    other_year = feats("What was the balance at the end of February 2031?")
    assert asked["figures_missing"] == 0 and other_month["figures_missing"] == 1
    assert other_year["figures_missing"] > 0  # "February" is there, "2031" is not
    assert feats("What balance did Tom Becker report?")["names_missing"] == 0
    assert feats("What balance did Anna Schmidt report?")["names_missing"] == 1
    # a typo of a name the passage has is that name, not another person
    assert feats("What balance did Tom Bekcer report?")["names_missing"] == 0


def test_summary_requests_are_recognized():
    for q in ["Summarize the article", "What is this document about?", "Give me an overview"]:
        assert is_summary_request(q), q
    for q in ["What is the capital of Australia?", "How long is the warranty?"]:
        assert not is_summary_request(q), q


def test_headings_are_flagged():
    assert is_heading("## Warranty", "Manual")
    assert is_heading("Northwind Library Opens a New Branch in Eastgate", "x")
    assert not is_heading("The branch is closed on Sundays.", "x")


# --------------------------------------------------------------------------- conversation


def test_which_questions_lean_on_the_conversation():
    for q in ["When did he die?", "And when was that?", "Why?", "What about the warranty?"]:
        assert leans_on_history(q), q
    for q in [
        "What is the capital of Australia?",
        "Summarize the article",
        "Who is the treasurer of the garden?",
        "When did Maria Lopez say she would stop?",
    ]:
        assert not leans_on_history(q), q


def test_standalone_questions_are_not_rewritten():
    history = [("How many troops marched in the parade?", "“more than 14,000 troops” [1]")]
    for q in ["What is the capital of Australia?", "Summarize the article"]:
        assert standalone_query(q, history) == q
    assert "troops" in standalone_query("And when was that?", history)


def test_history_is_capped_and_checked():
    history = [(f"q{i}", "a" * 100_000) for i in range(1000)]
    turns = recent_turns(history)
    assert len(turns) == MAX_TURNS and all(len(a) <= 2000 for _, a in turns)
    assert turns[-1][0] == "q999"
    with pytest.raises(TypeError):
        recent_turns([("only one",)])
    with pytest.raises(TypeError):
        recent_turns("not a list")


def test_long_history_does_not_slow_the_answer(docs):
    settings, r = docs
    history = [("How long is the warranty? " * 10, "x" * 1000) for _ in range(1000)]  # ~1.3 MB
    ask("How long is the warranty?", settings=settings, retriever=r)  # warm
    t0 = time.perf_counter()
    ask("And what about the filter?", history=history, settings=settings, retriever=r)
    assert time.perf_counter() - t0 < 5  # linear in the last turns only (benchmark: < 1 s)


# --------------------------------------------------------------------------- answers


def test_title_line_never_answers_a_content_question(docs):
    settings, r = docs
    answer = ask("How many books does the new branch have?", settings=settings, retriever=r)
    for c in answer.citations:
        assert not is_heading(c.quote, c.title), c.quote


def test_answers_carry_confidence_and_verified_citations(docs):
    settings, r = docs
    for q, _ in ANSWERABLE:
        answer = ask(q, settings=settings, retriever=r)
        assert 0.0 <= answer.confidence <= 1.0
        for c in answer.citations:
            assert verify_citation(c, settings.seeds_dir)
            text = (settings.seeds_dir / c.source).read_text(encoding="utf-8")
            assert text[c.start : c.end] == c.quote
            if c.answer_start is not None:
                assert c.start <= c.answer_start < c.answer_end <= c.end


def test_abstains_exactly_below_the_threshold(docs):
    settings, r = docs
    q = "How much did the building work cost?"
    open_answer = ask(
        q, settings=settings.model_copy(update={"abstain_threshold": -9}), retriever=r
    )
    c = open_answer.confidence
    above = ask(
        q, settings=settings.model_copy(update={"abstain_threshold": c - 1e-3}), retriever=r
    )
    below = ask(
        q, settings=settings.model_copy(update={"abstain_threshold": c + 1e-3}), retriever=r
    )
    assert not above.abstained and below.abstained and above.confidence == below.confidence


def test_answer_phrase_is_bold_inside_the_verbatim_quote(docs):
    from assistant.answer import select
    from assistant.types import Answer, Citation, Passage

    settings, r = docs
    text = (DOCS / "announcement.txt").read_text(encoding="utf-8")
    passage = Passage(text, "announcement.txt", "Northwind", 0, len(text), 1.0)
    q = analyze("How much did the building work cost?", r.index)
    cand = next(c for c in select.candidates(q, [passage]) if "3.2 million" in c.text)
    assert cand.features["type_match"] == 1.0
    span = select.answer_span(q, cand)
    assert text[span[0] : span[1]].startswith("3.2 million")
    c = Citation.quoting(1, passage, cand.start, cand.end, span)
    assert verify_citation(c, settings.seeds_dir) and c.quote == text[cand.start : cand.end]
    answer = Answer(f"“{c.quote}” [1]", [c], [passage], False, q.text, q.text)
    assert "**3.2 million" in render_markdown(answer) and "**" not in answer.text


def test_summary_of_a_named_document(docs):
    settings, r = docs
    answer = ask("Summarize the espresso machine manual", settings=settings, retriever=r)
    assert not answer.abstained and answer.kind == "summary"
    assert 3 <= len(answer.citations) <= 5
    assert {c.source for c in answer.citations} == {"manual.md"}
    assert [c.start for c in answer.citations] == sorted(c.start for c in answer.citations)
    assert all(verify_citation(c, settings.seeds_dir) for c in answer.citations)
    assert all(not is_heading(c.quote, c.title) for c in answer.citations)
    assert "[3]" in render_markdown(answer)


def test_summary_after_a_turn_is_not_a_follow_up(docs):
    settings, r = docs
    first = ask(
        "Who is the treasurer?",
        settings=settings.model_copy(update={"abstain_threshold": 0}),
        retriever=r,
    )
    answer = ask(
        "What is this document about?",
        history=[("Who is the treasurer?", render_markdown(first))],
        settings=settings,
        retriever=r,
    )
    assert answer.kind == "summary" and answer.query == "What is this document about?"
    assert {c.source for c in answer.citations} == {first.citations[0].source}


def test_lexical_scorer_embeds_no_sentence(docs, fake_embedder):
    settings, _ = docs
    lexical = settings.model_copy(update={"answer_scorer": "lexical"})
    r = Retriever(lexical, embedder=fake_embedder)
    before = fake_embedder.texts_embedded
    answer = ask("How long is the warranty?", settings=lexical, retriever=r)
    assert fake_embedder.texts_embedded - before <= 1  # the query only
    assert answer.citations or answer.abstained


# --------------------------------------------------------------------------- the real reader


def test_quote_groups_join_close_neighbours_and_other_passages():
    def cand(passage, position, score):
        return Candidate(
            passage, position, 100 * position, 100 * position + 90, "", set(), score=score
        )

    best, after, far, other, weak = (
        cand(0, 3, 0.6),
        cand(0, 4, 0.2),
        cand(0, 6, 0.5),
        cand(1, 0, 0.3),
        cand(2, 0, 0.1),
    )
    ranked = [best, far, other, after, weak]
    groups = quote_groups(ranked, max_quotes=2, adjacent_ratio=0.3, second_ratio=0.4)
    # the neighbour joins the best sentence's quote, in document order; the sentence two
    # places away does not (a quote is one contiguous span); the other passage's best does
    assert groups == [[best, after], [other]]
    assert quote_groups(ranked, 1, 0.3, 0.4) == [[best, after]]
    assert quote_groups(ranked, 2, 0.5, 0.6) == [[best]]  # both under their share of 0.6
    before = cand(0, 2, 0.5)
    assert quote_groups([best, before, after], 3, 0.3, 0.4)[0] == [before, best, after]
    assert quote_groups([], 2, 0.3, 0.4) == []


def test_a_quote_of_neighbouring_sentences_is_one_verbatim_span(docs):
    settings, r = docs
    for q, _ in ANSWERABLE:
        for c in ask(q, settings=settings, retriever=r).citations:
            assert verify_citation(c, settings.seeds_dir)
            assert c.passage_start <= c.start < c.end <= c.passage_end


@pytest.mark.model
def test_real_reader_on_documents_written_for_the_tests(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for path in DOCS.iterdir():
        (seeds / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "embeddings")
    build_index(settings, progress=False)
    r = Retriever(settings)
    misses = []
    for q, expected in ANSWERABLE + TYPOS:
        answer = ask(q, settings=settings, retriever=r)
        if answer.abstained or not any(expected in c.quote for c in answer.citations):
            misses.append((q, answer.text))
    answered = []
    for q in NEAR_MISS:
        answer = ask(q, settings=settings, retriever=r)
        if not answer.abstained:
            answered.append((q, answer.text))
    n = len(ANSWERABLE) + len(TYPOS)
    print(
        f"\nreader on tests/docs: {n - len(misses)}/{n} right, "
        f"{len(NEAR_MISS) - len(answered)}/{len(NEAR_MISS)} near misses declined"
    )
    # Measured 2026-12-04 with the shipped weights (match model, quote groups, respelling, and
    # the abstention's figure/name features): 19/21 right, 3/6 near misses declined (without
    # the figure/name features: 18/21 and 2/6; before the match model: 14/21; before the
    # wordpiece match: 15/21 and 1/6). Near misses are the reader's weak point (BENCHMARKS.md, SQuAD
    # 2.0). A guard against regressions, not the goal.
    assert len(misses) <= 5, misses
    assert len(answered) <= 4, answered


def test_pronouns_are_replaced_by_the_name_they_refer_to():
    history = [("When did Maria Lopez join the Riverside Garden Club?", "“In 2019” [1]")]
    assert (
        standalone_query("What role did she take on?", history)
        == "What role did Maria Lopez take on?"
    )
    assert (
        standalone_query("What was her role in the club?", history)
        == "What was Maria Lopez’s role in the club?"
    )
    # a name in the question itself means "she" refers to it: nothing to replace
    q = "When did Ana Ruiz say she would stop?"
    assert standalone_query(q, history) == q
    # an "it" with no name to put in its place gets the last question's key words instead
    history = [("How often should the water filter be replaced?", "“every six months” [1]")]
    query = standalone_query("How much does it cost?", history)
    assert query.startswith("How much does it cost?") and "filter" in query


def test_after_a_who_question_he_or_she_is_the_answer():
    history = [
        (
            "Who founded the Riverside Garden Club?",
            "“The club was founded by Maria Lopez in 2019.” [1]",
        )
    ]
    assert standalone_query("When did she retire?", history) == "When did Maria Lopez retire?"


def test_a_typod_question_is_also_searched_as_corrected(docs):
    settings, r = docs
    typo = "What tme does the brnach open on Satudays?"
    spelled = analyze(typo, r.index).spelled
    assert "the branch open on saturday" in spelled
    clean = r.search(spelled, k=1)[0]
    fused = search(r, typo, typo, 3, spelled)
    assert (clean.source, clean.start) in {(p.source, p.start) for p in fused}
    assert search(r, typo, typo, 3) == r.search(typo, k=3)  # nothing corrected: one search


def test_the_span_head_marks_the_answering_phrase(docs):
    from assistant.answer import select
    from assistant.crossencoder import default_reader
    from assistant.types import Answer, Citation, Passage

    settings, r = docs
    text = (DOCS / "announcement.txt").read_text(encoding="utf-8")
    passage = Passage(text, "announcement.txt", "Northwind", 0, len(text), 1.0)
    q = analyze("How much did the building work cost?", r.index)
    cand = next(c for c in select.candidates(q, [passage]) if "3.2 million" in c.text)
    ((a, b),) = default_reader().read(q.text, [cand.text]).spans
    assert "3.2" in cand.text[a:b]  # the span head marks the figure
    span = (cand.start + a, cand.start + b)
    c = Citation.quoting(1, passage, cand.start, cand.end, span)
    assert verify_citation(c, settings.seeds_dir) and c.quote == text[cand.start : cand.end]
    answer = Answer(f"“{c.quote}” [1]", [c], [passage], False, q.text, q.text)
    assert "**" in render_markdown(answer) and "**" not in answer.text


def test_not_found_says_whether_anything_was_about_the_question(docs):
    from assistant.answer import ABSTAIN_TEXT
    from assistant.answer.reader import NOT_ABOUT_TEXT

    settings, r = docs
    strict = settings.model_copy(update={"abstain_threshold": 1.0})
    about = ask("How long is the warranty?", settings=strict, retriever=r)  # all its terms there
    assert about.abstained and about.text == ABSTAIN_TEXT
    off = ask("What is the boiling point of liquid nitrogen?", settings=settings, retriever=r)
    assert off.abstained and off.text == NOT_ABOUT_TEXT


def test_the_model_scorer_answers_with_verified_quotes_and_a_bold_phrase(docs):
    settings, r = docs
    model = settings.model_copy(update={"answer_scorer": "model", "model_abstain_threshold": 0})
    answer = ask("How much did the building work cost?", settings=model, retriever=r)
    assert not answer.abstained and 0.0 <= answer.confidence <= 1.0
    assert any("3.2 million" in c.quote for c in answer.citations)
    for c in answer.citations:
        assert verify_citation(c, settings.seeds_dir)
        if c.answer_start is not None:
            assert c.start <= c.answer_start < c.answer_end <= c.end
    strict = model.model_copy(update={"model_abstain_threshold": 1.0})
    assert ask("How much did the building work cost?", settings=strict, retriever=r).abstained
