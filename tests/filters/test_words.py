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
