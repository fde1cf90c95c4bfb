"""Follow-up questions: does a question lean on the conversation, and what does it mean alone?

A question leans on the turns before it when the question itself cannot stand alone: it has a
personal pronoun with no name before it to refer to ("When did he die?"), ends on a bare
demonstrative ("And when was that?"), opens with a conjunction ("And the second one?", "What
about Paris?") or has no content word of its own ("Why?"). Pronouns, demonstratives and
conjunctions are closed classes of English grammar. A standalone question is never rewritten.
A bare "it" anywhere after the first word counts as leaning: when it does not ("Is it true that
the library opens on Sundays?"), retrieval fuses the raw and the rewritten question, so the
rewrite cannot push the right passage out.

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
_WHO = re.compile(r"^\s*(?:who|whom|whose)\b", re.I)


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
        if w in _IMPERSONAL and i > 0:
            return True  # "When was it founded?"; a standalone "it" is safe: rankings are fused
        if w in _DEMONSTRATIVE and i == len(lower) - 1:
            return True  # "And when was that?"
    return False


def standalone_query(
    question: str, history: Sequence | None, known: Callable[[str], bool] | None = None
) -> str:
    """The question as it reads alone, when it leans on the conversation.

    - A pronoun is replaced by the last turn's name (from its question, else the first name in
      its answer): "What did he say about China?" after "What did Kim Jong Un say?" -> "What did
      Kim Jong Un say about China?"; a possessive becomes "Kim Jong Un’s". The rewritten
      question reads like one a user types alone, so both the encoder and BM25 see a sentence
      of the usual shape rather than a question with a name glued on its end;
    - otherwise the last question's key words are appended ("and when was that?" after "How
      many troops marched in the parade?" -> "and when was that? troops marched parade").

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
        names = _referents(user, reply) if person else _names(user)
        terms = names if person and names else [*names, *_key_words(user)]
        for term in terms:
            if known is not None and not any(known(t) for t in content_terms(term)):
                continue
            if any(w.lower() not in have for w in term.split()):
                carried.append(term)
                have.update(w.lower() for w in term.split())
        if carried:
            break
    if not carried:
        return question
    if names and carried[0] in names:
        resolved = _resolve(question, carried[0])
        if resolved != question:
            return resolved
    return f"{question} {' '.join(carried[:8])}".strip()


_POSSESSIVE = {"his", "its", "their", "theirs", "hers"}


def _resolve(question: str, name: str) -> str:
    """``question`` with its first pronoun that needs the conversation replaced by ``name``
    ("What year did he die?" -> "What year did Genghis Khan die?"), possessives as "name's"."""
    words = list(_WORD.finditer(question))
    for i, m in enumerate(words):
        w = m.group(0).lower()
        personal = w in _PERSONAL and not _names(" ".join(x.group(0) for x in words[1:i]))
        if personal or (w in _IMPERSONAL and i > 0):
            after = words[i + 1].group(0) if i + 1 < len(words) else ""
            # "her" is possessive before a content word ("her first project"), else an object
            possessive = w in _POSSESSIVE or (w == "her" and bool(content_terms(after)))
            said = f"{name}’s" if possessive else name
            return question[: m.start()] + said + question[m.end() :]
    return question


def _names(text: str) -> list[str]:
    """Capitalized names in ``text`` that do not merely open it, longest first."""
    out: list[str] = []
    for m in _NAME.finditer(text):
        name = re.sub(r"['’]s$", "", m.group(0).strip())  # "Tesla's salary": the name is Tesla
        first_word = m.start() == (re.search(r"\w", text) or m).start()
        if first_word:  # a capital that opens the text may just start the sentence
            parts = name.split()
            if len(parts) < 2 or not content_terms(parts[0]):
                name = " ".join(parts[1:])
        if len(name) >= 2 and content_terms(name) and name not in out:
            out.append(name)
    return sorted(out, key=lambda n: -len(n.split()))


def _referents(user: str, reply: str) -> list[str]:
    """Who "he"/"she"/"they" can be after the turn (``user``, ``reply``), likeliest first.

    After a "who" question the person is the answer, so the reply's names that the question
    does not hold come first; otherwise the question's names in the order they were written
    (the subject of an English question comes before its object: "When did Maria Lopez join
    the Riverside Garden Club?"), then the first name of the reply.
    """
    asked = _names(user)
    answered = [n for n in _names(_MARKER.sub(" ", reply)) if n not in asked]
    if _WHO.match(user):
        return answered[:1] + asked
    asked.sort(key=lambda n: user.find(n))
    return asked or answered[:1]


def _key_words(text: str) -> list[str]:
    """The words of ``text`` that carry content, in order, as typed."""
    return [w for w in _WORD.findall(text) if content_terms(w)]
