"""mdr/patches/justext.py finds a stop-list's set by the stop-list object, with jusText's words, and leaves jusText's
classification of trafilatura's pages as it was."""

import pytest
from justext import core

from mdr.patches import UntestedVersionError
from mdr.patches import justext as patch


@pytest.fixture(autouse=True)
def unpatched():
    """Each test starts from jusText's own function: an extraction stage built earlier in this process installs the
    patch and leaves it, as in a task process."""
    patch.uninstall()
    yield
    patch.uninstall()


def test_install_and_uninstall_swap_define_stoplist():
    original = core.define_stoplist
    patch.install()
    try:
        assert patch.installed() and core.define_stoplist is patch._define_stoplist
        patch.install()  # twice is harmless
        assert patch._original is original
    finally:
        patch.uninstall()
    assert not patch.installed() and core.define_stoplist is original


def test_an_untested_justext_is_refused_before_anything_is_patched(monkeypatch):
    original = core.define_stoplist
    monkeypatch.setattr("importlib.metadata.version", lambda distribution: "3.1.0")
    with pytest.raises(UntestedVersionError, match=r"justext 3\.0\.x; 3\.1\.0 is installed"):
        patch.install()
    assert not patch.installed() and core.define_stoplist is original


def test_the_set_is_made_once_per_immutable_stop_list_with_jusTexts_words():
    original = core.define_stoplist
    words = ("The", "and", "Über", "and")
    patch.install()
    try:
        first = core.define_stoplist(words)
        assert first == original(words) == frozenset({"the", "and", "über"})
        assert core.define_stoplist(words) is first  # made once
        other = ("one", "Two")  # another object: its own set
        assert core.define_stoplist(other) == frozenset({"one", "two"})
        assert core.define_stoplist(frozenset(words)) == first
        with pytest.raises(TypeError, match="unhashable"):  # jusText's lru_cache takes no list; nor does the patch
            core.define_stoplist(["a", "B"])
    finally:
        patch.uninstall()
    assert patch._made == {}


def test_trafilaturas_justext_fallback_classifies_as_before():
    """trafilatura's try_justext on a page of short and long paragraphs, with all languages' stop-list (JT_STOPLIST)
    and with one language's: the same text with and without the patch."""
    from lxml import etree
    from trafilatura.external import try_justext
    from trafilatura.utils import load_html

    page = ("<html><body><div><p>Home | About | Contact</p><p>" + "The river is wide and the boats are slow in the "
            "summer, when the water is low and the banks are dry. " * 4 + "</p><p>Copyright 2026</p>"
            "<p>Der Fluss ist breit und die Boote sind langsam im Sommer, wenn das Wasser niedrig ist. " * 3 +
            "</p></div></body></html>")

    def texts():
        return [etree.tostring(try_justext(load_html(page), None, language), method="text", encoding=str)
                for language in (None, "de", None)]

    before = texts()
    patch.install()
    try:
        after = texts()
    finally:
        patch.uninstall()
    assert after == before and "The river is wide" in before[0]
