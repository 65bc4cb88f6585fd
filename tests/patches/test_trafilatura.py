"""mdr/patches/trafilatura.py swaps trafilatura.xpaths' lists for fast_xpath's compiled paths in place, and back, only
on the trafilatura series it was tested with; its INVALID_XML_CHARS for one that skips a page vouched for; and runs
readability only where its text could be chosen, with every text as before."""

import importlib
import random
import re
from pathlib import Path

import pytest
from lxml import etree
from trafilatura import settings, xpaths

from mdr.filters.extraction import ExtractionConfig, trafilatura_extract
from mdr.filters.fast_xpath import CompiledXPath
from mdr.patches import UntestedVersionError
from mdr.patches import trafilatura as patch
from mdr.pipeline.reader import WarcRecordReader
from tests.filters.texts import SHARED_DATA

baseline = importlib.import_module("trafilatura.baseline")
SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"  # the package's `baseline` attribute is the function
SHARED_WARCS = SHARED_DATA / "warc" / "commoncrawl"  # the Common Crawl samples, used where present


def test_install_and_uninstall_swap_trafilatura_paths_in_place():
    overall = xpaths.OVERALL_DISCARD_XPATH  # main_extractor and external hold this very list
    patch.install()
    try:
        assert patch.installed() and all(isinstance(p, CompiledXPath) for p in overall)
        assert any(isinstance(p, etree.XPath) for p in xpaths.AUTHOR_XPATHS)  # `rel='me'`: left to lxml
        assert isinstance(baseline.BASIC_CLEAN_XPATH, CompiledXPath) and isinstance(settings.BASIC_CLEAN_XPATH,
                                                                                   CompiledXPath)
        patch.install()  # twice is harmless
    finally:
        patch.uninstall()
    assert not patch.installed() and all(isinstance(p, etree.XPath) for p in overall)
    assert isinstance(baseline.BASIC_CLEAN_XPATH, etree.XPath) and baseline.BASIC_CLEAN_XPATH is settings.BASIC_CLEAN_XPATH


def test_an_untested_trafilatura_is_refused_before_anything_is_patched(monkeypatch):
    monkeypatch.setattr("importlib.metadata.version", lambda distribution: "2.4.0")
    with pytest.raises(UntestedVersionError, match=r"trafilatura 2\.3\.x; 2\.4\.0 is installed"):
        patch.install()
    assert not patch.installed() and all(isinstance(p, etree.XPath) for p in xpaths.OVERALL_DISCARD_XPATH)


INVALID_XML_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # trafilatura 2.3's, in utils.py


