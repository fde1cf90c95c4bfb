"""Generated test documents: a 30-page PDF, a DOCX, an HTML page and broken files.

The PDF (reportlab) has a running header and footer on every page, a two-column table on
page 5, a word hyphenated across a line break on page 9 and the lighthouse facts on page 17.
"""

from __future__ import annotations

import io
import random
import zipfile

HEADER = "Northern Station Field Manual (internal)"
FOOTER = "Page {page} of 30"
PAGE17 = (
    "The lighthouse keeper recorded that the northern beacon uses a xenon lamp of 4,000 watts, "
    "visible for thirty-one nautical miles in clear weather."
)
WORDS = [
    "crew",
    "supply",
    "weather",
    "radio",
    "schedule",
    "harbour",
    "engine",
    "rope",
    "cargo",
    "tide",
    "storm",
    "harvest",
    "ledger",
    "inspection",
    "generator",
    "antenna",
    "kitchen",
    "ferry",
    "pier",
    "lantern",
    "compass",
    "voyage",
    "winter",
    "summer",
    "valve",
    "pump",
    "signal",
    "cabin",
    "anchor",
    "coast",
    "island",
    "seal",
    "gull",
    "fog",
    "current",
    "shift",
    "report",
    "barrel",
]


def _sentences(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(9, 16))]
        out.append(" ".join(words).capitalize() + ".")
    return out


def pdf_30_pages() -> bytes:
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table

    styles = getSampleStyleSheet()

    def furniture(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 9)
        canvas.drawString(72, 750, HEADER)
        canvas.drawString(280, 30, FOOTER.format(page=doc.page))
        canvas.restoreState()

    story = []
    for page in range(1, 31):
        story.append(
            Paragraph(f"Part {chr(64 + page) if page <= 26 else page * 7}", styles["Heading2"])
        )
        if page == 5:
            story.append(Paragraph("Maintenance intervals", styles["Heading3"]))
            story.append(
                Table(
                    [
                        ["Component", "Interval"],
                        ["Gearbox oil", "every 400 hours"],
                        ["Rotor blades", "every 2 years"],
                    ]
                )
            )
        if page == 9:
            story.append(
                Paragraph(
                    "The inspection found that the anti-corrosion treat-<br/>ment of the hull "
                    "had failed after the winter storms.",
                    styles["BodyText"],
                )
            )
        if page == 17:
            story.append(Paragraph(PAGE17, styles["BodyText"]))
        for k in range(2):
            story.append(Paragraph(" ".join(_sentences(page * 10 + k, 5)), styles["BodyText"]))
        story.append(PageBreak())
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=letter, title="Northern Station Field Manual")
    doc.build(story, onFirstPage=furniture, onLaterPages=furniture)
    return buf.getvalue()


def pdf_scanned() -> bytes:
    """One page holding only an image of text (no text layer)."""
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = Image.new("RGB", (400, 100), "white")
    ImageDraw.Draw(image).text((10, 40), "This is a scanned page.", fill="black")
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.drawImage(ImageReader(image), 72, 600, width=400, height=100)
    c.showPage()
    c.save()
    return buf.getvalue()


def pdf_simple(text: str, pages: int = 1, encrypt: str | None = None) -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, encrypt=encrypt)
    for p in range(pages):
        c.drawString(72, 700, f"{text} (page {p + 1})")
        c.showPage()
    c.save()
    return buf.getvalue()


def pdf_truncated() -> bytes:
    data = pdf_30_pages()
    return data[: len(data) // 3]


def docx_with_headings() -> bytes:
    import docx

    d = docx.Document()
    d.core_properties.title = "Dishwasher handbook"
    d.add_heading("Dishwasher handbook", 0)
    d.add_heading("Installation", 1)
    d.add_paragraph("Connect the inlet hose to a cold water tap and level the machine.")
    d.add_heading("Warranty", 1)
    d.add_paragraph(
        "The warranty covers the circulation pump for seven years from the date of purchase."
    )
    d.add_heading("Claims", 2)
    d.add_paragraph("Claims are made with the receipt at any authorised service centre.")
    table = d.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("Part", "Years"), ("Pump", "7"), ("Door seal", "2")]):
        table.cell(r, 0).text = a
        table.cell(r, 1).text = b
    d.add_heading("Cleaning", 1)
    d.add_paragraph("Rinse the filter under running water once a month.")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


HTML_PAGE = """<!doctype html>
<html><head><title>Glacier hiking guide</title><style>body {color: red}</style>
<script>var tracking = "do not index this script";</script></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/shop">Shop our cookie boutique</a></li>
<li><a href="/login">Sign in to your account</a></li></ul></nav>
<header><p>Subscribe to the newsletter for weekly deals</p></header>
<main>
<h1>Glacier hiking guide</h1>
<p>Guided glacier walks start at the Falljökull car park at eight in the morning.</p>
<h2>Equipment</h2>
<p>Every hiker is given crampons, an ice axe and a helmet before the walk begins.</p>
<table><tr><th>Item</th><th>Rental price</th></tr><tr><td>Boots</td><td>15 euros</td></tr></table>
<h2>Safety</h2>
<p>Walks are cancelled when the wind exceeds twenty metres per second.</p>
</main>
<aside>Related: our cookie boutique ships worldwide</aside>
<footer><p>Copyright Example Tours, all rights reserved</p></footer>
</body></html>
"""

NAV_WORDS = ("cookie boutique", "Sign in", "newsletter", "Copyright", "tracking")


def xlsx_file() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()
