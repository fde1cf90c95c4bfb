"""Training and calibration groups for the reader model (``train_reader.py``).

A group is one question against a shortlist of sentences, as ``ask()`` reads it: the target is
the sentence holding the answer, or "no answer" (index -1). From the shared data only:

- SQuAD v1.1 **train** questions: the answer's sentence, other sentences of its paragraph, and
  hard negatives that BM25 over the article's sentences ranks high in other paragraphs;
- "no answer" groups: a train question against the article's best-ranked sentences *outside*
  its paragraph (on topic, not answering: what a question about a missing document meets), and
  SQuAD 2.0 dev part 2's unanswerable questions against their paragraph;
- "swapped" groups: a train question with one name or number that its answer's sentence holds
  replaced by another from the same article that the paragraph never mentions, against its
  paragraph (the near miss SQuAD 2.0's writers made by hand: on topic, not answered);
- "deleted" groups: a train question against its own group with the answer cut out of the
  answer's sentence (the sentence still on topic, naming what the question names, but no longer
  holding what it asks: "how much does it cost?" against a sentence with no price);
- typo'd, lower-cased and follow-up-shaped copies of some questions.

Held out (never trained on): ``HELD_OUT`` train articles and part 2's calibration articles,
used for the learning curve and for calibrating the "no answer" probability.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

from assistant.chunking import split_sentences

try:
    from benchmarks.common import DATA
except ImportError:  # run as a script
    from common import DATA  # type: ignore[no-redef]

HELD_OUT = 24  # train articles kept for the learning curve and calibration
PART2_CALIBRATION = 7  # of part 2's 19 articles, kept for calibration
GROUP = 6  # sentences per shortlist in training


@dataclass
class Group:
    question: str
    sentences: list[str]
    target: int  # index of the answer's sentence, -1 for "no answer"
    answer: tuple[int, int] | None  # the answer's char span inside the target sentence
    kind: str  # "answer", "outside", "squad2", "swap", "deleted", with "+typo"/"+lower"/"+followup"


def load_articles(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["data"]


def _bm25(texts: list[str]):
    import bm25s

    index = bm25s.BM25()
    index.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    return index


def _ranked(index, n_docs: int, questions: list[str], k: int) -> list[list[int]]:
    import bm25s

    tokens = bm25s.tokenize(questions, stopwords="en", show_progress=False)
    if not any(len(t) for t in tokens.ids):
        return [[] for _ in questions]
    docs, _ = index.retrieve(tokens, k=min(k, n_docs), show_progress=False)
    return [list(map(int, row)) for row in docs]


NAME = re.compile(r"^(?:[A-Z][\w'-]*|\d[\d,.]*)$")


def swap(question: str, sentence: str, paragraph: str, names: list[str], rng: random.Random):
    """``question`` with one of its names or numbers that ``sentence`` holds replaced by one of
    ``names`` of the same shape that ``paragraph`` never mentions; None when there is none."""
    words = question.split(" ")
    spots = []
    for i, w in enumerate(words[1:], 1):
        core = w.rstrip("?,.;:")
        if core.endswith("'s"):
            core = core[:-2]
        if NAME.match(core) and core in sentence:
            spots.append((i, core))
    if not spots:
        return None
    i, core = rng.choice(spots)
    shape = core[0].isdigit()
    pool = [n for n in names if n[0].isdigit() == shape and n != core and n not in paragraph]
    if not pool:
        return None
    words[i] = words[i].replace(core, rng.choice(pool), 1)
    return " ".join(words)


def delete_answer(sentence: str, span: tuple[int, int]) -> str | None:
    """``sentence`` without the answer at ``span`` (and a short lower-case word left dangling
    before it, as "in" of "in 2019."); None when the span cuts a word or too little is left."""
    a, b = span
    if sentence[a - 1 : a].isalnum() or sentence[b : b + 1].isalnum():
        return None
    head, tail = sentence[:a].rstrip(), sentence[b:].lstrip()
    words = head.split(" ")
    if len(words) > 1 and words[-1].isalpha() and words[-1].islower() and len(words[-1]) <= 3:
        head = " ".join(words[:-1])
    if tail[:1] in (",", ";", ":", ".", ")", "?", "!"):
        # ", Blue Ivy, at" -> ", at"; "superior, ." -> "superior."
        text = head.rstrip(",;:(") + tail
    else:
        text = f"{head} {tail}" if head and tail else head + tail
    if len(text.split()) < 4 or len(text) < 0.4 * len(sentence):
        return None
    return text


def _names(sentences: list[str]) -> list[str]:
    """The names and numbers of ``sentences`` (not their first words), for ``swap``."""
    words = {w.strip(".,;:()\"'") for text in sentences for w in text.split()[1:]}
    return sorted({w[:-2] if w.endswith("'s") else w for w in words if NAME.match(w)})


def article_groups(
    article: dict,
    rng: random.Random,
    outside_share: float,
    max_questions: int = 0,
    swap_share: float = 0.0,
    delete_share: float = 0.0,
) -> list[Group]:
    """Groups for the questions of one article (answerable and unanswerable), at most
    ``max_questions`` of them drawn at random (0: all); ``swap_share`` and ``delete_share`` of
    the answerable ones also give a swapped or a deleted "no answer" group."""
    flat: list[tuple[int, int, int, str]] = []  # paragraph, start, end, text
    for p, para in enumerate(article["paragraphs"]):
        ctx = para["context"]
        for a, b in split_sentences(ctx):
            flat.append((p, a, b, ctx[a:b]))
    if not flat:
        return []
    index = _bm25([f[3] for f in flat])
    items = []
    for p, para in enumerate(article["paragraphs"]):
        for qa in para["qas"]:
            items.append((p, para["context"], qa))
    if max_questions and len(items) > max_questions:
        items = rng.sample(items, max_questions)
    ranked = _ranked(index, len(flat), [qa["question"] for _, _, qa in items], 12)
    names = _names([f[3] for f in flat]) if swap_share else []
    out: list[Group] = []
    for (p, ctx, qa), order in zip(items, ranked):
        own = [i for i, f in enumerate(flat) if f[0] == p]
        impossible = qa.get("is_impossible", False)
        answers = [a["text"] for a in qa.get("answers", [])]
        foreign = [
            i for i in order if flat[i][0] != p and not any(t and t in flat[i][3] for t in answers)
        ]
        if impossible:
            pick = own[:]
            rng.shuffle(pick)
            sents = [flat[i][3] for i in pick[:GROUP]]
            out.append(Group(qa["question"], sents, -1, None, "squad2"))
            continue
        first = qa["answers"][0]
        start, text = first["answer_start"], first["text"]
        gold = next((i for i in own if flat[i][1] <= start < flat[i][2]), None)
        if gold is None:
            continue
        if rng.random() < outside_share:
            sents = [flat[i][3] for i in foreign[:GROUP]]
            if sents:
                out.append(Group(qa["question"], sents, -1, None, "outside"))
            continue
        if swap_share and rng.random() < swap_share:  # no draw when off: same data as before
            changed = swap(qa["question"], flat[gold][3], ctx, names, rng)
            if changed:
                pick = own[:]
                rng.shuffle(pick)
                out.append(Group(changed, [flat[i][3] for i in pick[:GROUP]], -1, None, "swap"))
        others = [i for i in own if i != gold and text not in flat[i][3]]
        rank = {i: r for r, i in enumerate(order)}
        others.sort(key=lambda i: rank.get(i, 99))
        pick = [gold, *others[: GROUP - 3], *foreign[:2]]
        pick = pick[:GROUP]
        rng.shuffle(pick)
        _, a, b, sentence = flat[gold]
        rel = start - a
        span = (rel, rel + len(text)) if rel + len(text) <= b - a else None
        if span and sentence[span[0] : span[1]] != text:
            span = None
        sents, target = [flat[i][3] for i in pick], pick.index(gold)
        out.append(Group(qa["question"], sents, target, span, "answer"))
        if span and delete_share and rng.random() < delete_share:  # no draw when off
            cut = delete_answer(sentence, span)
            if cut:
                holed = sents[:target] + [cut] + sents[target + 1 :]
                out.append(Group(qa["question"], holed, -1, None, "deleted"))
    return out


def typo(text: str, rng: random.Random) -> str:
    """One or two edits (drop, swap, double, replace a letter) in the question's longer words."""
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    for i in rng.sample(long, min(len(long), rng.choice((1, 2)))):
        w = words[i]
        j = rng.randrange(1, len(w) - 1)
        op = rng.randrange(4)
        if op == 0:
            w = w[:j] + w[j + 1 :]
        elif op == 1:
            w = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
        elif op == 2:
            w = w[:j] + w[j] + w[j:]
        else:
            w = w[:j] + rng.choice("aeioustnrl") + w[j + 1 :]
        words[i] = w
    return " ".join(words)


