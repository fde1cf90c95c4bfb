"""BM25 over chunk texts: the tokenizer shared by the index, the queries and the answer step,
and raw postings scored at query time.

Postings are stored per index segment; scoring takes corpus-wide statistics (``Bm25Stats``), so
a search over several segments ranks exactly as one index of all their chunks would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BM25_PARAMS = {"k1": 1.2, "b": 0.75, "stemmer": "english", "stopwords": "en"}
BM25_ARRAYS = ("indptr", "docs", "tfs", "lengths")

_stemmer = None


def _bm25s():  # noqa: ANN202
    """The bm25s module, imported lazily, with its DEBUG chatter turned off (it sets DEBUG itself)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
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

    def _term(self, term: str, stats: Bm25Stats | None) -> tuple[np.ndarray, np.ndarray]:
        term_id = self.vocab_dict[term]
        lo, hi = int(self.indptr[term_id]), int(self.indptr[term_id + 1])
        ids = np.asarray(self.docs[lo:hi])
        tf = np.asarray(self.tfs[lo:hi], dtype=np.float32)
        n, avgdl, df = (
            (stats.num_docs, stats.avgdl, stats.df[term])
            if stats
            else (self.num_docs, self.avgdl, hi - lo)
        )
        idf = np.float32(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))
        norm = self.k1 * (1.0 - self.b + self.b * np.asarray(self.lengths[ids]) / avgdl)
        return ids, idf * tf / (tf + norm)

    def get_scores(self, tokens: Sequence[str], stats: Bm25Stats | None = None) -> np.ndarray:
        """Every chunk's score for ``tokens`` (unknown terms ignored), like bm25s's; with
        ``stats``, as part of the larger corpus they describe."""
        scores = np.zeros(self.num_docs, np.float32)
        for t in tokens:
            if t in self.vocab_dict:
                ids, part = self._term(t, stats)
                scores[ids] += part
        return scores

    def top(
        self, tokens: Sequence[str], n: int, stats: Bm25Stats | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best ``(scores, ids)`` with a score above 0, best first (ties in the list by
        lower id; which of several chunks tied at the n-th score make the cut is unspecified).

        Only the matching postings are ranked, never all N chunks: a chunk appears once per
        query term, so the best ``n * terms`` postings hold the best ``n`` distinct chunks.
        """
        parts = [self._term(t, stats) for t in tokens if t in self.vocab_dict]
        parts = [p for p in parts if len(p[0])]
        if not parts or n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if len(parts) == 1:
            ids, scores = parts[0]
        else:
            acc = np.zeros(self.num_docs, np.float32)
            for ids, part in parts:
                acc[ids] += part
            cand = np.concatenate([p[0] for p in parts])
            vals = acc[cand]
            m = min(len(cand), n * len(parts))
            if m < len(cand):
                cand = cand[np.argpartition(-vals, m - 1)[:m]]
            ids = np.unique(cand)
            scores = acc[ids]
        if len(ids) > n:
            keep = np.argpartition(-scores, n - 1)[:n]
            ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))
        ids, scores = ids[order], scores[order]
        keep = scores > 0
        return scores[keep].astype(np.float32), ids[keep].astype(np.int64)

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
