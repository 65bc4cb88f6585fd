"""Write the small sample WARCs in data_samples/ and the fate every planted page is expected to meet.

Every page is written for this project (no third-party text) and planted to exercise one stage of the pipeline:
good articles that survive it all, pages each filter must drop, records the reader must skip, and duplicates
for the three dedup methods. The prose is in texts/*.txt; this script holds the pages (URL, title, site, which
text, what fate), the HTML around the text and the WARC writer. `expected.json` maps each URL to its fate;
README.md explains the table.

The output is deterministic: fixed dates, record ids from uuid5, and gzip members with mtime 0, so
`python data_samples/make_samples.py --out DIR` rewrites byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = Path(__file__).resolve().parent
TEXTS = HERE / "texts"
FILE_NAMES = ("sample-00000.warc.gz", "sample-00001.warc.gz", "sample-00002.warc.gz")
RECORD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/mdr/data_samples")
CRAWL_START = datetime(2024, 3, 4, 9, 0, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------------------------
# Text written for these samples: texts/NAME.txt, paragraphs separated by a blank line


def paragraphs(name: str) -> list[str]:
    """The paragraphs of texts/NAME.txt; the lines of a paragraph are joined by a space (the files are wrapped to be
    read, the pages carry each paragraph on one line)."""
    text = (TEXTS / f"{name}.txt").read_text(encoding="utf-8")
    return [" ".join(block.split("\n")) for block in text.rstrip("\n").split("\n\n")]


HEADLAND_LOOP = paragraphs("headland-loop")
HEADLAND_LOOP_NEAR_DUPLICATE = HEADLAND_LOOP[:5] + HEADLAND_LOOP[6:]  # one paragraph in ten removed
LENTIL_SOUP = paragraphs("lentil-soup")
(GAZETTE_EDITORS_NOTE,) = paragraphs("gazette-editors-note")


# ---------------------------------------------------------------------------------------------------------------
# Pages and their fates


@dataclass
class Page:
    url: str
    fate: dict  # what expected.json records for this url
    file: int  # index into FILE_NAMES
    title: str = ""
    site: str = ""
    paragraphs: list[str] = field(default_factory=list)
    lang: str = "en"
    charset: str = "utf-8"
    kind: str = "html"  # html, gallery (images only), png, pdf, not_found, redirect
    location: str = ""  # redirect target
    identified_type: bool = True  # CC's WARC-Identified-Payload-Type header
    note: str = ""  # for README.md


def kept() -> dict:
    return {"kept": True}


def dropped(stage: str, reason: str) -> dict:
    return {"stage": stage, "reason": reason}


PAGES = [
    # --- sample-00000
    Page("https://coastal-walks.example.org/guides/tide-pools", kept(), 0, "Life in a Tide Pool", "Coastal Walks", paragraphs("tide-pools")),
    Page("https://kitchen-notes.example.com/recipes/sourdough-starter", kept(), 0, "Making a Sourdough Starter from Scratch", "Kitchen Notes", paragraphs("sourdough")),
    Page("https://cycle-workshop.example.net/how-to/fix-a-puncture", kept(), 0, "How to Fix a Puncture at the Roadside", "Cycle Workshop", paragraphs("puncture"),
         identified_type=False, note="no WARC-Identified-Payload-Type: the reader must fall back to the HTTP Content-Type"),
    Page("https://plain-money.example.com/basics/emergency-fund", kept(), 0, "Building an Emergency Fund", "Plain Money", paragraphs("emergency-fund")),
    Page("https://coastal-walks.example.org/routes/headland-loop", kept(), 0, "The Headland Loop", "Coastal Walks", HEADLAND_LOOP,
         note="original of the near duplicate"),
    Page("https://kitchen-notes.example.com/recipes/lentil-soup", kept(), 0, "Red Lentil Soup", "Kitchen Notes", LENTIL_SOUP,
         note="original of the exact duplicate"),
    Page("https://riverton-gazette.example.com/news/library-vote", {"dedup": "substring", "first": True}, 0, "Council Approves New Library", "The Riverton Gazette",
         paragraphs("library-vote") + [GAZETTE_EDITORS_NOTE], note="shares the editor's note with three other pages"),
    Page("https://riverton-gazette.example.com/markets/this-week", {"dedup": "url", "copies": 2, "kept_copy": FILE_NAMES[0]}, 0,
         "Market Report: Spring Brings the Crowds", "The Riverton Gazette", paragraphs("markets-week-one"), note="first crawl of a URL crawled twice"),
    Page("http://www.redtube.com/", dropped("url", "domain"), 0, "Members Area", "Members", paragraphs("blocklisted"),
         note="domain on datatrove's shipped UT1 list; no banned word in the URL"),
    Page("https://pharmacy-deals.example.net/buy-cialis-online-cheap", dropped("url", "hard_word"), 0, "Discount Pharmacy", "Pharmacy Deals", paragraphs("pharmacy-spam"),
         note="'cialis' is in banned_words.txt"),
    Page("https://en.wikipedia.org/wiki/Tide_pool", dropped("url", "curated_source"), 0, "Tide pool", "Wikipedia", paragraphs("wikipedia-tide-pool"),
         note="The Pile's curated sources are excluded by RW"),
    Page("https://marche.example.org/fr/samedi-matin", dropped("language", "language"), 0, "Le marché du samedi matin", "Le Marché", paragraphs("french-market"),
         lang="fr", charset="windows-1252", note="French, served as windows-1252"),
    # trafilatura drops a paragraph equal to the one before it, so the repeats are interleaved with other lines.
    Page("https://harbour-stores.example.com/clearance", dropped("repetition", "dup_line_frac"), 0, "Clearance Event", "Harbour Stores", paragraphs("repetitive")),
    Page("https://coastal-walks.example.org/images/headland-map.png", dropped("read", "not_html"), 0, kind="png"),
    Page("https://coastal-walks.example.org/walks/old-quarry-path", dropped("read", "http_status"), 0, "Page not found", "Coastal Walks", kind="not_found"),
    # --- sample-00001
    Page("https://harbour-history.example.org/articles/lighthouse-keepers", kept(), 1, "The Last Lighthouse Keepers", "Harbour History", paragraphs("lighthouse")),
    Page("https://backyard-bees.example.com/blog/first-year", kept(), 1, "My First Year with Bees", "Backyard Bees", paragraphs("bees")),
    Page("https://green-plot.example.org/guides/composting", kept(), 1, "Composting at Home", "Green Plot", paragraphs("compost")),
    Page("https://kitchen-notes.example.com/recipes/apple-crumble", {"kept": True, "lines_edited": True}, 1, "Grandmother's Apple Crumble", "Kitchen Notes",
         paragraphs("apple-crumble"), note="three boilerplate lines (one-word, counter, 'Sign in'), under 5% of words"),
    Page("https://recipe-aggregator.example.net/r/lentil-soup-8841", {"dedup": "exact", "duplicate_of": "https://kitchen-notes.example.com/recipes/lentil-soup"}, 1,
         "Red Lentil Soup", "Kitchen Notes", LENTIL_SOUP, note="byte-identical HTML at a second URL"),
    Page("https://riverton-gazette.example.com/news/bridge-repairs", {"dedup": "substring"}, 1, "Bridge Repairs to Begin", "The Riverton Gazette",
         paragraphs("bridge-repairs") + [GAZETTE_EDITORS_NOTE], note="shares the editor's note"),
    Page("https://riverton-gazette.example.com/news/school-garden", {"dedup": "substring"}, 1, "School Garden Sells First Harvest", "The Riverton Gazette",
         paragraphs("school-garden") + [GAZETTE_EDITORS_NOTE], note="shares the editor's note"),
    Page("https://fashion-reviews.example.com/lingerie-webcam-show", dropped("url", "soft_words"), 1, "Live Shows", "Fashion Reviews", paragraphs("fashion-spam"),
         note="two soft words: 'lingerie', 'webcam'"),
    Page("https://wandern.example.org/de/herbst-im-mittelgebirge", dropped("language", "language"), 1, "Herbst im Mittelgebirge", "Wandern", paragraphs("german-hiking"), lang="de"),
    Page("https://harbour-stores.example.com/catalogue", dropped("quality", "gopher_below_alpha_threshold"), 1, "Spring Catalogue", "Harbour Stores",
         paragraphs("low-quality"), note="a comma-separated price list: under 80% of tokens hold a letter, and no stop words"),
    Page("https://harbour-stores.example.com/opening-soon", dropped("quality", "gopher_short_doc"), 1, "Opening Soon", "Harbour Stores", paragraphs("too-short")),
    Page("https://harbour-town-news.example.com/stories/ferry-timetable", dropped("lines", "too_many_words_removed"), 1, "Ferry Timetable Cut",
         "Harbour Town News", paragraphs("ferry-timetable"), note="caps, counter and one-word lines are over 5% of the words"),
    Page("https://city-library.example.org/reports/annual-report-2023.pdf", dropped("read", "not_html"), 1, kind="pdf"),
    Page("http://coastal-walks.example.org/", dropped("read", "http_status"), 1, kind="redirect", location="https://coastal-walks.example.org/"),
    Page("https://coastal-walks.example.org/gallery", dropped("extract", "empty"), 1, "Gallery", "Coastal Walks", kind="gallery",
         note="images only, no text: trafilatura returns nothing"),
    # --- sample-00002
    Page("https://sky-questions.example.net/answers/why-rainbows-are-curved", kept(), 2, "Why Are Rainbows Curved?", "Sky Questions", paragraphs("rainbows")),
    Page("https://quiet-moves.example.com/lessons/first-openings", kept(), 2, "Chess Openings for Beginners", "Quiet Moves", paragraphs("chess")),
    Page("https://leaf-and-pot.example.org/care/winter-houseplants", kept(), 2, "Keeping Houseplants Alive in Winter", "Leaf and Pot", paragraphs("houseplants")),
    Page("https://walking-coast.example.net/routes/headland-loop-walk", {"dedup": "near", "duplicate_of": "https://coastal-walks.example.org/routes/headland-loop"}, 2,
         "Headland Loop Walk", "Walking the Coast", HEADLAND_LOOP_NEAR_DUPLICATE, note="the headland loop with one paragraph in ten removed"),
    Page("https://riverton-gazette.example.com/news/river-festival", {"dedup": "substring"}, 2, "River Festival Returns", "The Riverton Gazette",
         paragraphs("river-festival") + [GAZETTE_EDITORS_NOTE], note="shares the editor's note"),
    Page("https://riverton-gazette.example.com/markets/this-week", {"dedup": "url", "copies": 2, "kept_copy": FILE_NAMES[0]}, 2,
         "Market Report: Rain Keeps Shoppers Away", "The Riverton Gazette", paragraphs("markets-week-two"),
         note="second crawl, a week later, different text: URL dedup drops it"),
    Page("https://cocina.example.org/es/comida-del-domingo", dropped("language", "language"), 2, "La comida del domingo", "Cocina", paragraphs("spanish-cooking"), lang="es"),
]  # fmt: skip

# The span exact-substring dedup must cut from every page that carries it but the first (earliest in input order).
SUBSTRING_SPAN = GAZETTE_EDITORS_NOTE


# ---------------------------------------------------------------------------------------------------------------
# HTML


NAV_LABELS = {
    "en": ("Home", "Topics", "About us", "Contact", "Subscribe", "Related reading", "All rights reserved.", "Privacy", "Terms of use"),
    "fr": ("Accueil", "Rubriques", "Qui sommes-nous", "Contact", "S'abonner", "À lire aussi", "Tous droits réservés.", "Confidentialité", "Mentions légales"),
    "de": ("Startseite", "Themen", "Über uns", "Kontakt", "Abonnieren", "Mehr zum Thema", "Alle Rechte vorbehalten.", "Datenschutz", "Impressum"),
    "es": ("Inicio", "Temas", "Quiénes somos", "Contacto", "Suscribirse", "Lecturas relacionadas", "Todos los derechos reservados.", "Privacidad", "Aviso legal"),
}  # fmt: skip


def article_html(page: Page, date: datetime) -> str:
    home, topics, about, contact, subscribe, related, rights, privacy, terms = NAV_LABELS[page.lang]
    body = "\n".join(f"<p>{paragraph}</p>" for paragraph in page.paragraphs)
    others = [p for p in PAGES if p.site == page.site and p.url != page.url and p.kind == "html" and p.title][:3]
    related_items = "".join(f'<li><a href="{p.url}">{p.title}</a></li>' for p in others)
    return f"""<!DOCTYPE html>
