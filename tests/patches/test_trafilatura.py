"""mdr/patches/trafilatura.py swaps trafilatura.xpaths' lists for fast_xpath's compiled paths in place, and back, only
on the trafilatura series it was tested with; and its INVALID_XML_CHARS for one that skips a page vouched for."""

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

baseline = importlib.import_module("trafilatura.baseline")
SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"  # the package's `baseline` attribute is the function


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
