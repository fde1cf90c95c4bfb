"""The written question set (issue 24 part 6): answerable questions right and near misses
declined, by kind of question, over six documents of different kinds.

The documents (the default article and ``tests/docs/``'s manual, minutes, announcement, policy
and report) are copied into ``.cache/bench/written/seeds`` and indexed with the real model and
the default settings; every question of ``benchmarks/written_set.py`` is asked once with
``assistant.answer.ask`` (follow-ups with their earlier turns as history).

- answerable right (plain, paraphrase, typo, followup): the answer did not abstain and one of its
  quotes, from the question's document, contains the expected string (case-insensitive, spaces
  collapsed);
- near miss declined: the answer abstained.

It is a report: the exit code is 0, unless ``--min-answerable`` / ``--min-declined`` (fractions,
e.g. 0.95 and 0.80, the issue's acceptance) are given and a total is under them (exit 1): the
ship gate for a reader model change.

Run: ``.venv/bin/python -m benchmarks.written [--json] [--min-answerable 0.95 --min-declined 0.8]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from benchmarks.common import (
    CACHE,
    REPO,
    _write_if_changed,
    add_scorer_option,
    bench_settings,
    ensure_index,
    normalize,
    table,
)
from benchmarks.written_set import KINDS, NEWS, QUESTIONS

DOCS = {
    name: (REPO / "seeds" / name if name == NEWS else REPO / "tests" / "docs" / name)
    for name in (
        NEWS,
        "manual.md",
        "minutes.txt",
        "announcement.txt",
        "policy.md",
        "report.txt",
    )
}
ANSWERABLE = ("plain", "paraphrase", "typo", "followup")


def check_set(questions: list[dict], texts: dict[str, str]) -> None:
    """Fail loudly on a malformed item: unknown document or kind, an expected string that is not
    verbatim in its document, a near miss with an expected string, a follow-up without history."""
    problems = []
    for i, item in enumerate(questions):
        where = f"item {i} ({item.get('q')!r})"
        if set(item) != {"doc", "kind", "q", "expect", "history"}:
            problems.append(f"{where}: keys {sorted(item)}")
            continue
        if item["doc"] not in texts:
            problems.append(f"{where}: unknown document {item['doc']!r}")
            continue
        if item["kind"] not in KINDS:
            problems.append(f"{where}: unknown kind {item['kind']!r}")
        if (item["kind"] == "near_miss") != (item["expect"] is None):
            problems.append(f"{where}: expect must be None exactly for a near miss")
        if item["expect"] is not None and item["expect"] not in texts[item["doc"]]:
            problems.append(f"{where}: {item['expect']!r} is not verbatim in {item['doc']}")
        if (item["kind"] == "followup") != bool(item["history"]):
            problems.append(f"{where}: history must be given exactly for a follow-up")
        for turn in item["history"]:
            if not (len(turn) == 2 and all(isinstance(x, str) for x in turn)):
                problems.append(f"{where}: a history turn must be (question, answer)")
    seen = [item["q"] for item in questions]
    problems += [f"duplicate question {q!r}" for q in sorted(set(seen)) if seen.count(q) > 1]
    if problems:
        raise SystemExit("benchmarks/written_set.py is malformed:\n  " + "\n  ".join(problems))


def written_seeds(texts: dict[str, str]) -> Path:
    root = CACHE / "written" / "seeds"
    for name, text in texts.items():
        _write_if_changed(root / name, text)
    for path in root.iterdir():  # a document dropped from the set leaves the corpus
        if path.is_file() and path.name not in texts:
            path.unlink()
    return root


def judge(item: dict, answer) -> bool:
    if item["kind"] == "near_miss":
        return answer.abstained
    if answer.abstained:
        return False
    want = normalize(item["expect"])
    return any(c.source == item["doc"] and want in normalize(c.quote) for c in answer.citations)


def run(questions: list[dict], settings, retriever) -> list[dict]:
    from assistant.answer import ask

    records = []
    for n, item in enumerate(questions, start=1):
        t0 = time.perf_counter()
        answer = ask(
            item["q"], history=item["history"] or None, settings=settings, retriever=retriever
        )
        seconds = time.perf_counter() - t0
        records.append(
            {
                **item,
                "history": [list(turn) for turn in item["history"]],
                "ok": judge(item, answer),
                "abstained": answer.abstained,
                "confidence": answer.confidence,
                "answer_kind": answer.kind,
                "quotes": [{"source": c.source, "quote": c.quote} for c in answer.citations],
                "seconds": seconds,
            }
        )
        if n % 20 == 0:
            print(f"  {n}/{len(questions)}", file=sys.stderr)
    return records


def summary(records: list[dict]) -> dict:
    def rate(rows: list[dict]) -> dict:
        ok = sum(r["ok"] for r in rows)
        return {"n": len(rows), "ok": ok, "rate": ok / len(rows) if rows else 0.0}

    answerable = [r for r in records if r["kind"] in ANSWERABLE]
    near = [r for r in records if r["kind"] == "near_miss"]
    return {
        "by_kind": {k: rate([r for r in records if r["kind"] == k]) for k in KINDS},
        "by_doc": {
            d: {
                "answerable": rate([r for r in answerable if r["doc"] == d]),
                "near_miss": rate([r for r in near if r["doc"] == d]),
            }
            for d in DOCS
        },
        "answerable_right": rate(answerable),
        "near_misses_declined": rate(near),
        "ask_p50_s": statistics.median(r["seconds"] for r in records),
    }


def _shown(record: dict) -> str:
    if record["abstained"]:
        return "abstained"
    quotes = [f"[{q['source']}] {' '.join(q['quote'].split())}" for q in record["quotes"]]
    text = " | ".join(quotes) or "(no quote)"
    return text if len(text) <= 300 else text[:297] + "..."


def report(records: list[dict], totals: dict) -> str:
    lines = ["Written set (benchmarks/written_set.py), by kind of question:", ""]
    rows = []
    for kind, s in totals["by_kind"].items():
        what = "declined" if kind == "near_miss" else "right"
        rows.append([kind, s["n"], f"{s['ok']} {what}", f"{s['rate']:.3f}"])
    a, d = totals["answerable_right"], totals["near_misses_declined"]
    rows.append(["**answerable right**", a["n"], a["ok"], f"**{a['rate']:.3f}**"])
    rows.append(["**near misses declined**", d["n"], d["ok"], f"**{d['rate']:.3f}**"])
    lines.append(table(["kind", "questions", "ok", "rate"], rows))
    lines += ["", "By document (answerable right; near misses declined):", ""]
    rows = [
        [doc, f"{s['answerable']['ok']}/{s['answerable']['n']}"]
        + [f"{s['near_miss']['ok']}/{s['near_miss']['n']}"]
        for doc, s in totals["by_doc"].items()
    ]
    lines.append(table(["document", "answerable right", "near misses declined"], rows))
    lines.append(f"\nask() p50: {totals['ask_p50_s']:.2f} s")
    failures = [r for r in records if not r["ok"]]
    lines.append(f"\nFailures ({len(failures)}):")
    for r in failures:
        want = "should decline" if r["kind"] == "near_miss" else f"expected {r['expect']!r}"
        lines.append(f"- [{r['kind']}, {r['doc']}] {r['q']}  ({want})")
        lines.append(f"    got (confidence {r['confidence']:.2f}): {_shown(r)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the records and totals as JSON")
    parser.add_argument(
        "--min-answerable", type=float, help="exit 1 if answerable right is under this fraction"
    )
    parser.add_argument(
        "--min-declined", type=float, help="exit 1 if near misses declined is under this fraction"
    )
    add_scorer_option(parser)
    args = parser.parse_args(argv)

    texts = {name: path.read_text(encoding="utf-8") for name, path in DOCS.items()}
    check_set(QUESTIONS, texts)

    from assistant.retrieval import Retriever

    settings = bench_settings(written_seeds(texts), answer_scorer=args.scorer)
    ensure_index(settings, progress=False)
    records = run(QUESTIONS, settings, Retriever(settings))
    totals = summary(records)
    if args.json:
        print(json.dumps({"totals": totals, "records": records}, ensure_ascii=False, indent=1))
    else:
        print(report(records, totals))

    gate = []
    a, d = totals["answerable_right"]["rate"], totals["near_misses_declined"]["rate"]
    if args.min_answerable is not None and a < args.min_answerable:
        gate.append(f"answerable right {a:.3f} < {args.min_answerable}")
    if args.min_declined is not None and d < args.min_declined:
        gate.append(f"near misses declined {d:.3f} < {args.min_declined}")
    if gate:
        print("SHIP GATE FAILED: " + "; ".join(gate), file=sys.stderr)
        return 1
    if args.min_answerable is not None or args.min_declined is not None:
        print("ship gate passed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
