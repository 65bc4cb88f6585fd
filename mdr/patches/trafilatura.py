"""trafilatura's boilerplate XPaths replaced by compiled Python predicates (mdr.filters.fast_xpath): the same nodes,
so the same text, in about 0.6x the time (benchmarks/RESULTS.md).

trafilatura keeps its XPaths in module-level lists of `trafilatura.xpaths`, which its extractor modules import by
name; `install()` replaces their items in place, so every module sees the compiled ones. The lists, their names and
what trafilatura does with them are internals, checked against trafilatura 2.3 (tests/filters/test_fast_xpath.py
compares every replaced path with lxml, and trafilatura's output with and without the patch): hence the version
check when the patch is applied.
"""

from __future__ import annotations

from lxml import etree

from mdr.filters.fast_xpath import CompiledXPath, compiled
from mdr.patches import require_tested


_originals: dict[int, list] = {}  # id(list) -> the list's lxml XPaths, while installed


def _xpath_lists() -> list[list]:
    from trafilatura import xpaths

    return [value for value in vars(xpaths).values() if isinstance(value, list) and value
            and all(isinstance(item, (etree.XPath, CompiledXPath)) for item in value)]


def install() -> None:
    """Replace the XPaths of trafilatura.xpaths' lists by compiled ones, in place (other modules share the lists)."""
    require_tested("trafilatura", "the XPath lists of trafilatura.xpaths, replaced in place")
    for paths in _xpath_lists():
        if id(paths) not in _originals:
            _originals[id(paths)] = list(paths)
            paths[:] = [compiled(item) for item in paths]


def uninstall() -> None:
    """Give trafilatura its lxml XPaths back."""
    for paths in _xpath_lists():
        if id(paths) in _originals:
            paths[:] = _originals.pop(id(paths))


def installed() -> bool:
    return bool(_originals)
