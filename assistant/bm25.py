"""BM25 over chunk texts: the tokenizer shared by the index, the queries and the answer step,
and raw postings scored at query time.

Postings are stored per index segment; scoring takes corpus-wide statistics (``Bm25Stats``), so
a search over several segments ranks exactly as one index of all their chunks would.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

# Every run of word characters is a term, one character long included: "batch 3" and "batch 2"
# must differ, and bm25s's default pattern (two characters or more) drops "3", "x" and "B".
# Recorded in the manifest; an index built with other parameters is rebuilt, not mixed.
BM25_PARAMS = {
    "k1": 1.2,
    "b": 0.75,
    "stemmer": "english",
    "stopwords": "en",
    "token_pattern": r"(?u)\b\w+\b",
}
BM25_ARRAYS = ("indptr", "docs", "tfs", "lengths")

_stemmer = None
_SLACK = 1.0 + 1e-4  # on score bounds, for float32 rounding in the scores they bound
_POOL = 4  # scratch score arrays kept per postings object (one per concurrent query)
_LOOKUP_COST = 16  # a binary search in a term's postings costs about this many postings read


def _bm25s():  # noqa: ANN202
    """The bm25s module, imported lazily, with its DEBUG chatter turned off (it sets DEBUG itself)."""
    import bm25s

    logger = logging.getLogger("bm25s")
    if logger.level != logging.WARNING:  # setLevel clears every logger's cache: not per query
        logger.setLevel(logging.WARNING)
    return bm25s


def bm25_tokens(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, Snowball-stemmed terms; the same for the index and queries."""
    global _stemmer
    import Stemmer

    bm25s = _bm25s()

    if _stemmer is None:
        _stemmer = Stemmer.Stemmer(BM25_PARAMS["stemmer"])
    return bm25s.tokenize(
        list(texts),
        token_pattern=BM25_PARAMS["token_pattern"],
        stopwords=BM25_PARAMS["stopwords"],
        stemmer=_stemmer,
        return_ids=False,
        show_progress=False,
    )


@dataclass(frozen=True)
class Bm25Stats:
    """Corpus-wide statistics to score one segment's postings with: the chunk count, the mean
    chunk length and the document frequency of each query term, summed over all segments."""

    num_docs: int
    avgdl: float
    df: dict[str, int]

    @classmethod
    def over(cls, parts: Sequence[Bm25Postings], tokens: Sequence[str]) -> Bm25Stats:
        num_docs = sum(p.num_docs for p in parts)
        total = sum(p.total_length for p in parts)
        avgdl = max(total / num_docs, 1.0) if num_docs else 1.0
        df = {t: sum(p.df(t) for p in parts) for t in set(tokens)}
        return cls(num_docs, avgdl, df)


class _Term(NamedTuple):
    term: str
    term_id: int
    lo: int  # its postings are docs[lo:hi], tfs[lo:hi]
    hi: int
    idf: np.float32  # times the term's count in the query


def _distinct(values: np.ndarray) -> np.ndarray:
    """``values`` sorted, each once (``np.unique`` here is many times slower than a sort)."""
    values = np.sort(values)
    if len(values) > 1:
        values = values[np.concatenate([[True], values[1:] != values[:-1]])]
    return values


def _nth_largest(values: np.ndarray, n: int) -> float:
    return float(np.partition(values, len(values) - n)[len(values) - n])


