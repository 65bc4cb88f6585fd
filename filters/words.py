"""English word split equal to datatrove's `split_into_words` (spaCy's blank English tokenizer), made cheaper.

datatrove runs the whole blank pipeline (tokenizer and sentencizer) inside a spaCy memory zone, which throws away
spaCy's tokenizer cache after every document. Here spaCy's tokenizer alone runs on the whole text, as in datatrove,
so the words are the same by construction, but its cache of whitespace-separated chunks lives across documents
(chunks repeat: Zipf). Outside a memory zone spaCy keeps every new string in its vocabulary, so the tokenizer is
made anew once that holds `MAX_VOCAB_STRINGS`. (A cache of words per chunk outside spaCy is not equal: spaCy's
special cases such as `''` can match across a single space, so a chunk's words depend on its neighbours.)
"""

from __future__ import annotations

from functools import lru_cache

from datatrove.utils.text import split_into_words as datatrove_split_into_words
from datatrove.utils.typeshelper import Languages

# The module that imports spaCy without torch (its docstring says why); stages name it in `preload_modules`.
SPACY_MODULE = "mdr.filters.spacy_without_torch"

# Bounds the memory of spaCy's vocabulary and cache (~100 bytes a string): the tokenizer is remade past this.
MAX_VOCAB_STRINGS = 500_000

_tokenizer = None


def _english_tokenizer():
    global _tokenizer
    if _tokenizer is None or len(_tokenizer.vocab.strings) > MAX_VOCAB_STRINGS:
        from mdr.filters.spacy_without_torch import spacy

        _tokenizer = spacy.blank(Languages.english).tokenizer  # what datatrove's SpaCyTokenizer("en") builds
    return _tokenizer


@lru_cache(5)  # the repetition and quality stages ask for the same document's words in turn
def split_into_words(text: str, language: str = Languages.english) -> list[str]:
    """The words datatrove's `split_into_words(text, language)` gives; faster for English."""
    if language != Languages.english:
        return datatrove_split_into_words(text, language)
    tokenizer = _english_tokenizer()
    return [word for word in (token.text.strip() for token in tokenizer(text)) if word]
