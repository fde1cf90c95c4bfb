"""The answers benchmark's extra sets: SQuAD 2.0, typos, follow-ups, standalone questions after
an unrelated turn, summaries, and a 1 MB history. Called by ``benchmarks/answers.py``."""

from __future__ import annotations

import math
import random
import time

from benchmarks.answer_sets import follow_ups, squad2_questions, with_typos
from benchmarks.common import bench_settings, ensure_index, normalize, squad2_seeds, table


def _hit(answer, golds: list[str]) -> bool:
    quotes = [normalize(c.quote) for c in answer.citations]
    return not answer.abstained and any(normalize(g) in q for g in golds for q in quotes)


def squad2(threshold: float, n: int | None, scorer: str = "fitted") -> list[list]:
    from assistant.answer import ask
    from assistant.retrieval import Retriever

    settings = bench_settings(squad2_seeds(), answer_scorer=scorer)
    ensure_index(settings, progress=False)
    retriever = Retriever(settings)
    open_settings = settings.model_copy(
        update={"abstain_threshold": -math.inf, "model_abstain_threshold": -math.inf}
    )
    records = []
    questions = squad2_questions()
    if n and n < len(questions):  # a seeded sample over all 16 articles, not the first few
        questions = random.Random(2).sample(questions, n)
    for q in questions:
        answer = ask(q["text"], settings=open_settings, retriever=retriever)
        records.append((q["impossible"], answer.confidence, _hit(answer, q["answers"])))
    imp = [r for r in records if r[0]]
    ans = [r for r in records if not r[0]]
    rows = []
    for t in sorted({round(i / 20, 2) for i in range(1, 20)} | {threshold}):
        rows.append(
            [
                f"{t:.2f}" + (" <- chosen" if t == threshold else ""),
                sum(c < t for _, c, _ in imp) / len(imp),
                sum(c >= t and h for _, c, h in ans) / len(ans),
            ]
        )
    print(f"\n### SQuAD 2.0 part 1 ({len(imp)} unanswerable, {len(ans)} answerable)\n")
    print(table(["threshold", "unanswerable abstained", "answerable answered with gold"], rows))
    return rows


def standalone_same(questions, chosen, settings, retriever) -> float:
    """Share of ``questions`` whose answer after an unrelated turn (a question of ``chosen``
    about another article) equals their answer alone."""
    from assistant.answer import ask

    same = 0
    for k, q in enumerate(questions):
        other = next(
            o
            for o in chosen[k + 1 :] + chosen
            if o["gold_doc"].rsplit("_", 1)[0] != q["gold_doc"].rsplit("_", 1)[0]
        )
        prior = ask(other["text"], settings=settings, retriever=retriever)
        alone = ask(q["text"], settings=settings, retriever=retriever)
        after = ask(
            q["text"], history=[(other["text"], prior.text)], settings=settings, retriever=retriever
        )
        same += after.text == alone.text and after.abstained == alone.abstained
    return same / len(questions)


def run_extra(queries, chosen, normal, settings, retriever, threshold: float, n: int) -> None:
    from assistant.answer import ask

    squad2(threshold, max(2 * n, 1000), settings.answer_scorer)

    # Typos: the first n reported questions with one edit in every third content word.
    clean = normal[:n]
    typo_hits = []
    for k, q in enumerate(chosen[:n]):
        answer = ask(with_typos(q["text"], seed=k), settings=settings, retriever=retriever)
        typo_hits.append(_hit(answer, q["answers"]))
    clean_hit = sum(r["answer_hit"] and r["confidence"] >= threshold for r in clean) / len(clean)
    print(f"\n### Typos ({len(clean)} reported questions, one edit in every third content word)\n")
    print(
        table(
            ["set", "answer hit"],
            [["clean", clean_hit], ["with typos", sum(typo_hits) / len(typo_hits)]],
        )
    )

    # Follow-ups: the second question of a paragraph, its shared name replaced by "it".
    pairs = follow_ups(queries, n)
    fu_hits, fu_alone, originals = [], [], []
    for first, second in pairs:
        a1 = ask(first["text"], settings=settings, retriever=retriever)
        a2 = ask(
            second["text"],
            history=[(first["text"], a1.text)],
            settings=settings,
            retriever=retriever,
        )
        fu_hits.append(_hit(a2, second["answers"]))
        fu_alone.append(
            _hit(ask(second["text"], settings=settings, retriever=retriever), second["answers"])
        )
        originals.append(
            _hit(ask(second["original"], settings=settings, retriever=retriever), second["answers"])
        )
    standalone = chosen[:n]
    same = standalone_same(standalone, chosen, settings, retriever)
    print(f"\n### Follow-ups ({len(pairs)} pronoun questions; {len(standalone)} standalone)\n")
    print(
        table(
            ["set", "value"],
            [
                [
                    "pronoun question with the first as history: answer hit",
                    sum(fu_hits) / len(pairs),
                ],
                [
                    "the same pronoun question without history: answer hit",
                    sum(fu_alone) / len(pairs),
                ],
                ["the original (named) question alone: answer hit", sum(originals) / len(pairs)],
                [
                    "standalone after an unrelated turn: same answer as alone",
                    same,
                ],
            ],
        )
    )

    # Summaries of every article.
    from benchmarks.common import squad_articles

    rows = []
    for article, paragraphs in squad_articles().items():
        title = paragraphs[0]["title"].replace("_", " ")
        answer = ask(f"Summarize the article about {title}", settings=settings, retriever=retriever)
        text = (settings.seeds_dir / f"{article}.txt").read_text(encoding="utf-8")
        breaks = [i for i in range(len(text)) if text.startswith("\n\n", i)]
        paras = {sum(b < c.start for b in breaks) for c in answer.citations}
        verified = all(text[c.start : c.end] == c.quote for c in answer.citations)
        right_doc = all(c.source == f"{article}.txt" for c in answer.citations)
        rows.append((answer.abstained, len(answer.citations), len(paras), verified, right_doc))
    k = len(rows)
    print(f"\n### Summaries ({k} articles, 'Summarize the article about <title>')\n")
    print(
        table(
            ["metric", "value"],
            [
                ["abstained", sum(r[0] for r in rows) / k],
                ["3-5 cited sentences", sum(3 <= r[1] <= 5 for r in rows) / k],
                ["every citation verified", sum(r[3] for r in rows) / k],
                ["from the named article", sum(r[4] for r in rows) / k],
                [
                    "sentences from distinct paragraphs (share)",
                    sum(r[2] for r in rows) / max(1, sum(r[1] for r in rows)),
                ],
            ],
        )
    )

    # A 1 MB history.
    history = [(f"Question {i} about the parade and the troops?", "x" * 1000) for i in range(1000)]
    t0 = time.perf_counter()
    ask("And when was that?", history=history, settings=settings, retriever=retriever)
    print(f"\nask() with a 1 MB history (1,000 turns of 1 kB): {time.perf_counter() - t0:.3f} s")
