"""mdr's strict warcio readers load with the warcio series they were tested with, and refuse any other loudly."""

import importlib.util
from importlib import metadata

import pytest

from mdr.patches import UntestedVersionError


def _import_afresh():
    """Runs mdr/patches/warcio.py again, as a first import does (the imported module stays as it is)."""
    spec = importlib.util.find_spec("mdr.patches.warcio")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_installed_warcio_is_a_tested_one():
    assert _import_afresh().StrictArchiveIterator is not None


@pytest.mark.parametrize("untested", ["1.9.0", "1.7.4", "2.0.0"])
def test_an_untested_warcio_fails_loudly_naming_both_versions(monkeypatch, untested):
    installed = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: untested if name == "warcio" else installed(name))
    with pytest.raises(UntestedVersionError, match=rf"tested with warcio 1\.8\.x; {untested} is installed"):
        _import_afresh()
