"""Question sets derived from SQuAD for the answers benchmark: typo'd questions, follow-ups,
standalone questions after an unrelated turn, and SQuAD 2.0's report half.

All derivations are deterministic (seeded) and read only ``../shared/data``.
"""

from __future__ import annotations

import random
import re

from benchmarks.common import squad2_articles

TYPO_SEED = 11
_WORD = re.compile(r"[A-Za-z]{4,}")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _edit(word: str, rng: random.Random) -> str:
    """One character edit inside the word (never the first letter): swap, drop, double or replace."""
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(["swap", "drop", "double", "replace"])
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "drop":
        return word[:i] + word[i + 1 :]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(_LETTERS.replace(word[i].lower(), "")) + word[i + 1 :]


def with_typos(question: str, seed: int) -> str:
    """``question`` with one character edit in every third content word (words of 4+ letters
    that are not stop words), the first edited word chosen by the seed."""
    from assistant.answer.question import content_terms

    rng = random.Random(seed)
    words = [m for m in _WORD.finditer(question) if content_terms(m.group(0))]
    if not words:
        return question
    offset = rng.randrange(3)
    out, last = [], 0
    for k, m in enumerate(words):
        if k % 3 == offset % min(3, len(words)):
            out += [question[last : m.start()], _edit(m.group(0), rng)]
            last = m.end()
    return "".join(out) + question[last:]


_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of|the|de)?\s*[A-Z][\w'-]*)*")


def _names(text: str) -> list[str]:
    found = []
    for m in _NAME.finditer(text):
        name = m.group(0)
        if m.start() == 0 and " " not in name:
            continue  # the question's first word
        found.append(name)
    return found


def follow_ups(queries: list[dict], n: int, seed: int = 5) -> list[tuple[dict, dict]]:
    """Pairs (first, second) of questions on the same paragraph where the second names what the
    first names; the second is rewritten with that name replaced by "it" (or "its")."""
    by_paragraph: dict[str, list[dict]] = {}
    for q in queries:
        by_paragraph.setdefault(q["gold_doc"], []).append(q)
    pairs = []
    for doc in sorted(by_paragraph):
        qs = by_paragraph[doc]
        for a, b in zip(qs, qs[1:]):
            shared = [name for name in _names(b["text"]) if name in a["text"]]
            if not shared:
                continue
            name = max(shared, key=len)
            rewritten = re.sub(rf"{re.escape(name)}(?:'s|’s)", "its", b["text"], count=1)
            if rewritten == b["text"]:
                rewritten = b["text"].replace(name, "it", 1)
            pairs.append((a, {**b, "text": rewritten, "original": b["text"]}))
            break
    return random.Random(seed).sample(pairs, min(n, len(pairs)))


def squad2_questions(parity: int | None = None) -> list[dict]:
    """SQuAD 2.0 part-1 questions: all (None), or of the articles whose position has this
    parity."""
    out = []
    for i, article in enumerate(squad2_articles()):
        if parity is not None and i % 2 != parity:
            continue
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                out.append(
                    {
                        "_id": qa["id"],
                        "text": qa["question"],
                        "answers": [a["text"] for a in qa["answers"]],
                        "impossible": qa.get("is_impossible", False),
                        "article": article["title"],
                    }
                )
    return out