class Bm25Postings:
    """BM25 kept as raw postings (term -> chunk ids and term frequencies, chunk lengths), scored
    at query time with Lucene's formula (bm25s's default): ``idf * tf / (tf + k1 * (1 - b + b *
    len / avglen))``, ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``.

    Nothing depends on corpus-wide statistics until a query arrives, so adding chunks only
    appends their postings: an incremental build tokenizes just the new chunks. Arrays are
    ``.npy`` files opened memory-mapped, so loading costs no time and only the postings a query
    touches become resident. ``vocab_dict`` and ``scores["indptr"]`` mirror bm25s's names.
    """

    def __init__(
        self,
        vocab: list[str],
        indptr: np.ndarray,
        docs: np.ndarray,
        tfs: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        self.vocab = vocab
        self.vocab_dict = {t: i for i, t in enumerate(vocab)}
        self.indptr, self.docs, self.tfs, self.lengths = indptr, docs, tfs, lengths
        self.num_docs = len(lengths)
        self.total_length = float(np.sum(lengths, dtype=np.float64))
        self.avgdl = max(self.total_length / self.num_docs, 1.0) if self.num_docs else 1.0
        self.k1, self.b = float(BM25_PARAMS["k1"]), float(BM25_PARAMS["b"])
        self.scores = {"indptr": indptr, "num_docs": self.num_docs}
        self._min_length: float | None = None
        self._tf_max: dict[int, float] = {}
        self._denom: tuple[tuple[np.float32, np.float32], np.ndarray] | None = None
        self._pool: list[np.ndarray] = []
        self._pool_lock = threading.Lock()

    @classmethod
    def empty(cls) -> Bm25Postings:
        return cls(
            [],
            np.zeros(1, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.uint16),
            np.zeros(0, np.float32),
        )

    @classmethod
    def load(cls, path: Path, mmap: bool = True) -> Bm25Postings:
        vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
        arrays = [
            np.load(path / f"{name}.npy", mmap_mode="r" if mmap else None) for name in BM25_ARRAYS
        ]
        indptr, docs, tfs, lengths = arrays
        if (
            not isinstance(vocab, list)
            or indptr.shape != (len(vocab) + 1,)
            or docs.shape != tfs.shape
            or int(indptr[-1]) != len(docs)
        ):
            raise ValueError("BM25 arrays do not fit together")
        return cls(vocab, indptr, docs, tfs, lengths)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False), "utf-8")
        for name in BM25_ARRAYS:
            np.save(path / f"{name}.npy", np.ascontiguousarray(getattr(self, name)))

    # ---- scoring

    def df(self, term: str) -> int:
        """How many of these chunks contain ``term``."""
        i = self.vocab_dict.get(term)
        return 0 if i is None else int(self.indptr[i + 1] - self.indptr[i])

    def _terms(self, tokens: Sequence[str], stats: Bm25Stats | None) -> list[_Term]:
        """The query's terms found here, each once (a repeated term weighs as many times)."""
        counts: dict[str, int] = {}
        for t in tokens:
            if t in self.vocab_dict:
                counts[t] = counts.get(t, 0) + 1
        n = stats.num_docs if stats else self.num_docs
        out = []
        for t, count in counts.items():
            term_id = self.vocab_dict[t]
            lo, hi = int(self.indptr[term_id]), int(self.indptr[term_id + 1])
            if hi > lo:
                df = stats.df[t] if stats else hi - lo
                idf = np.float32(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))
                out.append(_Term(t, term_id, lo, hi, np.float32(idf * count)))
        return out

    def _norm(self, stats: Bm25Stats | None) -> tuple[np.float32, np.float32]:
        """``(a, c)`` with ``k1 * (1 - b + b * len / avgdl) = a + c * len``."""
        avgdl = stats.avgdl if stats else self.avgdl
        return np.float32(self.k1 * (1.0 - self.b)), np.float32(self.k1 * self.b / avgdl)

    def _part(
        self, term: _Term, ids: np.ndarray, tf: np.ndarray, norm: tuple[np.float32, np.float32]
    ) -> np.ndarray:
        """``term``'s score in chunks ``ids`` that hold it ``tf`` times (float32 throughout, so a
        chunk's part is the same number however it was reached)."""
        denom = self._denominators(norm)[ids]
        part = np.asarray(tf, np.float32)
        denom += part
        part = part * term.idf
        part /= denom
        return part

    def _denominators(self, norm: tuple[np.float32, np.float32]) -> np.ndarray:
        """``a + c * len`` of every chunk (kept for the last ``norm`` asked for)."""
        cached = self._denom
        if cached is None or cached[0] != norm:
            denom = np.asarray(self.lengths, np.float32) * norm[1]
            denom += norm[0]
            cached = self._denom = (norm, denom)
        return cached[1]

    def _term(self, term: str, stats: Bm25Stats | None) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, scores)`` of every chunk holding ``term``."""
        found = self._terms([term], stats)
        if not found:
            return np.zeros(0, self.docs.dtype), np.zeros(0, np.float32)
        t = found[0]
        ids = np.asarray(self.docs[t.lo : t.hi])
        return ids, self._part(t, ids, self.tfs[t.lo : t.hi], self._norm(stats))

    def get_scores(self, tokens: Sequence[str], stats: Bm25Stats | None = None) -> np.ndarray:
        """Every chunk's score for ``tokens`` (unknown terms ignored), like bm25s's; with
        ``stats``, as part of the larger corpus they describe."""
        scores = np.zeros(self.num_docs, np.float32)
        norm = self._norm(stats)
        for t in self._terms(tokens, stats):
            ids = np.asarray(self.docs[t.lo : t.hi])
            scores[ids] += self._part(t, ids, self.tfs[t.lo : t.hi], norm)
        return scores

    def _bound(self, term: _Term, norm: tuple[np.float32, np.float32]) -> float:
        """An upper bound of ``term``'s part in any chunk: its highest tf in the shortest chunk."""
        if self._min_length is None:
            self._min_length = float(np.min(self.lengths)) if self.num_docs else 0.0
        tf_max = self._tf_max.get(term.term_id)
        if tf_max is None:
            tf_max = self._tf_max[term.term_id] = float(np.max(self.tfs[term.lo : term.hi]))
        a, c = float(norm[0]), float(norm[1])
        return float(term.idf) * tf_max / (tf_max + a + c * self._min_length) * _SLACK

    def top(
        self, tokens: Sequence[str], n: int, stats: Bm25Stats | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best ``(scores, ids)`` with a score above 0, best first (ties in the list by
        lower id; which of several chunks tied at the n-th score make the cut is unspecified).

        Exact, by MaxScore: a term's part in any chunk has an upper bound (``_bound``). Terms are
        read rarest (highest bound) first, every posting scored. ``theta``, the n-th best score
        so far, only grows; once the bounds of the terms left sum below it, a chunk that none of
        the terms read holds cannot make the cut, and from then on a term's postings only add to
        the chunks that can still reach ``theta`` with the terms left: one gather and compare
        per posting instead of scoring it. The chunks that reached ``theta`` when last scored
        (``pool``) hold every chunk of the answer.
        """
        terms = self._terms(tokens, stats)
        if not terms or n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        norm = self._norm(stats)
        bounds = [self._bound(t, norm) for t in terms]
        order = sorted(range(len(terms)), key=lambda i: (-bounds[i], terms[i].term_id))
        terms, bounds = [terms[i] for i in order], [bounds[i] for i in order]
        rest = [float(x) for x in np.cumsum(bounds[::-1])[::-1]] + [0.0]  # bounds of i, i+1, ...
        acc = self._scratch()
        touched: list[np.ndarray] = []
        try:
            theta = 0.0
            pool = np.zeros(0, np.intp)
            live = None  # once theta is above rest[i]: the chunks that can still make it
            for i, t in enumerate(terms):
                docs, tfs = np.asarray(self.docs[t.lo : t.hi]), self.tfs[t.lo : t.hi]
                if rest[i] >= theta:
                    ids = docs.astype(np.intp)
                    touched.append(ids)
                    cur = acc[ids]
                else:
                    # Only chunks that can still reach theta; any other chunk scores 0 here.
                    floor = theta - rest[i]
                    if live is None:  # a chunk no term read holds has 0
                        live = np.flatnonzero(acc >= floor).astype(docs.dtype)
                    else:
                        live = live[acc[live] >= floor]
                    if len(live) * _LOOKUP_COST < len(docs):  # binary search for each
                        pos = np.searchsorted(docs, live)
                        pos[pos == len(docs)] = 0
                        pos = pos[docs[pos] == live]
                        ids = docs[pos].astype(np.intp)
                        cur = acc[ids]
                    else:  # one pass over the postings
                        ids = docs.astype(np.intp)
                        cur = acc[ids]
                        pos = np.flatnonzero(cur >= floor)
                        ids, cur = ids[pos], cur[pos]
                    tfs = np.asarray(tfs)[pos]
                cur += self._part(t, ids, tfs, norm)
                acc[ids] = cur
                pool = np.concatenate([pool, ids[cur >= theta]])
                if len(pool) >= n:
                    pool = _distinct(pool)
                    if len(pool) >= n:
                        theta = max(theta, _nth_largest(acc[pool], n))
                        pool = pool[acc[pool] >= theta]
            ids = _distinct(pool)
            scores = acc[ids]
        finally:
            for ids_read in touched:
                acc[ids_read] = 0
            self._release(acc)
        if len(ids) > n:
            keep = np.argpartition(-scores, n - 1)[:n]
            ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))
        ids, scores = ids[order], scores[order]
        keep = scores > 0
        return scores[keep].astype(np.float32), ids[keep].astype(np.int64)

    def _scratch(self) -> np.ndarray:
        """A zeroed float32 array of ``num_docs``, reused across queries (the caller zeroes the
        entries it touched and hands it back with ``_release``)."""
        with self._pool_lock:
            if self._pool:
                return self._pool.pop()
        return np.zeros(self.num_docs, np.float32)

    def _release(self, acc: np.ndarray) -> None:
        with self._pool_lock:
            if len(self._pool) < _POOL:
                self._pool.append(acc)

    # ---- building

    def appended(self, token_lists: Sequence[Sequence[str]]) -> Bm25Postings:
        """A copy with one more chunk per token list (ids ``num_docs``, ``num_docs + 1``, ...)."""
        vocab = list(self.vocab)
        vocab_dict = dict(self.vocab_dict)
        flat: list[int] = []
        for tokens in token_lists:
            for t in tokens:
                i = vocab_dict.get(t)
                if i is None:
                    i = vocab_dict[t] = len(vocab)
                    vocab.append(t)
                flat.append(i)
        lengths_new = np.fromiter((len(t) for t in token_lists), np.int64, len(token_lists))
        n_new, n_terms = len(token_lists), len(vocab)
        old_indptr = np.concatenate(
            [np.asarray(self.indptr, np.int64), np.full(n_terms - len(self.vocab), self.indptr[-1])]
        )
        if flat:
            key = np.asarray(flat, np.int64) * n_new + np.repeat(np.arange(n_new), lengths_new)
            key, tf = np.unique(key, return_counts=True)  # sorted by term, then chunk
            term, doc = key // n_new, key % n_new + self.num_docs
            pos = old_indptr[term + 1]  # the end of each term's list: new chunks sort last
            docs = np.insert(np.asarray(self.docs), pos, doc.astype(np.int32))
            tfs = np.insert(np.asarray(self.tfs), pos, np.minimum(tf, 65535).astype(np.uint16))
            counts = np.bincount(term, minlength=n_terms)
            indptr = old_indptr + np.concatenate([[0], np.cumsum(counts)])
        else:
            docs, tfs, indptr = np.asarray(self.docs), np.asarray(self.tfs), old_indptr
        lengths = np.concatenate([np.asarray(self.lengths), lengths_new.astype(np.float32)])
        return Bm25Postings(vocab, indptr, docs, tfs, lengths)

    def kept(self, old_ids: np.ndarray) -> Bm25Postings:
        """A copy with only the chunks ``old_ids`` (ascending), renumbered 0, 1, ..."""
        old_ids = np.asarray(old_ids, np.int64)
        if len(old_ids) == self.num_docs:
            return self
        mapping = np.full(self.num_docs, -1, np.int64)
        mapping[old_ids] = np.arange(len(old_ids))
        docs = mapping[np.asarray(self.docs)]
        keep = docs >= 0
        term = np.repeat(np.arange(len(self.vocab)), np.diff(np.asarray(self.indptr)))[keep]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(term, minlength=len(self.vocab)))])
        return Bm25Postings(
            self.vocab,
            indptr.astype(np.int64),
            docs[keep].astype(np.int32),
            np.asarray(self.tfs)[keep],
            np.asarray(self.lengths)[old_ids],
        )

    @classmethod
    def concat(cls, parts: Sequence[Bm25Postings]) -> Bm25Postings:
        """One postings index of ``parts``' chunks in order (ids offset by the chunks before)."""
        if len(parts) == 1:
            return parts[0]
        vocab: dict[str, int] = {}
        terms, docs, tfs, lengths = [], [], [], []
        offset = 0
        for p in parts:
            remap = np.fromiter(
                (vocab.setdefault(t, len(vocab)) for t in p.vocab), np.int64, len(p.vocab)
            )
            terms.append(np.repeat(remap, np.diff(np.asarray(p.indptr))))
            docs.append(np.asarray(p.docs, np.int64) + offset)
            tfs.append(np.asarray(p.tfs))
            lengths.append(np.asarray(p.lengths, np.float32))
            offset += p.num_docs
        term = np.concatenate(terms) if terms else np.zeros(0, np.int64)
        order = np.argsort(term, kind="stable")  # within a term: part order, then chunk order
        counts = np.bincount(term, minlength=len(vocab))
        return cls(
            list(vocab),
            np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            np.concatenate(docs)[order].astype(np.int32),
            np.concatenate(tfs)[order].astype(np.uint16),
            np.concatenate(lengths) if lengths else np.zeros(0, np.float32),
        )


class Speller:
    """Corrects query terms that are not in the index vocabulary to the nearest term that is.

    A stemmed query term unknown to every segment is replaced by the vocabulary term within
    edit distance (a swap of two neighbours counts as one edit) 1 (terms of 4-6 characters) or 2 (7 and more), the most frequent one
    among the closest (rapidfuzz does the matching). Digits and terms under 4 characters are
    never changed: "batch 3" must not become "batch 2". Built lazily, once per loaded build.
    """

    MIN_CHARS = 4

    def __init__(self, parts: Sequence[Bm25Postings]) -> None:
        self._parts = list(parts)
        self._by_length: dict[int, list[str]] | None = None
        self._lock = threading.Lock()

    def known(self, term: str) -> bool:
        return any(term in p.vocab_dict for p in self._parts)

    def _index(self) -> dict[int, list[str]]:
        with self._lock:
            if self._by_length is None:
                by_length: dict[int, set[str]] = {}
                for p in self._parts:
                    for t in p.vocab:
                        by_length.setdefault(len(t), set()).add(t)
                self._by_length = {n: sorted(ts) for n, ts in by_length.items()}
            return self._by_length

    @staticmethod
    def max_edits(word: str) -> int:
        """The edits a correction of ``word`` may take: 1 up to 6 characters, 2 from 7."""
        return 1 if len(word) <= 6 else 2

    def correct(self, term: str) -> str | None:
        """The vocabulary term ``term`` is probably a misspelling of, or None."""
        if len(term) < self.MIN_CHARS or any(ch.isdigit() for ch in term) or self.known(term):
            return None
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        limit = self.max_edits(term)
        best: tuple[int, int, str] | None = None  # (distance, -df, term)
        index = self._index()
        for n in range(len(term) - limit, len(term) + limit + 1):
            choices = index.get(n)
            if not choices:
                continue
            for choice, dist, _ in process.extract(
                term, choices, scorer=OSA.distance, score_cutoff=limit, limit=8
            ):
                key = (int(dist), -sum(p.df(choice) for p in self._parts), choice)
                if best is None or key < best:
                    best = key
        return best[2] if best else None

    def correct_all(self, terms: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """``terms`` with misspellings replaced, and what was replaced by what."""
        out, changed = [], {}
        for t in terms:
            fixed = changed.get(t) or self.correct(t)
            if fixed:
                changed[t] = fixed
            out.append(fixed or t)
        return out, changed
