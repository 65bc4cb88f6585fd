"""mdr/patches/trafilatura.py swaps trafilatura.xpaths' lists for fast_xpath's compiled paths in place, and back, only
on the trafilatura series it was tested with."""

import pytest
from lxml import etree
from trafilatura import xpaths

from mdr.filters.fast_xpath import CompiledXPath
from mdr.patches import UntestedVersionError
from mdr.patches import trafilatura as patch


def test_install_and_uninstall_swap_trafilatura_paths_in_place():
    overall = xpaths.OVERALL_DISCARD_XPATH  # main_extractor and external hold this very list
    patch.install()
    try:
        assert patch.installed() and all(isinstance(p, CompiledXPath) for p in overall)
        assert any(isinstance(p, etree.XPath) for p in xpaths.AUTHOR_XPATHS)  # `rel='me'`: left to lxml
        patch.install()  # twice is harmless
    finally:
        patch.uninstall()
    assert not patch.installed() and all(isinstance(p, etree.XPath) for p in overall)


def test_an_untested_trafilatura_is_refused_before_anything_is_patched(monkeypatch):
    monkeypatch.setattr("importlib.metadata.version", lambda distribution: "2.4.0")
    with pytest.raises(UntestedVersionError, match=r"trafilatura 2\.3\.x; 2\.4\.0 is installed"):
        patch.install()
    assert not patch.installed() and all(isinstance(p, etree.XPath) for p in xpaths.OVERALL_DISCARD_XPATH)
