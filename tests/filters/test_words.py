import itertools
import subprocess
import sys

import pytest
from datatrove.utils.text import split_into_sentences as datatrove_split_into_sentences
from datatrove.utils.text import split_into_words as datatrove_split_into_words
from datatrove.utils.word_tokenizers import load_word_tokenizer

from mdr.filters import words
from tests.filters.texts import CORPORA, corpus_texts


@pytest.mark.parametrize("corpus", CORPORA)
def test_same_words_as_datatrove_on_real_documents(corpus):
    for text in corpus_texts(corpus):
        assert words.split_into_words(text) == datatrove_split_into_words(text)


def test_special_cases_across_a_space_and_whitespace_tokens():
    # spaCy's special case '' matches across a single space: a chunk's words depend on its neighbours.
    for text in ["(RDM)]].'' ''For the", "x\n: ''For", "Don't stop--now, (U.S.A.)!\n\n e-mail:\ta@b.com\u00a0x", " \n"]:
        assert words.split_into_words(text) == datatrove_split_into_words(text)


def test_tokenizer_is_remade_when_its_vocabulary_is_full(monkeypatch):
    words.split_into_words("warm the tokenizer up")
    first = words._english_tokenizer()
    monkeypatch.setattr(words, "MAX_VOCAB_STRINGS", len(first.vocab.strings))
    # chunks that spaCy tokenizes (affixes, infixes): plain words are their own token without it, adding no string
    words.split_into_words("(qqzx) vvyw-unseen strings, grow; the vocabulary.")
    assert words._english_tokenizer() is not first
    assert words.split_into_words("Still (the) same words.") == datatrove_split_into_words("Still (the) same words.")


def test_other_languages_use_datatrove():
    assert words.split_into_words("Bonjour le monde.", "fr") == datatrove_split_into_words("Bonjour le monde.", "fr")


def test_spacy_is_imported_without_torch_and_torch_still_imports():
    # A fresh interpreter, as the forkserver that preloads SPACY_MODULE: spaCy's tokenizer works, torch was not
    # imported along (thinc saw none), and a later `import torch` is not blocked.
    pytest.importorskip("torch")
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({words.SPACY_MODULE!r})\n"
        "from mdr.filters.words import split_into_words\n"
        "assert split_into_words(\"Don't stop.\") == ['Do', \"n't\", 'stop', '.'], split_into_words(\"Don't stop.\")\n"
        "assert 'torch' not in sys.modules\n"
        "import thinc.compat\n"
        "assert not thinc.compat.has_torch\n"
        "import torch\n"
        "assert torch.tensor([1]).item() == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_spacy_is_imported_without_its_command_line_which_still_imports():
    # spacy/__init__.py imports spacy.cli (weasel, typer, httpx: 0.3 s) for spacy.info() only; datatrove's sentence
    # splitter (a blank pipeline with its sentencizer) works without it, and spacy.info and spacy.cli still work.
    code = (
        "import sys, importlib\n"
        f"spacy = importlib.import_module({words.SPACY_MODULE!r}).spacy\n"
        "assert 'spacy.cli' not in sys.modules and 'weasel' not in sys.modules\n"
        "from datatrove.utils.text import split_into_sentences\n"
        "assert split_into_sentences('One here. Two there!', 'en') == ['One here.', ' Two there!']\n"
        "assert spacy.info()['spacy_version'] == spacy.__version__\n"
        "import spacy.cli\n"
        "assert callable(spacy.cli.info) and 'weasel' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("text", [
    "(RDM)]].'' ''For the",  # '' across the space: the stretch is tokenized as one
    "a ( -_- ) b",  # an emoticon over three chunks
    "Prof. Olga x : P and :P :\nP",
    "it's e.g. 10a.m . and ' em ' s",
])
def test_special_cases_across_chunks_equal_spacy(text):
    assert words.split_into_words(text) == datatrove_split_into_words(text)


def test_chunk_words_need_the_boundary_check(monkeypatch):
    # Without the pairs of special-case tokens, chunk by chunk gives other words: the check is what makes it equal.
    text = "(RDM)]].'' ''For the"
    words._english_tokenizer()
    monkeypatch.setattr(words._chunk_words, "pairs_by_chars", {})
    assert words._chunk_words(text) != datatrove_split_into_words(text)


def test_chunk_dictionary_is_emptied_past_its_bound(monkeypatch):
    texts = corpus_texts(CORPORA[-1], 20)  # the bundled samples: always there
    words._english_tokenizer()
    monkeypatch.setattr(words, "MAX_CHUNKS", 50)
    monkeypatch.setattr(words._chunk_words, "words", {})  # whatever earlier tests left there
    for text in texts:
        assert words._chunk_words(text) == datatrove_split_into_words(text)
        assert len(words._chunk_words.words) <= max(50, len(set(text.split())))


@pytest.mark.parametrize("corpus", CORPORA)
def test_same_sentence_counts_as_datatrove_on_real_documents(corpus):
    # the C4 stage counts the sentences of stripped lines; whole texts add multi-line and whitespace tokens. The
    # first 150 texts (≈ 9,000 lines of the shared corpus): datatrove's side takes ≈ 0.4 ms a line.
    for index, text in enumerate(itertools.islice(corpus_texts(corpus), 150)):
        for part in [text] * (index < 40) + [line.strip() for line in text.splitlines()]:
            assert words.count_sentences(part) == len(datatrove_split_into_sentences(part)), part


@pytest.mark.parametrize("text", [
    "", "   ", "Hi.  ", "Hello. World", "e.g. this", "a . . b", "Wait... what?! Yes.", "\u201cQuoted.\u201d Then",
    "1. 2. 3.", "Dr. Smith went home. He slept", "x \t. \u00a0y", "!!! ??? x", "\u3002\u4e2d\u6587\u3002 z",
    "(RDM)]].'' ''For the", "IS_ALPHA is it. Yes", "end.\n\nnext line. and more",
])
def test_sentence_counts_equal_datatrove(text):
    assert words.count_sentences(text) == len(datatrove_split_into_sentences(text))


def test_sentence_rules_are_datatrove_sentencizers():
    # datatrove's English sentence splitter is a blank pipeline with a default sentencizer: the same characters
    punct_chars = load_word_tokenizer("en").tokenizer.get_pipe("sentencizer").punct_chars
    words.count_sentences("warm up.")
    assert words._sentence_rules[0] == punct_chars and len(punct_chars) > 50


def test_sentence_counts_of_other_languages_use_datatrove():
    text = "Bonjour. Le monde est grand. Oui"
    assert words.count_sentences(text, "fr") == len(datatrove_split_into_sentences(text, "fr")) == 3


def test_plain_chunks_are_their_own_token_without_spacy(monkeypatch):
    # letters-and-digits chunks that no special case and no affix rule matches skip spaCy; the others go to it
    words._english_tokenizer()
    monkeypatch.setattr(words._chunk_words, "words", {})
    sent = []
    spacy_path = words._chunk_words._tokenize_with_spacy
    monkeypatch.setattr(words._chunk_words, "_tokenize_with_spacy", lambda chunks: (sent.extend(chunks),
                                                                                     spacy_path(chunks)))
    text = "Plain words 2024 and cannot don't e.g. 10km x86 co-op U.S. (paren) end."
    assert words.split_into_words.__wrapped__(text) == datatrove_split_into_words(text)
    assert {"Plain", "words", "2024", "and", "x86"}.isdisjoint(sent)
    assert {"cannot", "don't", "e.g.", "10km", "co-op", "U.S.", "(paren)", "end."} <= set(sent)
