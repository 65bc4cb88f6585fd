import subprocess
import sys

import pytest
from datatrove.utils.text import split_into_words as datatrove_split_into_words

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
    words.split_into_words("qqzx vvyw unseen strings grow the vocabulary")
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
    for text in texts:
        assert words._chunk_words(text) == datatrove_split_into_words(text)
        assert len(words._chunk_words.words) <= max(50, len(set(text.split())))
