"""mdr.filters.fast_xpath selects exactly what lxml selects, so trafilatura's output does not change."""

import functools
import itertools
from pathlib import Path

import pytest
import trafilatura
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree, html
from trafilatura import settings as trafilatura_settings
from trafilatura import xpaths
from trafilatura.utils import load_html

from mdr.filters.extraction import ExtractionConfig, ExtractionStage
from mdr.filters.fast_xpath import compile_xpath
from mdr.patches import trafilatura as patch
from mdr.pipeline.reader import WarcRecordReader
from tests.filters.texts import shared_file

DATA_SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
# The paths that trafilatura runs on every page (metadata paths only run with with_metadata=True).
HOT_LISTS = ("BODY_XPATH", "COMMENTS_XPATH", "REMOVE_COMMENTS_XPATH", "REMOVE_COMMENTS_AND_LISTS_XPATH",
             "RAW_TREE_PRUNE_XPATH", "OVERALL_DISCARD_XPATH", "TEASER_DISCARD_XPATH", "PRECISION_DISCARD_XPATH",
             "DISCARD_IMAGE_ELEMENTS", "COMMENTS_DISCARD_XPATH")


def trafilatura_paths() -> list[tuple[str, etree.XPath]]:
    """Every lxml XPath of trafilatura.xpaths' lists, labelled, whether or not fast_xpath is installed."""
    patch.uninstall()
    found = [(f"{name}[{i}]", path) for name, value in vars(xpaths).items() if isinstance(value, list)
             for i, path in enumerate(value) if isinstance(path, etree.XPath)]
    found.append(("BASIC_CLEAN_XPATH", trafilatura_settings.BASIC_CLEAN_XPATH))  # held alone (mdr.patches.trafilatura)
    assert found and isinstance(trafilatura_settings.BASIC_CLEAN_XPATH, etree.XPath)
    return found


PATHS = trafilatura_paths()
COMPILED = [(label, path, evaluate) for label, path in PATHS if (evaluate := compile_xpath(path.path))]


def same_nodes(tree, label: str, path: etree.XPath, evaluate) -> None:
    expected, got = path(tree), list(evaluate(tree))
    assert len(got) == len(expected) and all(a is b for a, b in zip(got, expected)), (
        f"{label}: lxml {[(e.tag, dict(e.attrib)) for e in expected][:5]} vs ours {[(e.tag, dict(e.attrib)) for e in got][:5]}")


@functools.cache  # read once for the tests that use them; nobody mutates the lists
def sample_pages() -> list[str]:
    paths = sorted(str(p) for p in DATA_SAMPLES.glob("*.warc.gz"))
    pages = [doc.text for doc in WarcRecordReader(paths).run()]
    assert len(pages) > 20
    return pages


@functools.cache
def shared_pages(count: int) -> list[str]:
    warc = shared_file("warc/pages/dev-pages-531.warc.gz")
    return [doc.text for doc in itertools.islice(WarcRecordReader([str(warc)]).run(), count)]


def test_every_path_trafilatura_runs_on_each_page_is_compiled():
    compiled_labels = {label for label, _, _ in COMPILED}
    hot = [label for label, _ in PATHS if label.split("[")[0] in HOT_LISTS] + ["BASIC_CLEAN_XPATH"]
    assert len(hot) >= 20
    assert set(hot) <= compiled_labels, sorted(set(hot) - compiled_labels)


@pytest.mark.parametrize("source", [
    "//div[@class='tags']//a[@href]",  # absolute path, then a second step
    ".//*[rel='me']",  # a child element compared to a string
    ".//*[re:test(@class, 'x', 'm')]",  # a flag lxml's EXSLT does not take
    ".//*[@class = @id]",
    ".//*[position() = 2]",
    ".//*[local-name()='annotation']",
    ".//div[",
])
def test_paths_outside_the_subset_stay_with_lxml(source):
    assert compile_xpath(source) is None


EDGE_PAGE = """<html><body>
<div id="cookie-a" class="x">first id then class</div><div class="x" id="cookie-b">first class then id</div>
<div class="Main text"><p class="a">one</p><!-- a comment --><p class="a">two</p><p class="b">three</p></div>
<section><p class="a">four</p><div><p class="a">five</p></div></section>
<main id="Content-Main"><h1>title</h1><span class="FULLTEXT" style="display: none">six</span></main>
<div role="Navigation" class="">seven<?pi x?></div><div class="  link  bottom">eight</div>
</body></html>"""


@pytest.mark.parametrize("source", [
    ".//*[re:test(@id|@class, '^x')]",
    ".//*[re:test(@class|@id, '^cookie')]",
    ".//*[starts-with(@id|@class, 'cookie')]",
    ".//*[self::p or self::span][@class='a'][1]",
    ".//*[self::p][@class='a'][2]",
    "(.//p)[2]",
    "(.//p[@class='a'])[3]",
    "(.//div[@id])[1]|(.//main)[1]",
    "(.//main)[1]|(.//div[@id])[1]",
    ".//span|.//h1|.//p",
    ".//*[contains(translate(@id, 'CM', 'cm'), 'content-main')]",
    ".//*[contains(translate(@role, 'N', 'n'), 'nav')]",
    ".//*[contains(@class, '')]",
    ".//*[starts-with(@class, '')]",
    ".//*[re:test(@class, 'fulltext', 'i')]",
    ".//*[re:test(@class, 'x?')]",
    ".//*[not(.//h1)]",
    ".//*[self::div or self::main][not(.//h1) or re:test(@id, 'Main')]",
    ".//*[@class]",
    ".//*[@class and not(@id)]",
    ".//*[contains(@style, 'display: none') or @aria-hidden='true']",
    ".//*[re:test(@id|@class, '(^|\\s)bottom|bottom(\\s|$)') or re:test(@id|@class, '(^|\\s)link(\\s|$)')]",
    ".//*",
    ".//div",
])
def test_edge_cases_match_lxml(source):
    evaluate = compile_xpath(source)
    assert evaluate is not None, source
    tree = html.fromstring(EDGE_PAGE)
    path = etree.XPath(source, namespaces={"re": "http://exslt.org/regular-expressions"})
    assert path(tree), f"{source} selects nothing on the edge page: not a useful case"
    same_nodes(tree, source, path, evaluate)
    for context in tree.iter("div", "section", "main"):  # relative to inner elements too
        same_nodes(context, source, path, evaluate)


