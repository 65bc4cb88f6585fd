"""English word split equal to datatrove's `split_into_words` (spaCy's blank English tokenizer), made cheaper.

datatrove runs the whole blank pipeline (tokenizer and sentencizer) inside a spaCy memory zone, which throws away
spaCy's tokenizer cache after every document. Even outside one, spaCy's cache helps little: `Tokenizer.
_tokenize_affixes` (spacy/tokenizer.pyx, 3.8) stops caching chunks for the rest of a document once one special case
(`'s`, `n't`, `e.g.`, ...) has matched in it (`has_special`, spaCy issue #1250), i.e. after the first few words of
most documents. Here the words of each whitespace-separated chunk are kept in a dictionary across documents (chunks
repeat: 80-88% of the chunks of the dev pages and of the Common Crawl samples were seen before), and the text's words
are its chunks' words in order. That equals spaCy's tokenization of the whole text except where a special case
matches across a single space: spaCy's last step (`_apply_special_cases`) runs a PhraseMatcher of the special cases'
token sequences over the whole document, so `''` can pair a chunk's last `'` with the next chunk's first `'`
(`"(RDM)]].'' ''For"` gives `'' ' ' For`, the chunks alone `'' '' For`). Such a match needs two adjacent tokens
across the space to be consecutive tokens of one special case (tokens as spaCy has them before that step, so the
first ending the left chunk, the second starting the right one); `_ChunkWords` checks every chunk boundary against
those pairs and tokenizes the stretch of text over such boundaries with spaCy as one (any whitespace other than one
space puts a whitespace token between the chunks, which no special case contains, so it only makes the check safer). Unseen chunks are tokenized together, joined
by newlines, for the same reason. The words are therefore spaCy's by construction; tests check them equal on real
documents and on the cross-space case.
"""

from __future__ import annotations

import re
from functools import lru_cache

from datatrove.utils.text import split_into_sentences as datatrove_split_into_sentences
from datatrove.utils.text import split_into_words as datatrove_split_into_words
from datatrove.utils.typeshelper import Languages

# The module that imports spaCy without torch (its docstring says why); stages name it in `preload_modules`.
SPACY_MODULE = "mdr.filters.spacy_without_torch"

# Bounds the memory of spaCy's vocabulary and cache (~100 bytes a string): the tokenizer is remade past this.
MAX_VOCAB_STRINGS = 500_000
# Bounds the chunk dictionary (~200 bytes an entry): it is emptied past this.
MAX_CHUNKS = 1_000_000

_tokenizer = None
_chunk_words = None
_sentence_rules = None  # (the sentencizer's punctuation characters, spaCy's is_punct), see count_sentences
_CHUNK = re.compile(r"\S+")  # re's \s is str.isspace's whitespace, as str.split's


def _english_tokenizer():
    global _tokenizer, _chunk_words, _sentence_rules
    if _tokenizer is None or len(_tokenizer.vocab.strings) > MAX_VOCAB_STRINGS:
        from mdr.filters.spacy_without_torch import spacy
        from spacy.attrs import IS_PUNCT
        from spacy.pipeline import Sentencizer

        _tokenizer = spacy.blank(Languages.english).tokenizer  # what datatrove's SpaCyTokenizer("en") builds
        # Sentencizer(punct_chars=None), as datatrove's add_pipe("sentencizer") makes it, uses these characters
        _sentence_rules = (frozenset(Sentencizer.default_punct_chars), _tokenizer.vocab.lex_attr_getters[IS_PUNCT])
        # Each new string becomes a lexeme whose ~20 attributes (shape, like_num, ...) Python functions compute: half
        # of the tokenizer's time on unseen chunks. No tokenizer decision reads them (affix regexes, token/URL
        # matches, special cases matched on ORTH), and these words are token texts only.
        _tokenizer.vocab.lex_attr_getters = {}
        _chunk_words = _ChunkWords(_tokenizer, _special_case_pairs(_tokenizer))
    return _tokenizer


def _special_case_pairs(tokenizer) -> frozenset[tuple[str, str]]:
    """(a, b) for every two consecutive tokens a, b of a special case's token sequence as spaCy's PhraseMatcher of
    special cases holds it (`Tokenizer.add_special_case`: the case's string tokenized by the affix rules alone). Every
    special case is included (spaCy leaves out those without affixes, a superset is safe)."""
    from spacy.tokenizer import Tokenizer

    affixes_only = Tokenizer(tokenizer.vocab, rules={}, prefix_search=tokenizer.prefix_search,
                             suffix_search=tokenizer.suffix_search, infix_finditer=tokenizer.infix_finditer,
                             token_match=tokenizer.token_match, url_match=tokenizer.url_match)
    pairs = set()
    for case in tokenizer.rules:
        tokens = [token.text for token in affixes_only(case)]
        pairs.update(zip(tokens, tokens[1:]))
    return frozenset(pairs)


