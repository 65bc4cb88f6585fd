import pytest
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.utils.text import split_into_words

from mdr.filters.quality import QualityConfig, QualityStage
from tests.filters.texts import CORPORA, corpus_texts, decisions, reloaded, run

RULES_OFF = dict(
    min_doc_words=None,
    max_doc_words=None,
    min_avg_word_length=None,
    max_avg_word_length=None,
    max_symbol_word_ratio=None,
    max_bullet_lines_ratio=None,
    max_ellipsis_lines_ratio=None,
    min_alpha_words_ratio=None,
    min_stop_words=None,
)


def only(rule: str, **options) -> QualityStage:
    """A stage with every rule off except `rule` at its default threshold."""
    return QualityStage(QualityConfig(**{**RULES_OFF, rule: getattr(QualityConfig(), rule), **options}))


def words(n: int, word: str = "word") -> list[str]:
    return [word] * n


def test_defaults_are_gophers():
    config = QualityConfig()
    assert (config.min_doc_words, config.max_doc_words) == (50, 100_000)
    assert (config.min_avg_word_length, config.max_avg_word_length) == (3, 10)
    assert (config.max_symbol_word_ratio, config.max_bullet_lines_ratio, config.max_ellipsis_lines_ratio) == (
        0.1, 0.9, 0.3,
    )  # fmt: skip
    assert (config.min_alpha_words_ratio, config.min_stop_words, config.stop_words_count_unique) == (0.8, 2, False)


def test_word_count_boundaries():
    stage = only("min_doc_words")
    assert run(stage, " ".join(words(50)))[0] is True
    result, doc = run(stage, " ".join(words(49)) + " !!")  # punctuation tokens are not words
    assert result == "gopher_short_doc" and doc.metadata["drop_detail"] == "words 49 < 50"

    stage = only("max_doc_words")
    assert run(stage, " ".join(words(100_000, "a")))[0] is True
    result, doc = run(stage, " ".join(words(100_001, "a")))
    assert result == "gopher_long_doc" and doc.metadata["drop_detail"] == "words 100001 > 100000"


def test_mean_word_length_boundaries():
    stage = only("min_avg_word_length")
    assert run(stage, " ".join(words(50, "abc")))[0] is True  # 3.0
    result, doc = run(stage, " ".join(words(49, "abc") + ["ab"]))  # 149 / 50 = 2.98
    assert result == "gopher_below_avg_threshold" and doc.metadata["drop_detail"] == "avg_word_length 2.98 < 3"

    stage = only("max_avg_word_length")
    assert run(stage, " ".join(words(50, "a" * 10)))[0] is True  # 10.0
    result, _ = run(stage, " ".join(words(49, "a" * 10) + ["a" * 11]))  # 10.02
    assert result == "gopher_above_avg_threshold"


@pytest.mark.parametrize("symbol, reason", [("#", "gopher_too_many_hashes"), ("…", "gopher_too_many_ellipsis")])
def test_symbol_ratio_boundary(symbol, reason):
    stage = only("max_symbol_word_ratio")
    at_threshold = " ".join(words(90) + [symbol] * 10)  # 10 per 100 tokens
    assert len(split_into_words(at_threshold)) == 100 and run(stage, at_threshold)[0] is True
    result, doc = run(stage, " ".join(words(89) + [symbol] * 11))  # 0.11
    assert result == reason and doc.metadata["drop_detail"].endswith("0.11 > 0.1")


@pytest.mark.parametrize("bullet", ["•", "-"])
def test_bullet_lines_boundary(bullet):
    stage = only("max_bullet_lines_ratio")
    assert run(stage, "\n".join([f"  {bullet} an item"] * 9 + ["a sentence"]))[0] is True  # 0.9
    lines = [f"{bullet} an item"] * 91 + ["a sentence"] * 9
    assert run(stage, "\n".join(lines))[0] == "gopher_too_many_bullets"  # 0.91


def test_ellipsis_lines_boundary():
    stage = only("max_ellipsis_lines_ratio")
    assert run(stage, "\n".join(["and so on..."] * 3 + ["a sentence."] * 7))[0] is True  # 0.3
    result, doc = run(stage, "\n".join(["and so on…  "] * 31 + ["a sentence."] * 69))  # 0.31
    assert result == "gopher_too_many_end_ellipsis" and doc.metadata["drop_detail"] == "ellipsis_lines_ratio 0.31 > 0.3"


def test_alphabetic_words_boundary():
    stage = only("min_alpha_words_ratio")
    assert run(stage, " ".join(words(80) + ["123"] * 20))[0] is True  # 0.8 of tokens hold a letter
    result, _ = run(stage, " ".join(words(79) + ["123"] * 21))
    assert result == "gopher_below_alpha_threshold"


def test_stop_words_count_occurrences_by_default():
    stage = only("min_stop_words")
    assert run(stage, "the cat saw the dog")[0] is True  # "the" twice
    result, doc = run(stage, "The cat saw the dog")  # case-sensitive: one
    assert result == "gopher_enough_stop_words" and doc.metadata["drop_detail"] == "stop_words 1 < 2"

    unique = only("min_stop_words", stop_words_count_unique=True)
    assert run(unique, "the cat saw the dog")[0] == "gopher_enough_stop_words"
    assert run(unique, "the cat and the dog")[0] is True


@pytest.mark.parametrize("corpus", CORPORA)
def test_same_decisions_as_datatrove_on_real_documents(corpus):
    ours, theirs = QualityStage(QualityConfig(stop_words_count_unique=True)), GopherQualityFilter()
    seen = decisions(ours, theirs, corpus_texts(corpus, 200))
    assert True in seen and len(seen) >= 4  # kept, and dropped by three rules at least


def test_pickles_and_works_after_unpickling():
    stage = QualityStage()
    run(stage, "a used stage")
    assert run(reloaded(stage), "too short")[0] == "gopher_short_doc"
