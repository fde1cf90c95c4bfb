"""Extraction throughput: PDF pages/s, DOCX and HTML MB/s, and extraction's share of a build.

    .venv/bin/python -m benchmarks.extract [--pdf-pages 300] [--mb 4] [--rounds 3]
                                           [--build-pages 40] [--build-kb 150] [--no-build]

Documents are generated from SciFact abstracts (real scientific prose): a PDF of
``--pdf-pages`` pages (reportlab: paragraphs, a heading per page, running header and footer,
a table every tenth page), a DOCX and an HTML page of about ``--mb`` MB of text each (headings,
paragraphs, tables; the HTML with navigation, scripts and a footer). Each is extracted
``--rounds`` times in this process (medians), and once through the worker process the build
uses (``Sandbox``: process start, limits, JSON over a pipe). Throughput is per input size: PDF
pages, DOCX file MB, HTML file MB.

Then a full ``build_index`` with the real model over a folder of one smaller document of each
kind (``--build-pages`` PDF pages, ``--build-kb`` KB of text for DOCX and HTML): the
extraction's share is the corpus read (all three through the worker) over the whole build.
Needs the dev extras (reportlab, python-docx).
"""

from __future__ import annotations

import argparse
import io
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import DATA, machine_note, read_jsonl, table


def abstracts() -> itertools.cycle:
    rows = read_jsonl(DATA / "scifact" / "corpus.jsonl")
    return itertools.cycle([(r["title"], r["text"]) for r in rows if r["text"]])


def make_pdf(pages: int, texts) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table

    styles = getSampleStyleSheet()

    def furniture(canvas, doc):
        canvas.setFont("Helvetica", 8)
        canvas.drawString(60, 810, "Benchmark proceedings, volume 1")
        canvas.drawString(280, 20, f"{doc.page}")

    story = []
    for page in range(pages):
        title, text = next(texts)
        story.append(Paragraph(title[:90], styles["Heading3"]))
        story.append(Paragraph(text[:2200], styles["BodyText"]))
        if page % 10 == 9:
            story.append(Table([["Measure", "Value"], ["n", str(page)], ["p", "0.05"]]))
        story.append(PageBreak())
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4).build(story, onFirstPage=furniture, onLaterPages=furniture)
    return buf.getvalue()


def make_docx(size: int, texts) -> bytes:
    import docx

    d = docx.Document()
    written = 0
    for i in itertools.count():
        title, text = next(texts)
        d.add_heading(title[:90], 1 + i % 3)
        d.add_paragraph(text)
        written += len(title) + len(text)
        if i % 20 == 19:
            table = d.add_table(rows=3, cols=2)
            for r in range(3):
                table.cell(r, 0).text, table.cell(r, 1).text = f"row {r}", str(i)
        if written >= size:
            break
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def make_html(size: int, texts) -> bytes:
    from html import escape

    parts = [
        "<!doctype html><html><head><title>Benchmark page</title><script>var x = 1;</script>"
        "</head><body><nav><a href='/'>Home</a> <a href='/about'>About</a></nav><main>"
    ]
    written = 0
    for i in itertools.count():
        title, text = next(texts)
        parts.append(f"<h{2 + i % 3}>{escape(title)}</h{2 + i % 3}><p>{escape(text)}</p>")
        if i % 20 == 19:
            parts.append(
                f"<table><tr><th>row</th><th>value</th></tr><tr><td>n</td><td>{i}</td></tr></table>"
            )
        written += len(title) + len(text)
        if written >= size:
            break
    parts.append("</main><footer>Copyright nobody</footer></body></html>")
    return "".join(parts).encode("utf-8")


def time_extract(path: Path, fmt: str, rounds: int) -> tuple[float, object]:
    from assistant.extract import extract_path

    times, out = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        out = extract_path(str(path), fmt)
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def time_sandbox(path: Path, fmt: str) -> float:
    from assistant.extract.sandbox import Sandbox

    started = time.perf_counter()
    with Sandbox() as sandbox:
        sandbox.extract(str(path), fmt)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf-pages", type=int, default=300)
    parser.add_argument("--mb", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--build-pages", type=int, default=40)
    parser.add_argument("--build-kb", type=int, default=150)
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    texts = abstracts()

    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        root = Path(tmp)
        files = {
            "pdf": make_pdf(args.pdf_pages, texts),
            "docx": make_docx(int(args.mb * 1e6), texts),
            "html": make_html(int(args.mb * 1e6), texts),
        }
        rows = []
        for fmt, data in files.items():
            path = root / f"big.{fmt}"
            path.write_bytes(data)
            seconds, out = time_extract(path, fmt, args.rounds)
            worker = time_sandbox(path, fmt)
            mb = len(data) / 1e6
            rate = (
                f"{out.pages / seconds:.0f} pages/s" if fmt == "pdf" else f"{mb / seconds:.2f} MB/s"
            )
            size = f"{out.pages} pages, {mb:.2f} MB" if fmt == "pdf" else f"{mb:.2f} MB"
            rows.append(
                [fmt, size, f"{len(out.text) / 1e6:.2f}", f"{seconds:.3f}", rate, f"{worker:.3f}"]
            )
        print(machine_note())
        print(
            table(
                ["format", "input", "text MB", "extract s (median)", "throughput", "via worker s"],
                rows,
            )
        )
        if args.no_build:
            return
        build_share(root, args, texts)


def build_share(root: Path, args, texts) -> None:
    from assistant.build import build_index
    from assistant.config import Settings
    from assistant.corpus import load_corpus
    from assistant.embedder import get_embedder

    seeds = root / "seeds"
    seeds.mkdir()
    (seeds / "paper.pdf").write_bytes(make_pdf(args.build_pages, texts))
    (seeds / "report.docx").write_bytes(make_docx(args.build_kb * 1000, texts))
    (seeds / "page.html").write_bytes(make_html(args.build_kb * 1000, texts))
    settings = Settings(seeds_dir=seeds, index_dir=root / "index")
    embedder = get_embedder(settings.model)
    embedder.embed(["warm up"])
    started = time.perf_counter()
    load_corpus(seeds)  # what the build's corpus read does: every file through the worker
    extract_s = time.perf_counter() - started
    report = build_index(settings, embedder=embedder, full=True, progress=False)
    print(
        table(
            ["build corpus", "chunks", "build s", "extraction s (worker)", "extraction share"],
            [
                [
                    f"{args.build_pages}-page PDF + {args.build_kb} KB DOCX + {args.build_kb} KB HTML",
                    report.total_chunks,
                    f"{report.seconds:.1f}",
                    f"{extract_s:.2f}",
                    f"{extract_s / report.seconds:.1%}",
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