class _ChunkWords:
    """Words of a text from a dictionary of whitespace-separated chunks (see the module's docstring)."""

    def __init__(self, tokenizer, pairs: frozenset[tuple[str, str]]):
        self.tokenizer = tokenizer
        self.pairs_by_chars: dict[tuple[str, str], list[tuple[str, str]]] = {}  # by (a's last, b's first character)
        for a, b in pairs:
            self.pairs_by_chars.setdefault((a[-1], b[0]), []).append((a, b))
        self.words: dict[str, list[str]] = {}  # chunk -> its tokens (a chunk has no whitespace: all are words)
        self.specials = frozenset(tokenizer.rules)  # English's tokenizer has all three affix rules
        self.prefix_search, self.suffix_search = tokenizer.prefix_search, tokenizer.suffix_search
        self.infix_finditer = tokenizer.infix_finditer

    def __call__(self, text: str) -> list[str]:
        """The text's words: its chunks' words, and where a special case could match across chunk boundaries, the
        words of that stretch of text (the chunks it joins, with the whitespace between them) tokenized as one."""
        chunks = text.split()  # str.split and spaCy split on the same characters (str.isspace)
        words = self.words
        unseen = [chunk for chunk in dict.fromkeys(chunks) if chunk not in words]
        if unseen:
            if len(words) + len(unseen) > MAX_CHUNKS:
                words.clear()
                unseen = list(dict.fromkeys(chunks))
            self._tokenize(unseen)
        by_chars, joined = self.pairs_by_chars, set()
        for index, (left, right) in enumerate(zip(chunks, chunks[1:])):
            candidates = by_chars.get((left[-1], right[0]))
            # a match across the boundary pairs a token ending `left` with one starting `right`
            if candidates and any(left.endswith(a) and right.startswith(b) for a, b in candidates):
                joined.add(index)
        if not joined:
            result = []
            for chunk in chunks:
                result += words[chunk]
            return result
        spans = [match.span() for match in _CHUNK.finditer(text)]  # the same chunks, with their places
        result, index = [], 0
        while index < len(chunks):
            end = index
            while end in joined:
                end += 1
            if end == index:
                result += words[chunks[index]]
            else:
                stretch = text[spans[index][0] : spans[end][1]]
                result += [word for word in (token.text.strip() for token in self.tokenizer(stretch)) if word]
            index = end + 1
        return result

    def _tokenize(self, chunks: list[str]) -> None:
        """Each chunk's tokens, from one spaCy call over the chunks joined by newlines: the newline tokens between
        them keep special cases from matching across, so each chunk's tokens are those it has alone.

        A letters-and-digits chunk that is no special case and that none of the prefix, suffix and infix rules
        matches is its own single token without spaCy: `Tokenizer._split_affixes` (spacy/tokenizer.pyx, 3.8) then
        splits nothing off (no prefix, no suffix) and `_attach_tokens` pushes the string whole (a token or URL match
        pushes it whole too; else no infix, no split), and no special case's token sequence is that one token unless
        the chunk is the special case. 45% of the dev pages' new chunks; spaCy's own path costs ≈ 20 µs a chunk,
        these tests ≈ 3.5 µs (benchmarks/RESULTS.md, issue 15)."""
        specials, prefix, suffix, infixes = self.specials, self.prefix_search, self.suffix_search, self.infix_finditer
        words, rest = self.words, []
        for chunk in chunks:
            if (chunk.isalnum() and chunk not in specials and prefix(chunk) is None and suffix(chunk) is None
                    and next(infixes(chunk), None) is None):
                words[chunk] = [chunk]
            else:
                rest.append(chunk)
        if rest:
            self._tokenize_with_spacy(rest)

    def _tokenize_with_spacy(self, chunks: list[str]) -> None:
        words, current, index = self.words, [], 0
        for token in self.tokenizer("\n".join(chunks)):
            text = token.text
            if text == "\n":
                words[chunks[index]] = current
                current, index = [], index + 1
            else:
                current.append(text)
        words[chunks[index]] = current


def count_sentences(text: str, language: str = Languages.english) -> int:
    """`len(split_into_sentences(text, language))` of datatrove, without its second blank spaCy pipeline (0.12-0.2 s
    per task process to build, benchmarks/RESULTS.md, issue 15) for English: the count only needs the tokens, which
    the word tokenizer's spaCy tokenizer gives (the same tokenizer), and the sentencizer's rule over them.

    datatrove's `split_into_sentences` cuts the text at the end of each of spaCy's sentences (`span_tokenize`), so it
    has as many parts as spaCy has sentences, and one (the text) when there is none (an empty text). spaCy's
    `Sentencizer.predict` (spacy/pipeline/sentencizer.pyx, 3.8) starts a sentence at token 0 and at every token that
    is neither `is_punct` nor one of its punctuation characters and follows one of those characters since the last
    start; `Doc.sents` yields a sentence per start. `is_punct` is the lexeme attribute's own function: the word
    tokenizer's vocabulary has its attribute functions cleared (see `_english_tokenizer`), not the function."""
    if language != Languages.english:
        return len(datatrove_split_into_sentences(text, language))
    tokenizer = _english_tokenizer()
    punct_chars, is_punct = _sentence_rules
    try:
        tokens = [token.text for token in tokenizer(text)]
    except Exception:  # datatrove retries such a text its own way (SpaCyTokenizer._do_tokenize): let it
        return len(datatrove_split_into_sentences(text, language))
    sentences, seen_period = 1, False
    for token in tokens:
        in_punct_chars = token in punct_chars
        if seen_period and not in_punct_chars and not is_punct(token):
            sentences += 1
            seen_period = False
        elif in_punct_chars:
            seen_period = True
    return sentences


@lru_cache(5)  # the repetition and quality stages ask for the same document's words in turn
def split_into_words(text: str, language: str = Languages.english) -> list[str]:
    """The words datatrove's `split_into_words(text, language)` gives; faster for English."""
    if language != Languages.english:
        return datatrove_split_into_words(text, language)
    _english_tokenizer()
    return _chunk_words(text)
