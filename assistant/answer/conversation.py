"""Follow-up questions: does a question lean on the conversation, and what does it mean alone?

A question leans on the turns before it when the question itself cannot stand alone: it has a
personal pronoun with no name before it to refer to ("When did he die?"), ends on a bare
demonstrative ("And when was that?"), opens with a conjunction ("And the second one?", "What
about Paris?") or has no content word of its own ("Why?"). Pronouns, demonstratives and
conjunctions are closed classes of English grammar. A standalone question is never rewritten.

Only the last ``MAX_TURNS`` turns are read, each clipped, so the work does not grow with the
length of the conversation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .question import content_terms

MAX_TURNS = 3
MAX_USER_CHARS = 500
MAX_REPLY_CHARS = 2000

_PERSONAL = {"he", "she", "him", "her", "his", "hers", "they", "them", "their", "theirs"}
_IMPERSONAL = {"it", "its"}
_DEMONSTRATIVE = {"this", "that", "these", "those", "there", "then"}
_OPENERS = re.compile(r"^\s*(?:and|but|or|so|also|then|what\s+about|how\s+about)\b", re.I)
_WORD = re.compile(r"[\w’'-]+")
_NAME = re.compile(r"\b[A-Z][\w’'-]*(?:\s+(?:of|de|van|von|al|bin)?\s*[A-Z][\w’'-]*)*")
_MARKER = re.compile(r"\[\d+\]")


def recent_turns(history: Sequence | None) -> list[tuple[str, str]]:
    """The last ``MAX_TURNS`` turns, each clipped, after checking their shape."""
    if not history:
        return []
    if not isinstance(history, Sequence) or isinstance(history, str | bytes):
        raise TypeError("history must be a list of (question, answer) pairs")
    out = []
    for turn in list(history[-MAX_TURNS:]):
        if not isinstance(turn, Sequence) or isinstance(turn, str | bytes) or len(turn) != 2:
            raise TypeError("history must be a list of (question, answer) pairs")
        user, reply = turn
        if not isinstance(user, str | type(None)) or not isinstance(reply, str | type(None)):
            raise TypeError("each history turn must be two strings (question, answer)")
        out.append(((user or "")[:MAX_USER_CHARS], (reply or "")[:MAX_REPLY_CHARS]))
    return out


def leans_on_history(question: str) -> bool:
    """True when ``question`` cannot be understood without the conversation before it."""
    words = _WORD.findall(question)
    lower = [w.lower() for w in words]
    if _OPENERS.search(question) or not content_terms(question):
        return True
    for i, w in enumerate(lower):
        if w in _PERSONAL and not _names(" ".join(words[1:i])):
            return True
        if w in _IMPERSONAL and i > 0 and not content_terms(" ".join(words[:i])):
            return True  # "When was it founded?": "it" comes before any content word
        if w in _DEMONSTRATIVE and i == len(lower) - 1:
            return True  # "And when was that?"
    return False


def standalone_query(
    question: str, history: Sequence | None, known: Callable[[str], bool] | None = None
) -> str:
    """The question, plus what it refers to in the conversation when it leans on it.

    - A personal pronoun carries the names of the last turn (from its question, else the first
      name in its answer), so who "he" is stays known;
    - otherwise the last question's key words are carried ("and when was that?" after "How many
      troops marched in the parade?" -> "and when was that? troops marched parade").

    Earlier turns are used when the last one has nothing to carry (a chain of follow-ups).
    With ``known`` (is this stemmed term in the index?), only words the index knows are
    carried: the others cannot point at the evidence.
    """
    question = question.strip()
    turns = recent_turns(history)
    if not turns or not leans_on_history(question):
        return question
    have = {w.lower() for w in _WORD.findall(question)}
    person = any(w.lower() in _PERSONAL for w in _WORD.findall(question))
    carried: list[str] = []
    for user, reply in reversed(turns):
        reply = _MARKER.sub(" ", reply)
        names = _names(user) or (_names(reply)[:1] if person else [])
        terms = names if person and names else [*names, *_key_words(user)]
        for term in terms:
            if known is not None and not any(known(t) for t in content_terms(term)):
                continue
            if any(w.lower() not in have for w in term.split()):
                carried.append(term)
                have.update(w.lower() for w in term.split())
        if carried:
            break
    return f"{question} {' '.join(carried[:8])}".strip() if carried else question


def _names(text: str) -> list[str]:
    """Capitalized names in ``text`` that do not merely open it, longest first."""
    out: list[str] = []
    for m in _NAME.finditer(text):
        name = m.group(0).strip()
        first_word = m.start() == (re.search(r"\w", text) or m).start()
        if first_word:  # a capital that opens the text may just start the sentence
            parts = name.split()
            if len(parts) < 2 or not content_terms(parts[0]):
                name = " ".join(parts[1:])
        if len(name) >= 2 and content_terms(name) and name not in out:
            out.append(name)
    return sorted(out, key=lambda n: -len(n.split()))


def _key_words(text: str) -> list[str]:
    """The words of ``text`` that carry content, in order, as typed."""
    return [w for w in _WORD.findall(text) if content_terms(w)]