<html lang="{page.lang}">
<head>
<meta charset="{page.charset}">
<title>{page.title} | {page.site}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/site.css">
<script>window.dataLayer = window.dataLayer || []; function track(e) {{ window.dataLayer.push(e); }}</script>
</head>
<body>
<div class="cookie-banner">This site uses cookies. <a href="/privacy">{privacy}</a> <button>OK</button></div>
<header class="site-header">
<a class="logo" href="/">{page.site}</a>
<nav><ul><li><a href="/">{home}</a></li><li><a href="/topics">{topics}</a></li><li><a href="/about">{about}</a></li><li><a href="/contact">{contact}</a></li><li><a href="/subscribe">{subscribe}</a></li></ul></nav>
</header>
<main>
<article>
<h1>{page.title}</h1>
<p class="byline"><time datetime="{date:%Y-%m-%d}">{date:%Y-%m-%d}</time></p>
{body}
</article>
<aside class="related"><h2>{related}</h2><ul>{related_items}</ul></aside>
</main>
<footer><p>© 2024 {page.site}. {rights}</p><ul><li><a href="/privacy">{privacy}</a></li><li><a href="/terms">{terms}</a></li></ul></footer>
</body>
</html>
"""


def gallery_html(page: Page) -> str:
    """Images only, no navigation: trafilatura's fallbacks find nothing either."""
    figures = "".join(f'<figure><img src="/images/headland-{i}.jpg" alt=""></figure>' for i in range(1, 7))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{page.title} | {page.site}</title></head>'
        f'<body><div class="gallery">{figures}</div><script src="/static/lightbox.js"></script></body></html>\n'
    )


