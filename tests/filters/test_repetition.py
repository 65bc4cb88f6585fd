import random

import pytest
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate, find_top_duplicate, get_n_grams
from datatrove.utils.text import split_into_words

from mdr.filters.repetition import NGrams, RepetitionConfig, RepetitionStage
from tests.filters.texts import CORPORA, corpus_texts, decisions, pad_to, reloaded, run

RULES_OFF = dict(
    dup_line_frac=None,
    dup_para_frac=None,
    dup_line_char_frac=None,
    dup_para_char_frac=None,
    top_ngram_char_frac={},
    dup_ngram_char_frac={},
)


def only(**rule) -> RepetitionStage:
    """A stage with every rule off except `rule`, which keeps its default threshold when given as None."""
    defaults = RepetitionConfig()
    values = {name: getattr(defaults, name) if value is None else value for name, value in rule.items()}
    return RepetitionStage(RepetitionConfig(**{**RULES_OFF, **values}))


def test_defaults_are_gophers_table_a1():
    config = RepetitionConfig()
    assert (config.dup_line_frac, config.dup_para_frac, config.dup_line_char_frac, config.dup_para_char_frac) == (
        0.30, 0.30, 0.20, 0.20,
    )  # fmt: skip
    assert config.top_ngram_char_frac == {2: 0.20, 3: 0.18, 4: 0.16}
    assert config.dup_ngram_char_frac == {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


@pytest.mark.parametrize("separator, rule", [("\n\n", "dup_para_frac"), ("\n", "dup_line_frac")])
def test_duplicate_count_fraction_boundary(separator, rule):
    stage = only(**{rule: None})
    unique = [f"element number {i}" for i in range(100)]
    at_threshold = separator.join(unique[:70] + [unique[0]] * 30)  # 30 duplicates of 100 elements = 0.30
    assert run(stage, at_threshold)[0] is True
    past = separator.join(unique[:69] + [unique[0]] * 31)  # 0.31
    result, doc = run(stage, past)
    assert result == rule
    assert doc.metadata["drop_detail"] == f"{rule} 0.31 > 0.3"


@pytest.mark.parametrize("separator, rule", [("\n\n", "dup_para_char_frac"), ("\n", "dup_line_char_frac")])
def test_duplicate_char_fraction_boundary(separator, rule):
    stage = only(**{rule: None})
    repeated = "x" * 10
    # 10 duplicate characters in a 50-character text = 0.20, in a 49-character one = 0.204
    at_threshold = separator.join([repeated, repeated, "y" * (50 - 20 - 2 * len(separator))])
    assert len(at_threshold) == 50 and run(stage, at_threshold)[0] is True
    past = separator.join([repeated, repeated, "y" * (49 - 20 - 2 * len(separator))])
    result, doc = run(stage, past)
    assert result == rule and doc.metadata["drop_detail"] == f"{rule} 0.2041 > 0.2"


@pytest.mark.parametrize(
    "n, gram, length",
    [
        (2, "aaaa bbbbb", 100),  # 10 chars x 2 = 20 / 100 = 0.20
        (3, "aaa bb cc", 100),  # 9 x 2 = 18 / 100 = 0.18
        (4, "aa b c d", 100),  # 8 x 2 = 16 / 100 = 0.16
    ],
)
def test_top_ngram_boundary(n, gram, length):
    stage = only(top_ngram_char_frac={n: RepetitionConfig().top_ngram_char_frac[n]})
    assert run(stage, pad_to(f"{gram} {gram}", length))[0] is True
    result, doc = run(stage, pad_to(f"{gram} {gram}", length - 1))
    assert result == f"top_{n}_gram"
    assert doc.metadata["drop_detail"].startswith(f"top_{n}_gram ")


@pytest.mark.parametrize(
    "n, word_length, length",
    [
        (5, 3, 100),  # one repeated 5-gram of 3-letter words: 15 chars / 100 = 0.15
        (6, 7, 300),  # 42 / 300 = 0.14
        (7, 13, 700),  # 91 / 700 = 0.13
        (8, 3, 200),  # 24 / 200 = 0.12
        (9, 11, 900),  # 99 / 900 = 0.11
        (10, 1, 100),  # 10 / 100 = 0.10
    ],
)
def test_duplicated_ngram_boundary(n, word_length, length):
    stage = only(dup_ngram_char_frac={n: RepetitionConfig().dup_ngram_char_frac[n]})
    block = " ".join(letter * word_length for letter in "abcdefghij"[:n])
    assert run(stage, pad_to(f"{block} {block}", length))[0] is True
    result, doc = run(stage, pad_to(f"{block} {block}", length - 1))
    assert result == f"duplicated_{n}_n_grams"


def test_empty_text_is_dropped():
    assert run(RepetitionStage(), "")[0] == "empty"


@pytest.mark.parametrize("corpus", CORPORA)
def test_same_decisions_as_datatrove_on_real_documents(corpus):
    ours, theirs = RepetitionStage(), GopherRepetitionFilter()
    seen = decisions(ours, theirs, corpus_texts(corpus, 200))
    assert True in seen and len(seen) >= 4  # the sample exercises several rules


@pytest.mark.parametrize("corpus", CORPORA)
def test_n_gram_measures_equal_datatrove_on_real_documents(corpus):
    texts = corpus_texts(corpus, 300)
    for words in [split_into_words(text) for text in texts] + [[], ["one"], ["ab", "c", "a", "bc", "ab", "c"]]:
        n_grams = NGrams(words)
        for n in (2, 3, 4):
            grams = get_n_grams(words, n)
            expected = find_top_duplicate(grams) if grams else None
            assert n_grams.top_duplicate_chars(n) == expected
        for n in range(5, 11):
            assert n_grams.all_duplicate_chars(n) == find_all_duplicate(words, n)


def test_duplicated_n_grams_equal_datatrove_on_random_words_with_equal_concatenations():
    # Words over a 2-letter alphabet make many n-grams whose concatenations are equal though their words differ
    # ("ab" "a" and "a" "ba"): datatrove compares the concatenations, and so must the hashed candidates.
    rng = random.Random(15)
    for trial in range(300):
        alphabet = ["a", "b", "ab", "ba", "", "é", "\ud800"] if trial % 3 == 0 else ["a", "b", "ab", "ba"]
        words = [rng.choice(alphabet) for _ in range(rng.randrange(0, 80))]
        n_grams = NGrams(words)
        for n in range(1, 11):
            assert n_grams.all_duplicate_chars(n) == find_all_duplicate(words, n), (words, n)


def test_duplicated_n_gram_candidates_are_the_positions_of_repeated_strings():
    words = ["x", "ab", "c", "a", "bc", "y", "ab", "c", "z"]  # "abc" at 1, 3 and 6; every other 2-gram once
    assert NGrams(words)._candidates(2) == [1, 3, 6]
    assert NGrams(words)._candidates(5) == [] and NGrams(["a"] * 3)._candidates(4) == []


def test_pickles_and_works_after_unpickling():
    stage = RepetitionStage()
    run(stage, "a used stage")
    assert run(reloaded(stage), "a\n\na\n\na\n\nb")[0] == "dup_para_frac"


@pytest.mark.parametrize("words", [
    ["a b", "c", "a", "b c", "a b", "c"],  # words with a space: equal strings of unequal word sequences
    [f"w{i}" for i in range(60_000)] + ["w1", "w2", "w3", "w1", "w2", "w3"],  # V**4 past 2**63: strings
    ["x", "yy", "x", "yy", "zzz", "zzz", "zzz"],  # a tie between n-grams of different lengths: the first one wins
])
def test_top_n_grams_counted_as_numbers_equal_datatrove(words):
    n_grams = NGrams(words)
    for n in (2, 3, 4):
        grams = get_n_grams(words, n)
        assert n_grams.top_duplicate_chars(n) == (find_top_duplicate(grams) if grams else None)