def test_xml_chars_valid_agrees_with_trafilaturas_pattern():
    rng = random.Random(15)
    alphabet = ["a", "<p>", "\t", "\n", "\r", "\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1f", " ", "é", "€",
                "\ufffe", "\uffff", "\ufffd", "\U0001f600", "\u00ff"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        assert patch.xml_chars_valid(text) == (INVALID_XML_CHARS.search(text) is None), repr(text)
        assert patch.xml_chars_valid(text, text.encode("utf-8")) == patch.xml_chars_valid(text)


def test_trafilatura_skips_its_scan_only_for_the_page_vouched_for():
    import trafilatura.utils

    original = trafilatura.utils.INVALID_XML_CHARS
    patch.install()
    try:
        checked = trafilatura.utils.INVALID_XML_CHARS
        clean, dirty = "<html><body><p>clean page</p></body></html>", "<p>a\x01b\ufffe</p>"
        patch.vouch_if_xml_clean(clean)
        assert checked.sub("", clean) is clean
        assert checked.sub("", dirty) == "<p>ab</p>"  # not vouched for: the pattern's own sub
        copy = "".join(["<p>", "x\x02", "</p>"])
        assert checked.sub("", copy) == "<p>x</p>" and checked.search("\x02") and checked.pattern == original.pattern
        # through mdr's extraction: a raw control character is still removed by trafilatura, the text as unpatched
        html = "<html><body><article><p>" + "Words of a long enough paragraph here. " * 12 + "\x07end.</p></article>"
        patched = trafilatura_extract(html + "</body></html>", ExtractionConfig(favor_precision=True).trafilatura_options())
    finally:
        patch.uninstall()
    assert trafilatura.utils.INVALID_XML_CHARS is original
    assert patched == trafilatura_extract(html + "</body></html>", ExtractionConfig(favor_precision=True).trafilatura_options())
    assert patched.endswith("here. end.")


def test_mdr_extraction_scans_a_clean_page_once_and_a_dirty_one_as_trafilatura_does():
    import trafilatura.utils

    options = ExtractionConfig(favor_precision=True).trafilatura_options()
    body = "<html><body><article><p>" + "Words of a long enough paragraph here. " * 12 + "{}</p></article></body></html>"
    scanned = []

    class Counting:
        def sub(self, repl, string, count=0):
            scanned.append(string)
            return INVALID_XML_CHARS.sub(repl, string, count)

    patch.install()
    checked = trafilatura.utils.INVALID_XML_CHARS
    checked.compiled, original = Counting(), checked.compiled
    try:
        trafilatura_extract(body.format("end."), options)
        assert scanned == []  # xml_safe_html vouched for it: trafilatura's load_html did not scan it
        trafilatura_extract(body.format("\x07end."), options)
        assert len(scanned) == 1 and "\x07" in scanned[0]
    finally:
        checked.compiled = original
        patch.uninstall()


def test_the_c_level_lookup_gives_the_classes_of_lxml_htmls_python_lookup():
    from lxml import html

    by_python = html.HTMLParser()  # lxml.html's own: HtmlElementClassLookup, comments and PIs kept
    in_c = html.HTMLParser()
    in_c.set_element_class_lookup(patch._c_level_lookup())
    names = [variant for name in ("form", "input", "label", "select", "textarea") for variant in patch._case_variants(name)]
    page = ("<html><body><!-- a comment --><?php echo 1 ?><FORM><Input name=x><SeLeCt><option>o</option></SeLeCt>"
            "<TextArea>t</TextArea></FORM><LaBeL>l</LaBeL><div>&amp;<p>p</p></div><svg:rect/><formx/></body></html>")
    pages = [page, *(doc.text for doc in WarcRecordReader(sorted(str(p) for p in SAMPLES.glob("*.warc.gz"))).run())]
    for text in pages:
        expected, got = html.fromstring(text, parser=by_python), html.fromstring(text, parser=in_c)
        assert [type(node) for node in expected.iter()] == [type(node) for node in got.iter()]
    assert len(names) == 2**4 + 2**5 + 2**5 + 2**6 + 2**8
    for name in [*names, "div", "p", "formx", "x"]:
        assert type(in_c.makeelement(name)) is type(by_python.makeelement(name)), name
    assert isinstance(in_c.makeelement("TEXTAREA"), html.TextareaElement)


# ---------------------------------------------------------------------------------------------------------------
# readability, run where its text could be chosen


def sample_pages() -> list[str]:
    return [doc.text for doc in WarcRecordReader(sorted(str(p) for p in SAMPLES.glob("*.warc.gz"))).run()]


def readability_text_length(tree) -> int:
    """What compare_extraction measures of try_readability(tree): its text, trimmed (trafilatura/external.py, 2.3)."""
    from trafilatura.external import try_readability
    from trafilatura.utils import trim

    return len(trim(etree.tostring(try_readability(tree), method="text", encoding="utf-8").decode("utf-8")))


def bound_and_length(page: str) -> tuple[int | None, int]:
    from copy import deepcopy

    from trafilatura.utils import load_html

    tree = load_html(page)
    return patch.readability_text_bound(deepcopy(tree)), readability_text_length(tree)


EDGE_PAGES = [
    # raw-text elements keep `&amp;` and `&lt;` as written when readability's output is parsed again
    "<html><head><title>A &amp; B &lt; C</title></head><frameset><frame src=a></frameset>"
    "<noframes>&lt;body&gt; a &amp; b &lt;/body&gt;</noframes></html>",
    "<html><body><xmp><b>bold</b> & <i>x</i></xmp><p>short</p></body></html>",
    # a video iframe's text becomes VIDEO
    "<html><body><div><p>" + "Text about a film, with commas, here. " * 3 + "</p><iframe src='https://youtube.com/x'>"
    "</iframe><iframe src='https://vimeo.com/y'>v</iframe></div></body></html>",
    # a div's loose text and tails moved into new paragraphs; scripts and styles dropped with their tails kept
    "<html><body><div>loose <b>bold</b> tail<script>var x = 1;</script>after script<style>p{}</style>"
    "<span>s</span>   spaced   tail  <br/>more</div><textarea>a &amp; b</textarea></body></html>",
    "<html><body><noscript><p>no script</p></noscript><table><tr><td>" + "cell, " * 40 + "</td></tr></table>"
    "</body></html>",
    "<html><body>\r\n<p>carriage\rreturn &#13; and \x0b control</p></body></html>",
    "<html><body></body></html>",
]


def test_raw_text_tags_are_those_the_parser_keeps_as_text():
    tags = patch._raw_text_tags()
    assert {"iframe", "noframes", "xmp", "title", "textarea"} <= set(tags)
    assert "noscript" not in tags  # libxml2 2.14 parses noscript's content as elements


def test_the_readability_bound_holds_on_edge_cases_and_real_pages():
    pages = [*EDGE_PAGES, *sample_pages()]
    warcs = sorted(SHARED_WARCS.glob("*.warc.gz")) if SHARED_WARCS.is_dir() else []
    pages += [doc.text for doc in WarcRecordReader([str(p) for p in warcs]).run() if not doc.metadata.get("is_wet")]
    for page in pages:
        bound, length = bound_and_length(page)
        assert bound is not None and length <= bound, (bound, length, page[:300])
    # the allowances are needed: readability's text is longer than the page's own on the first and the third
    from trafilatura.external import try_readability
    from trafilatura.utils import load_html

    for page, grown in [(EDGE_PAGES[0], "&amp;lt;body&amp;gt;"), (EDGE_PAGES[2], "VIDEO")]:
        own = len(" ".join(load_html(page).text_content().split()))
        bound, length = bound_and_length(page)
        assert own < length <= bound, (own, length, bound)
        assert grown in etree.tostring(try_readability(load_html(page)), method="text", encoding=str)
    # where an element sits inside a raw-text element, no bound (the parser never puts one there)
    tree = load_html("<html><body><p>x</p></body></html>")
    etree.SubElement(etree.SubElement(tree.find(".//body"), "noframes"), "b").text = "made by hand"
    assert patch.readability_text_bound(tree) is None


def extract_with_and_without_readability_skip(pages: list[str], options: dict) -> tuple[list, list, int]:
    """(texts with the skip, texts without it, how many times the patch's try_readability skipped readability)."""
    from trafilatura import core, external

    calls = {"asked": 0, "ran": 0}
    patch.install()
    original = patch._readability_originals["try_readability"]

    def counted(name, function):
        def call(tree):
            calls[name] += 1
            return function(tree)
        return call

    try:
        external.try_readability = counted("asked", patch._try_readability)
        patch._readability_originals["try_readability"] = counted("ran", original)
        with_skip = [trafilatura_extract(page, options) for page in pages]
        patch._readability_originals["try_readability"] = external.try_readability = original
        patch._swap_readability(install=False)
        assert external.try_readability is original and core.compare_extraction is not patch._compare_extraction
        without = [trafilatura_extract(page, options) for page in pages]
    finally:
        patch.uninstall()
    return with_skip, without, calls["asked"] - calls["ran"]


@pytest.mark.parametrize("preset", ["precision", "balanced", "recall"])
def test_skipping_readability_keeps_every_text(preset):
    """The recipes' presets (fineweb: precision, refinedweb: balanced) on the sample pages and, where present, the
    Common Crawl samples; recall on the sample pages."""
    options = ExtractionConfig(favor_precision=preset == "precision").trafilatura_options()
    if preset == "recall":  # no mdr recipe uses it; trafilatura.extract takes it beside mdr's options
        options["favor_recall"] = True
    pages = [*EDGE_PAGES, *sample_pages()]
    warcs = sorted(SHARED_WARCS.glob("*.warc.gz")) if SHARED_WARCS.is_dir() and preset != "recall" else []
    pages += [doc.text for doc in WarcRecordReader([str(p) for p in warcs]).run() if not doc.metadata.get("is_wet")]
    with_skip, without, skipped = extract_with_and_without_readability_skip(pages, options)
    assert with_skip == without
    assert sum(bool(text) for text in without) > len(pages) // 3
    if preset == "recall":
        assert skipped == 0  # recall mode has rules of its own: readability always runs
    else:
        assert skipped > len(pages) // 4, skipped


def test_readability_runs_where_its_text_could_win():
    """Its text is chosen on a page whose own extraction is far shorter; a page whose own extraction is the whole text
    skips it; a structurally deficient own extraction (more tables than paragraphs) keeps it running."""
    from trafilatura.settings import Extractor

    options = Extractor(precision=True)
    from lxml.html import fromstring

    tree = fromstring("<html><body><p>" + "word " * 200 + "</p></body></html>")  # 999 characters trimmed
    body = etree.fromstring("<body><p>" + "word " * 200 + "</p></body>")
    assert not patch.readability_may_win(tree, body, 999, options)
    assert patch.readability_may_win(tree, body, 400, options)  # 999 > 2 x 400: readability's could be twice as long
    assert patch.readability_may_win(tree, body, 0, options)
    deficient = etree.fromstring("<body><table><tr><td>x</td></tr></table></body>")
    assert patch.readability_may_win(tree, deficient, 600, options)  # 999 > 2 x MIN_EXTRACTED_SIZE (250)
    assert not patch.readability_may_win(tree, deficient, 600, Extractor(precision=True, config=_small_config()))
    assert patch.readability_may_win(tree, body, 999, Extractor(recall=True))


def _small_config():
    from trafilatura.settings import use_config

    config = use_config()
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "600")
    return config


def test_threads_keep_their_own_comparison():
    """A page's own extraction is looked up in the thread that extracts it: pages extracted in threads at once get
    the texts they get one by one."""
    from concurrent.futures import ThreadPoolExecutor

    options = ExtractionConfig(favor_precision=True).trafilatura_options()
    pages = [*EDGE_PAGES, *sample_pages()]
    patch.install()
    try:
        alone = [trafilatura_extract(page, options) for page in pages]
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda page: trafilatura_extract(page, options), pages * 3))
    finally:
        patch.uninstall()
    assert together == alone * 3
