"""trafilatura's boilerplate XPaths replaced by compiled Python predicates (mdr.filters.fast_xpath): the same nodes,
so the same text, in about 0.6x the time (benchmarks/RESULTS.md); its parser's element classes chosen in C; its
scan for characters XML cannot hold skipped on a page already found free of them; and its readability comparison
skipped on pages where readability's text provably could not be chosen (`readability_may_win`).

trafilatura keeps its XPaths in module-level lists of `trafilatura.xpaths`, which its extractor modules import by
name; `install()` replaces their items in place, so every module sees the compiled ones (and the one XPath held
alone that runs per page, BASIC_CLEAN_XPATH, in the modules that name it). The lists, their names and
what trafilatura does with them are internals, checked against trafilatura 2.3 (tests/filters/test_fast_xpath.py
compares every replaced path with lxml, and trafilatura's output with and without the patch): hence the version
check when the patch is applied.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading

from lxml import etree
from lxml.html import HtmlElement

from mdr.filters.fast_xpath import CompiledXPath, compiled
from mdr.patches import require_tested


_originals: dict[int, list] = {}  # id(list) -> the list's lxml XPaths, while installed

# Characters XML 1.0 cannot hold, as trafilatura.utils.INVALID_XML_CHARS has them (2.3): C0 controls but tab, line
# feed and carriage return, and U+FFFE, U+FFFF. In UTF-8 a byte below 0x20 is always that ASCII character itself.
_C0_BYTES = bytes(code for code in range(0x20) if code not in (0x09, 0x0A, 0x0D))
_NONCHARACTERS_UTF8 = ("\ufffe".encode(), "\uffff".encode())
_NONCHARACTER_PREFIX = "\ufffe".encode()[:2]


def xml_chars_valid(html: str, utf8: bytes | None = None) -> bool:
    """Whether `html` (or its UTF-8 encoding `utf8`, when the caller has it) holds none of INVALID_XML_CHARS; when
    it does not, `vouch_if_xml_clean` vouches for it."""
    data = utf8 if utf8 is not None else html.encode("utf-8", "surrogatepass")
    if len(data.translate(None, _C0_BYTES)) != len(data):
        return False
    # one scan for the two noncharacters' shared first bytes, rare outside the U+FFxx forms
    return _NONCHARACTER_PREFIX not in data or not any(n in data for n in _NONCHARACTERS_UTF8)


class _CheckedXmlChars:
    """trafilatura.utils.INVALID_XML_CHARS while installed: `sub` returns the string as it is when it is the page
    `vouch_if_xml_clean` last vouched for (strings are immutable: the same object has the same characters, none of
    which the pattern matches, so re's `sub` would return it unchanged), else the pattern's own `sub`.
    `repair_faulty_html` runs it over every page that `load_html` parses: `re` tests its character class at every
    position of the HTML (~10% of extraction's instructions on 40 dev pages under callgrind), while the caller
    (mdr.filters.extraction.xml_safe_html) checks the page's UTF-8 bytes, which it encodes anyway, with
    bytes.translate (benchmarks/RESULTS.md, issue 15)."""

    def __init__(self, compiled: re.Pattern):
        self.compiled = compiled
        self.clean: str | None = None

    def sub(self, repl, string, count=0):
        if string is self.clean:
            return string
        return self.compiled.sub(repl, string, count)

    def __getattr__(self, name):  # search, pattern, flags, ...: the pattern's own
        return getattr(self.compiled, name)


_checked: _CheckedXmlChars | None = None


def vouch_if_xml_clean(html: str, utf8: bytes | None = None) -> None:
    """If xml_chars_valid says so, vouches that `html` holds none of INVALID_XML_CHARS, until another page is; no check
    at all while the patch is not installed."""
    if _checked is not None and xml_chars_valid(html, utf8):
        _checked.clean = html


# XPaths held alone, by name, in the modules that use them: trafilatura.settings.BASIC_CLEAN_XPATH, imported by
# trafilatura.baseline, whose basic_cleaning runs it for baseline() (mdr's precision_rescue) and justext_rescue. Its
# `re:test` calls back into Python per element under lxml: 8 ms a page on 200 dev pages, compiled 3.7 ms.
_SINGLE_XPATHS = (("trafilatura.settings", "BASIC_CLEAN_XPATH"), ("trafilatura.baseline", "BASIC_CLEAN_XPATH"))
_single_originals: dict[tuple[str, str], etree.XPath] = {}


def _swap_single_xpaths(install: bool) -> None:
    import importlib

    for module_name, name in _SINGLE_XPATHS:
        module = importlib.import_module(module_name)
        if install and (module_name, name) not in _single_originals:
            _single_originals[(module_name, name)] = getattr(module, name)
            setattr(module, name, compiled(getattr(module, name)))
        elif not install and (module_name, name) in _single_originals:
            setattr(module, name, _single_originals.pop((module_name, name)))


def _case_variants(name: str) -> list[str]:
    return ["".join(chars) for chars in itertools.product(*({char.lower(), char.upper()} for char in name))]


def _c_level_lookup() -> etree.ElementNamespaceClassLookup:
    """lxml.html's element classes, chosen in C: lxml.html.HtmlElementClassLookup answers in Python for every element
    proxy lxml creates (a call per element visited in every walk of every XPath; 3.96M calls over the 531 dev pages),
    with `{form, input, label, select, textarea}` by the lower-cased name, HtmlElement for every other element,
    HtmlComment, HtmlProcessingInstruction and HtmlEntity for the other nodes. The same answers from lxml's C lookups:
    the five names in every letter case, in no namespace (libxml2's HTML parser makes none), then the defaults."""
    from lxml import html

    lookup = etree.ElementNamespaceClassLookup(etree.ElementDefaultClassLookup(
        element=html.HtmlElement, comment=html.HtmlComment, pi=html.HtmlProcessingInstruction, entity=html.HtmlEntity))
    names = lookup.get_namespace(None)
    for name, element_class in html.HtmlElementClassLookup._default_element_classes.items():
        for variant in _case_variants(name):
            names[variant] = element_class
    return lookup


def _xpath_lists() -> list[list]:
    from trafilatura import xpaths

    return [value for value in vars(xpaths).values() if isinstance(value, list) and value
            and all(isinstance(item, (etree.XPath, CompiledXPath)) for item in value)]


# ---------------------------------------------------------------------------------------------------------------
# readability, run where its text could be chosen
#
# trafilatura's compare_extraction (trafilatura/external.py, 2.3) runs readability (`try_readability`) on every page
# outside fast mode, then `_prefer_readability` keeps its own extraction unless readability's text is long enough:
# outside recall mode, readability is chosen only when the own text is empty, or readability's is over twice as
# long, or it is over 2 x MIN_EXTRACTED_SIZE and the own extraction is structurally deficient (no paragraph text, or
# more tables than paragraphs); never when the own text is over twice as long. So a page whose readability text
# cannot exceed a bound U, where U <= 2 x the own text's length (and U <= 2 x MIN_EXTRACTED_SIZE where the own
# extraction is deficient), keeps its own extraction whatever readability returns: an empty element (what
# try_readability returns when readability fails) gives that same decision, and nothing else reads readability's
# output once it is not chosen. On the dev pages, the Common Crawl samples and both extraction sets, precision mode
# (the fineweb recipe) skips readability on 56-86% of the pages, 43-79% of its time, balanced mode (refinedweb) on
# 34-48% of its calls, 26-64% of its time; the bound costs 6-9% of readability's time (benchmarks/RESULTS.md, issue 15).
#
# The bound. readability's Document.summary (trafilatura/readability_lxml.py) first drops script, style and
# fencedframe elements (done here the same way, so readability then finds none), then only drops elements (keeping
# their tails), moves whole elements in document order (get_article), moves a div's loose text and tails into new
# <p> elements in place, and sets a video iframe's text to "VIDEO". Its text is therefore the tree's text with
# characters removed, in order, plus at most 5 characters an iframe; trimmed (whitespace runs to one space), a
# subsequence of a text is never longer than the text trimmed (each space it keeps is a whitespace run of the text
# between two of its characters). Then try_readability serialises the result as XML and parses it again with
# trafilatura's HTML parser: escaped text decodes back to the same characters, except inside the parser's raw-text
# elements (iframe, xmp, ...: `_raw_text_tags`), where `&amp;`, `&lt;`, ... stay as written: at most 5 more
# characters for each character the serialiser escapes there. An element there would come back as text: such an
# element (the parser never puts one there) makes the page take readability's own path.

class _Comparisons(threading.local):
    """(own extraction, its text's length, options) of the compare_extraction calls running in this thread."""

    def __init__(self):
        self.calls: list[tuple] = []


_comparing = _Comparisons()
_readability_originals: dict[str, object] = {}  # trafilatura's own compare_extraction and try_readability, installed
_ESCAPED = re.compile(r"[&<>\x00-\x08\x0b-\x1f]")  # what the XML serialiser writes as an entity or reference in text
_MAX_ESCAPE = len("&#x1F;") - 1  # the most characters an escaped character adds
_VIDEO = len("VIDEO")  # Document.sanitize's text for a video iframe


@functools.cache
def _raw_text_tags() -> tuple[str, ...]:
    """The elements whose content trafilatura's HTML parser keeps as text (markup and, for some, entities as
    written), of HTML's raw-text and escapable raw-text elements and noscript (libxml2 2.14 parses noscript's
    content as markup; an older one may not), probed from the parser itself."""
    from lxml.html import fromstring
    from trafilatura.utils import HTML_PARSER

    raw = []
    for tag in ("iframe", "noembed", "noframes", "noscript", "plaintext", "textarea", "title", "xmp"):
        root = fromstring(f"<html><body><p>x</p><{tag}><b>a</b>&amp;</{tag}></body></html>", parser=HTML_PARSER)
        element = next(root.iter(tag), None)
        if element is None or (not len(element) and "<b>" in (element.text or "")):  # None: unknown, counted as raw
            raw.append(tag)
    return tuple(raw)


def readability_text_bound(tree: HtmlElement) -> int | None:
    """An upper bound on the trimmed length of try_readability(tree)'s text (see above), after dropping the tree's
    script, style and fencedframe elements as readability does first; None where an element sits inside a raw-text
    element."""
    for element in list(tree.iter("script", "style", "fencedframe")):
        element.drop_tree()
    allowance = 0
    for element in tree.iter(*_raw_text_tags()):
        if len(element):
            return None
        allowance += _MAX_ESCAPE * len(_ESCAPED.findall(element.text or ""))
        allowance += _VIDEO if element.tag == "iframe" else 0
    return len(" ".join(tree.text_content().split())) + allowance


def readability_may_win(tree: HtmlElement, body, len_text: int, options) -> bool:
    """Whether compare_extraction could choose readability's text over the own extraction `body` (text length
    `len_text`) on this page, by `readability_text_bound`; True when that cannot be excluded."""
    if options.focus == "recall" or len_text == 0:  # recall mode has more rules; readability's text beats none
        return True
    bound = readability_text_bound(tree)
    if bound is None or bound > 2 * len_text:
        return True
    if bound <= 2 * options.min_extracted_size:
        return False
    # _prefer_readability's test of a structurally deficient own extraction
    return not body.xpath(".//p//text()") or len(body.findall(".//table")) > len(body.findall(".//p"))


def _compare_extraction(cleaned_tree, raw_tree, body, text, options):
    _comparing.calls.append((body, len(text), options))
    try:
        return _readability_originals["compare_extraction"](cleaned_tree, raw_tree, body, text, options)
    finally:
        _comparing.calls.pop()


def _try_readability(tree: HtmlElement) -> HtmlElement:
    if _comparing.calls:
        try:
            if not readability_may_win(tree, *_comparing.calls[-1]):
                return HtmlElement()
        except Exception:  # readability meets the same tree and fails the same way inside try_readability's guard
            pass
    return _readability_originals["try_readability"](tree)


def _swap_readability(install: bool) -> None:
    from trafilatura import core, external

    if install and not _readability_originals:
        _readability_originals.update(compare_extraction=core.compare_extraction,
                                      try_readability=external.try_readability)
        core.compare_extraction, external.try_readability = _compare_extraction, _try_readability
    elif not install and _readability_originals:
        core.compare_extraction = _readability_originals.pop("compare_extraction")
        external.try_readability = _readability_originals.pop("try_readability")


def install() -> None:
    """Replace the XPaths of trafilatura.xpaths' lists by compiled ones, in place (other modules share the lists), and
    BASIC_CLEAN_XPATH where it is named; give trafilatura's parser the C-level class lookup; put the checked
    INVALID_XML_CHARS in place; run readability only where its text could be chosen."""
    require_tested("trafilatura", "the XPath lists of trafilatura.xpaths, replaced in place; INVALID_XML_CHARS; "
                                  "compare_extraction and try_readability")
    global _checked
    from trafilatura import utils

    for paths in _xpath_lists():
        if id(paths) not in _originals:
            _originals[id(paths)] = list(paths)
            paths[:] = [compiled(item) for item in paths]
    _swap_single_xpaths(install=True)
    # trafilatura parses every page with this parser, and copies of its trees keep it: -5.4% of extraction's
    # instructions on 40 dev pages under callgrind, the same texts (benchmarks/RESULTS.md, issue 15)
    utils.HTML_PARSER.set_element_class_lookup(_c_level_lookup())
    if _checked is None:
        _checked = utils.INVALID_XML_CHARS = _CheckedXmlChars(utils.INVALID_XML_CHARS)
    _swap_readability(install=True)


def uninstall() -> None:
    """Give trafilatura its lxml XPaths, its INVALID_XML_CHARS and its readability comparison back."""
    global _checked
    from trafilatura import utils

    for paths in _xpath_lists():
        if id(paths) in _originals:
            paths[:] = _originals.pop(id(paths))
    _swap_single_xpaths(install=False)
    from lxml import html

    utils.HTML_PARSER.set_element_class_lookup(html.HtmlElementClassLookup())  # as lxml.html.HTMLParser() sets it
    if _checked is not None:
        utils.INVALID_XML_CHARS, _checked = _checked.compiled, None
    _swap_readability(install=False)


def installed() -> bool:
    return bool(_originals)