def followup(text: str) -> str:
    """The shape ``standalone_query`` gives a follow-up it cannot resolve: a short question
    leaning on "that", with the last question's key words appended."""
    words = text.rstrip("?").split()
    keys = [w for w in words[1:] if len(w) > 3 or w[:1].isupper()]
    return f"{words[0]} was that? {' '.join(keys)}" if words and keys else text


def augment(groups: list[Group], rng: random.Random, share: float = 0.08) -> list[Group]:
    """Typo'd, lower-cased and follow-up-shaped copies of ``share`` of the groups each."""
    out = []
    for g in groups:
        for kind, change in (("typo", typo), ("lower", lambda t, _: t.lower())):
            if rng.random() < share:
                out.append(
                    Group(
                        change(g.question, rng), g.sentences, g.target, g.answer, f"{g.kind}+{kind}"
                    )
                )
        if g.kind == "answer" and rng.random() < share / 2:
            out.append(
                Group(followup(g.question), g.sentences, g.target, g.answer, "answer+followup")
            )
    return out


def split_train(seed: int):
    """(training articles, held-out articles) of SQuAD v1.1 train, split by ``seed``."""
    articles = load_articles(DATA / "squad" / "train-v1.1.json")
    order = list(range(len(articles)))
    random.Random(seed).shuffle(order)
    held = set(order[:HELD_OUT])
    return [a for i, a in enumerate(articles) if i not in held], [articles[i] for i in sorted(held)]