def test_remembered_search_answers_as_the_pattern_and_stays_bounded():
    import re

    from mdr.filters.fast_xpath import _SEARCH_MEMORY, _remembered_search

    pattern = re.compile("^shar|social|bread-?crumb| ad |(?:^| )ad-")
    search = _remembered_search(pattern)
    texts = [f"x{i} ad-{i % 3}" if i % 7 == 0 else f"block-{i}" for i in range(3 * _SEARCH_MEMORY)]
    texts += ["share", "a social b", "bread-crumb", "x ad y", "", "ad-top"] * 3 + texts[:100]  # repeats, evicted ones
    assert [search(text) for text in texts] == [pattern.search(text) is not None for text in texts]
    assert search.cache_info().currsize <= _SEARCH_MEMORY


# Random pages from the vocabulary trafilatura's paths look for, in both cases and glued together.
WORDS = ["footer", "Footer", "nav", "menu", "comment", "Comments", "comment-list", "share-", "social", "hidden",
         "hide", "ad-", " ad ", "main", "article-body", "articleBody", "post-content", "story", "cookie", "teaser",
         "caption", "link", "bottom", "widget", "reply-", "akismet", "display:none", "primary", "content-main",
         "entry", "post", "text", "x", ""]
TAGS = ["div", "p", "span", "section", "article", "main", "list", "item", "h1", "ol", "ul", "header", "aside",
        "details", "cite", "quote", "a"]
ATTRIBUTES = ["id", "class", "role", "style", "itemprop", "aria-hidden", "data-component"]
attribute_values = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)


@st.composite
def random_page(draw, depth=0):
    tag = draw(st.sampled_from(TAGS))
    names = draw(st.lists(st.sampled_from(ATTRIBUTES), max_size=3, unique=True))
    attributes = "".join(f' {name}="{draw(attribute_values)}"' for name in names)
    children = draw(st.lists(random_page(depth + 1), max_size=0 if depth >= 3 else 4))
    return f"<{tag}{attributes}>t{''.join(children)}</{tag}>"


@settings(max_examples=150, deadline=None)
@given(st.lists(random_page(), min_size=1, max_size=4))
def test_random_pages_match_lxml(bodies):
    tree = html.fromstring(f"<html><body>{''.join(bodies)}</body></html>")
    for context in [tree, *itertools.islice(tree.iter("div", "section"), 3)]:
        for label, path, evaluate in COMPILED:
            same_nodes(context, label, path, evaluate)


def test_real_sample_pages_match_lxml():
    for page in sample_pages():
        tree = load_html(page)
        for label, path, evaluate in COMPILED:
            same_nodes(tree, label, path, evaluate)


def test_real_common_crawl_pages_match_lxml():
    for page in shared_pages(150):
        tree = load_html(page)
        if tree is None:
            continue
        for label, path, evaluate in COMPILED:
            same_nodes(tree, label, path, evaluate)


def extract_both_ways(pages: list[str], favor_precision: bool) -> tuple[list, list]:
    options = dict(favor_precision=favor_precision, include_comments=False, deduplicate=False)
    patch.uninstall()
    with_lxml = [trafilatura.extract(page, **options) for page in pages]
    patch.install()
    try:
        compiled_ = [trafilatura.extract(page, **options) for page in pages]
    finally:
        patch.uninstall()
    return with_lxml, compiled_


@pytest.mark.parametrize("favor_precision", [False, True])
def test_trafilatura_output_is_unchanged_on_sample_pages(favor_precision):
    with_lxml, compiled_ = extract_both_ways(sample_pages(), favor_precision)
    assert sum(bool(text) for text in with_lxml) > 10
    assert compiled_ == with_lxml


@pytest.mark.parametrize("favor_precision", [False, True])
def test_trafilatura_output_is_unchanged_on_real_pages(favor_precision):
    with_lxml, compiled_ = extract_both_ways(shared_pages(60), favor_precision)
    assert sum(bool(text) for text in with_lxml) > 40
    assert compiled_ == with_lxml


@pytest.mark.parametrize("compiled_xpath", [True, False])
def test_the_stage_installs_what_its_config_says(compiled_xpath):
    from mdr.patches import justext as justext_patch

    try:
        ExtractionStage(ExtractionConfig(compiled_xpath=compiled_xpath))._extract_fn()
        assert patch.installed() is compiled_xpath and justext_patch.installed() is compiled_xpath
        assert bool(patch._readability_originals) is compiled_xpath
    finally:
        patch.uninstall()
        justext_patch.uninstall()
