"""The written question set (benchmarks/written_set.py) is well formed: every expected string is
verbatim in its document, near misses expect nothing, follow-ups carry history. No model runs."""

from __future__ import annotations

import pytest

from benchmarks.written import DOCS, check_set
from benchmarks.written_set import QUESTIONS


def test_the_written_set_is_well_formed():
    texts = {name: path.read_text(encoding="utf-8") for name, path in DOCS.items()}
    check_set(QUESTIONS, texts)
    kinds = [q["kind"] for q in QUESTIONS]
    assert len(QUESTIONS) >= 70 and kinds.count("near_miss") >= 15
    assert sum(q["doc"] == "kim-jong-un-party-congress.txt" for q in QUESTIONS) >= 15
    bad = [dict(QUESTIONS[0], expect="not in the article")]
    with pytest.raises(SystemExit, match="not verbatim"):
        check_set(bad, texts)