def not_found_html(page: Page) -> str:
    return (
        f"<!DOCTYPE html>\n<html><head><title>Page not found | {page.site}</title></head><body><h1>Page not found</h1>"
        "<p>Sorry, the page you are looking for has moved or no longer exists. Try the search box or go back to the "
        'home page.</p><p><a href="/">Home</a></p></body></html>\n'
    )


def redirect_html(page: Page) -> str:
    return f'<html><head><title>301 Moved Permanently</title></head><body><a href="{page.location}">Moved</a></body></html>\n'


def png_bytes() -> bytes:
    """A valid 16x16 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    width = height = 16
    rows = b"".join(b"\x00" + bytes([0x80]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def pdf_bytes() -> bytes:
    """A minimal one-page PDF with a line of text."""
    stream = b"BT /F1 18 Tf 72 720 Td (City Library annual report 2023) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = BytesIO(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def http_response(page: Page, date: datetime) -> tuple[str, list[tuple[str, str]], bytes, str]:
    """Status line, headers, body and the MIME type Common Crawl would identify for the page."""
    if page.kind == "png":
        status, mime, body = "200 OK", "image/png", png_bytes()
        content_type = mime
    elif page.kind == "pdf":
        status, mime, body = "200 OK", "application/pdf", pdf_bytes()
        content_type = mime
    else:
        status = {"not_found": "404 Not Found", "redirect": "301 Moved Permanently"}.get(page.kind, "200 OK")
        render = {"not_found": not_found_html, "redirect": redirect_html, "gallery": gallery_html}.get(page.kind)
        html = render(page) if render else article_html(page, date)
        mime, body = "text/html", html.encode(page.charset)
        content_type = f"text/html; charset={page.charset}"
    headers = [
        ("Date", date.strftime("%a, %d %b %Y %H:%M:%S GMT")),
        ("Server", "nginx"),
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
    ]
    if page.kind == "redirect":
        headers.append(("Location", page.location))
    return status, headers, body, mime


# ---------------------------------------------------------------------------------------------------------------
# WARC


def record_id(*parts) -> str:
    return f"<urn:uuid:{uuid.uuid5(RECORD_NAMESPACE, '/'.join(map(str, parts)))}>"


def warc_date(date: datetime) -> str:
    return date.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_warc(path: Path, file_index: int, pages: list[Page]) -> None:
    name = FILE_NAMES[file_index]
    first_date = CRAWL_START + timedelta(days=7 * file_index)
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="1.0")
        info = (
            "software: mdr data_samples/make_samples.py\r\n"
            "format: WARC File Format 1.0\r\n"
            "conformsTo: http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf\r\n"
            "isPartOf: MDR-SAMPLES-2024-10\r\n"
            "publisher: mdr project (pages written for these samples)\r\n"
            "description: Small synthetic crawl that plants one page per pipeline stage; see data_samples/README.md\r\n"
        ).encode()
        writer.write_record(
            writer.create_warc_record(
                "", "warcinfo", payload=BytesIO(info), length=len(info), warc_content_type="application/warc-fields",
                warc_headers_dict={"WARC-Date": warc_date(first_date), "WARC-Record-ID": record_id(name, "warcinfo"), "WARC-Filename": name},
            )
        )  # fmt: skip
        for index, page in enumerate(pages):
            date = first_date + timedelta(minutes=3 * index, seconds=17 * index % 60)
            response_id = record_id(name, index, "response")
            request_id = record_id(name, index, "request")
            ip_address = f"192.0.2.{10 + index}"  # TEST-NET-1, reserved for documentation
            scheme, _, rest = page.url.partition("://")
            host, _, path = rest.partition("/")
            request_headers = StatusAndHeaders(
                f"GET /{path} HTTP/1.1",
                [("Host", host), ("User-Agent", "mdr-samples/1.0"), ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
                 ("Accept-Encoding", "identity")],
                is_http_request=True,
            )  # fmt: skip
            writer.write_record(
                writer.create_warc_record(
                    page.url, "request", http_headers=request_headers,
                    warc_headers_dict={"WARC-Date": warc_date(date), "WARC-Record-ID": request_id,
                                       "WARC-Concurrent-To": response_id, "WARC-IP-Address": ip_address},
                )
            )  # fmt: skip
            status, headers, body, mime = http_response(page, date)
            response_headers = {"WARC-Date": warc_date(date), "WARC-Record-ID": response_id, "WARC-IP-Address": ip_address}
            if page.identified_type:
                response_headers["WARC-Identified-Payload-Type"] = mime
            writer.write_record(
                writer.create_warc_record(
                    page.url, "response", payload=BytesIO(body), length=len(body),
                    http_headers=StatusAndHeaders(status, headers, protocol="HTTP/1.1"), warc_headers_dict=response_headers,
                )
            )  # fmt: skip
            metadata = f"fetchTimeMs: {40 + 7 * index}\r\n"
            if mime == "text/html":
                metadata += f"charset-detected: {page.charset.upper()}\r\n"
            metadata = metadata.encode()
            writer.write_record(
                writer.create_warc_record(
                    page.url, "metadata", payload=BytesIO(metadata), length=len(metadata), warc_content_type="application/warc-fields",
                    warc_headers_dict={"WARC-Date": warc_date(date), "WARC-Record-ID": record_id(name, index, "metadata"),
                                       "WARC-Refers-To": response_id},
                )
            )  # fmt: skip


def expected_fates() -> dict:
    fates = {}
    for page in PAGES:
        fate = dict(page.fate)
        if fate.get("dedup") == "substring":
            fate["keeps" if fate.pop("first", False) else "cut"] = SUBSTRING_SPAN
        fates.setdefault(page.url, fate)
    return fates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: data_samples/)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for file_index, name in enumerate(FILE_NAMES):
        write_warc(args.out / name, file_index, [page for page in PAGES if page.file == file_index])
    (args.out / "expected.json").write_text(json.dumps(expected_fates(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
