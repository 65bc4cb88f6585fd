"""jusText's stop-list set found by the stop-list object itself instead of by hashing its words on every page.

`justext.core.classify_paragraphs` (jusText 3.0) begins with `define_stoplist(stoplist)`, an `lru_cache` over the
lower-cased words' frozenset: a cache hit still hashes the stop-list, a tuple, element by element. trafilatura's
`try_justext` (its fallback for short or unclean extractions) passes JT_STOPLIST, the words of all of jusText's
languages: 154,484 words, 5-10 ms a call on this project's 2-core box, 31 calls and 0.28 s of the Common Crawl
samples' extraction, 62 calls and 0.42 s of the dev pages' (benchmarks/RESULTS.md, issue 15). `install()` puts a
define_stoplist in front that remembers the set of each immutable stop-list (a tuple or a frozenset, as trafilatura
passes) by the object: the same object always holds the same words, so its set is the one jusText's cache returns.
Anything else goes to jusText's own function, as before.
"""

from __future__ import annotations

from mdr.patches import require_tested

_original = None
# id(stop-list) -> (the stop-list, kept alive so that its id stays its own; its set)
_made: dict[int, tuple[object, frozenset]] = {}


def _define_stoplist(stoplist):
    made = _made.get(id(stoplist))
    if made is not None and made[0] is stoplist:
        return made[1]
    words = _original(stoplist)
    if type(stoplist) in (tuple, frozenset):
        _made[id(stoplist)] = (stoplist, words)
    return words


def install() -> None:
    """Put the remembering define_stoplist in justext.core, where classify_paragraphs looks it up."""
    global _original
    require_tested("justext", "justext.core.define_stoplist")
    from justext import core

    if _original is None:
        _original, core.define_stoplist = core.define_stoplist, _define_stoplist


def uninstall() -> None:
    global _original
    from justext import core

    if _original is not None:
        core.define_stoplist, _original = _original, None
        _made.clear()


def installed() -> bool:
    return _original is not None
