"""Runs shared by the report tests: `mdr run` over data_samples/ plus a WARC with planted script payloads (in a URL,
in raw HTML dropped by the URL filter, and in the visible text of an article that is kept)."""

from io import BytesIO
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tests.pipeline.commands import mdr

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data_samples"

# Each payload would set window.__pwned (and the title) if the report ever let page content run.
SCRIPT_PAYLOAD = "<script>window.__pwned=1;document.title='pwned'</script>"
IMG_PAYLOAD = "<img src=x onerror=\"window.__pwned=2;document.title='pwned'\">"
URL_PAYLOAD = "<img/src=x/onerror=window.__pwned=3>"
DROPPED_URL = f"https://pharmacy.example.net/buy-cialis-online/\"><script>window.__pwned=4</script>"
KEPT_URL = f"https://planted.example/notes?q=\">{URL_PAYLOAD}"

ARTICLE = [
    "Every web page that shows text typed by its visitors has to decide what to do with angle brackets. A comment "
    "box on a small gardening forum is a good example, because people paste all kinds of things into it, from "
    "recipes for compost to fragments of markup they copied from somewhere else without noticing.",
    "If the forum prints such a comment as it was typed, the browser reads it as part of the page. A visitor who "
    f"writes {SCRIPT_PAYLOAD} into the box would then run code in the browser of every reader, and one who writes "
    f"{IMG_PAYLOAD} would do the same through a broken picture. The fix is old and simple: turn each bracket into "
    "an entity before the page is sent, so that the reader sees the characters and the browser runs nothing.",
    "The same rule holds for reports built from crawled pages. The text of a page is data, never code, and the "
    "safest way to show it is to hand it to the page as plain text, where it can be read, copied and searched "
    "but where it can never change what the page does. Tools that follow this rule can show any page at all.",
    "A second habit helps as well. A page can declare which scripts it is willing to run, and a browser that "
    "reads such a declaration refuses everything else, even if a mistake somewhere lets a stray tag through. "
    "Together the two habits make a report that can be opened without worry on any machine.",
]


def _article_html(title: str, paragraphs: list[str]) -> str:
    escaped = "".join(f"<p>{p.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</p>"
                      for p in paragraphs)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
            f"<article><h1>{title}</h1>{escaped}</article></body></html>")


def write_planted_warc(path: Path) -> None:
    pages = [
        (DROPPED_URL, f"<html><head><title>Cheap pills</title>{SCRIPT_PAYLOAD}</head><body>{IMG_PAYLOAD}"
                      "<p>Buy now.</p></body></html>"),
        (KEPT_URL, _article_html("Why brackets need escaping", ARTICLE)),
    ]
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="1.0")
        for index, (url, html) in enumerate(pages):
            body = html.encode()
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                                  ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(
                url, "response", payload=BytesIO(body), length=len(body), http_headers=headers,
                warc_headers_dict={"WARC-Date": "2024-03-04T09:00:00Z",
                                   "WARC-Record-ID": f"<urn:uuid:00000000-0000-4000-8000-00000000000{index}>"}))


def run_inputs(tmp: Path) -> list[str]:
    warc = tmp / "planted.warc.gz"
    if not warc.exists():
        write_planted_warc(warc)
    return [str(SAMPLES), str(warc)]


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> list[str]:
    return run_inputs(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, inputs) -> Path:
    """The refinedweb recipe over data_samples/ and the planted WARC."""
    out = tmp_path_factory.mktemp("run") / "out"
    result = mdr("run", "refinedweb", "--input", *inputs, "--output", str(out), "--workers", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def report_file(run_dir, tmp_path_factory) -> Path:
    """The report of `run_dir` with every sampled reason complete (50 per reason)."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    result = mdr("report", str(run_dir), "-o", str(path), "--samples", "50")
    assert result.returncode == 0, result.stderr
    return path