def split_part2(seed: int):
    articles = load_articles(DATA / "squad2" / "dev-v2.0-part2.json")
    order = list(range(len(articles)))
    random.Random(seed + 1).shuffle(order)
    held = set(order[:PART2_CALIBRATION])
    return [a for i, a in enumerate(articles) if i not in held], [articles[i] for i in sorted(held)]


def training_groups(
    seed: int,
    n: int,
    limit: int | None = None,
    progress: bool = True,
    sample_seed: int | None = None,
    swap_share: float = 0.0,
    delete_share: float = 0.0,
) -> list[Group]:
    """About ``n`` shuffled training groups (with augmented copies): every group of part 2's
    training articles (its unanswerable questions are the on-topic "no answer" examples), the
    rest drawn evenly from the SQuAD v1.1 train articles; ``limit`` caps the article count.
    ``seed`` splits the articles (the held-out ones stay the same), ``sample_seed`` (default
    ``seed``) draws the questions; ``swap_share`` / ``delete_share`` of the answerable ones also
    give a swapped / deleted "no answer" group."""
    from tqdm import tqdm

    rng = random.Random(seed if sample_seed is None else sample_seed)
    train, _ = split_train(seed)
    part2, _ = split_part2(seed)
    if limit:
        train, part2 = train[:limit], part2[: max(1, limit // 3)]
    groups: list[Group] = []
    for article in tqdm(part2, desc="part 2 groups", disable=not progress):
        groups.extend(article_groups(article, rng, outside_share=0.0))
    per_article = max(1, int((n / 1.2 - len(groups)) / len(train)) + 1)
    for article in tqdm(train, desc="train groups", disable=not progress):
        groups.extend(
            article_groups(
                article,
                rng,
                0.15,
                max_questions=per_article,
                swap_share=swap_share,
                delete_share=delete_share,
            )
        )
    groups.extend(augment(groups, rng))
    rng.shuffle(groups)
    return groups[:n] if n else groups


def held_out_groups(seed: int, per_article: int = 40) -> dict[str, list[Group]]:
    """Held-out groups: ``train`` (held-out train articles, answerable and "outside") and
    ``squad2`` (part 2's calibration articles, answerable and unanswerable)."""
    rng = random.Random(seed + 2)
    _, held = split_train(seed)
    _, cal = split_part2(seed)
    out: dict[str, list[Group]] = {"train": [], "squad2": []}
    for name, arts in (("train", held), ("squad2", cal)):
        for article in arts:
            gs = article_groups(article, rng, outside_share=0.3 if name == "train" else 0.0)
            rng.shuffle(gs)
            out[name].extend(gs[:per_article])
    return out
