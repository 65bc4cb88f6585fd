import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter
from datatrove.utils.text import split_into_words

from mdr.filters.fineweb import C4Config, C4Stage, FineWebQualityConfig, FineWebQualityStage
from tests.filters.texts import CORPORA, corpus_texts, reloaded, run

SENTENCE = "This line is a full sentence."


# C4 (spec §11.1)


def test_c4_defaults_are_fineweb_ones():
    config = C4Config()
    assert (config.filter_no_terminal_punct, config.min_words_per_line, config.min_num_sentences) == (False, 3, 5)


def test_c4_min_sentences_boundary():
    assert run(C4Stage(), "\n".join([SENTENCE] * 5))[0] is True
    result, doc = run(C4Stage(), "\n".join([SENTENCE] * 4))
    assert result == "too_few_sentences" and doc.metadata["drop_detail"] == "sentences 4 < 5"
    # Four lines, but one holds two sentences: five in all.
    assert run(C4Stage(), "\n".join([SENTENCE] * 3 + [f"{SENTENCE} And a second one here."]))[0] is True


def test_c4_min_words_per_line_boundary_and_rewrite():
    text = "\n".join([SENTENCE] * 5 + ["three words here", "two words", "  no terminal punctuation needed  "])
    result, doc = run(C4Stage(), text)
    assert result is True
    assert doc.text.split("\n")[5:] == ["three words here", "no terminal punctuation needed"]


def test_c4_line_rules():
    lines = [SENTENCE] * 5 + [
        "Please enable JavaScript to view this page.",
        "Read our Privacy Policy for details.",
        "Wikipedia says so.[1] [edit] [citation needed]",
        "a " + "w" * 1001 + " word",
        "a " + "w" * 1000 + " word",
    ]
    result, doc = run(C4Stage(), "\n".join(lines))
    assert result is True
    assert doc.text.split("\n")[5:] == ["Wikipedia says so.  ", "a " + "w" * 1000 + " word"]


def test_c4_document_rules():
    assert run(C4Stage(), "\n".join([SENTENCE] * 5 + ["Lorem ipsum dolor sit amet."]))[0] == "lorem_ipsum"
    assert run(C4Stage(), "\n".join([SENTENCE] * 5 + ["function f() { return 1; }"]))[0] == "curly_bracket"
    # Only lines that survive the line rules are looked at: a two-word line with a bracket is harmless.
    assert run(C4Stage(), "\n".join([SENTENCE] * 5 + ["{ x"]))[0] is True


@pytest.mark.parametrize("corpus", CORPORA)
def test_c4_same_results_as_datatrove_on_real_documents(corpus):
    ours, theirs = C4Stage(), C4QualityFilter(filter_no_terminal_punct=False)
    results = set()
    for text in corpus_texts(corpus, 60):
        result, doc = run(ours, text)
        expected_doc = Document(text=text, id="x")
        expected = theirs.filter(expected_doc)
        assert result == (True if expected is True else expected[1])
        assert doc.text == expected_doc.text
        results.add(result)
    assert True in results and len(results) >= 2  # kept, and dropped


# FineWeb quality (spec §11.2)


def only(rule: str) -> FineWebQualityStage:
    """The other rules turned off."""
    off = dict(line_punct_thr=None, short_line_thr=None, char_duplicates_ratio=None, new_line_ratio=None)
    return FineWebQualityStage(FineWebQualityConfig(**{**off, rule: getattr(FineWebQualityConfig(), rule)}))


def test_fineweb_defaults_are_the_release_ones():
    config = FineWebQualityConfig()
    assert (config.line_punct_thr, config.short_line_thr, config.short_line_length) == (0.12, 0.67, 30)
    assert (config.char_duplicates_ratio, config.new_line_ratio, config.line_punct_exclude_zero) == (0.01, 0.3, False)


def test_line_punctuation_boundary_counts_empty_lines():
    stage = only("line_punct_thr")
    # 12 of 100 lines (empty ones included) end in punctuation: 0.12 <= 0.12, dropped.
    result, doc = run(stage, "\n".join(["Ends well."] * 12 + ["no end"] * 44 + [""] * 44))
    assert result == "line_punct_ratio" and doc.metadata["drop_detail"] == "line_punct_ratio 0.12 <= 0.12"
    assert run(stage, "\n".join(["Ends well!"] * 13 + ["no end"] * 43 + [""] * 44))[0] is True


def test_short_line_boundary():
    stage = only("short_line_thr")
    short, long = "s" * 30, "l" * 31  # a 30-character line is short
    assert run(stage, "\n".join([short] * 67 + [long] * 33))[0] == "short_line_ratio"  # 0.67 >= 0.67
    assert run(stage, "\n".join([short] * 66 + [long] * 34))[0] is True


def test_duplicated_line_characters_boundary():
    stage = only("char_duplicates_ratio")
    repeated = "r" * 10
    # 10 duplicated characters of 1000 (newlines excluded) = 0.01 >= 0.01: dropped.
    at_threshold = "\n".join([repeated, repeated, "u" * 980])
    result, doc = run(stage, at_threshold)
    assert result == "char_dup_ratio" and doc.metadata["drop_detail"] == "char_dup_ratio 0.01 >= 0.01"
    assert run(stage, "\n".join([repeated, repeated, "u" * 981]))[0] is True
    # Empty lines repeat, but do not count.
    assert run(stage, "\n\n".join([repeated, "u" * 990]) + "\n\n")[0] is True


def test_newline_ratio_boundary():
    stage = only("new_line_ratio")
    assert run(stage, "a b\nc d\ne f\ng h i j")[0] is True  # 3 newlines / 10 words = 0.3
    result, doc = run(stage, "a b\nc d\ne f\ng h\ni j")  # 4 / 10
    assert result == "list_ratio" and doc.metadata["drop_detail"] == "newlines_per_word 0.4 > 0.3"
    # Words are the tokenizer's: "a,b" is three of them, so 4 newlines / 15 words is fine.
    text = "a,b\nc,d\ne,f\ng,h\ni,j"
    assert len(split_into_words(text)) == 15 and run(stage, text)[0] is True


@pytest.mark.parametrize("corpus, rules", [("shared", 4), ("samples", 3)])
def test_fineweb_release_semantics_on_real_documents(corpus, rules):
    """Against a literal transcription of the released filter (datatrove 05194d39), with today's tokenizer."""
    from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates

    def released(text):
        lines = text.split("\n")
        ratio = sum(1 for line in lines if line.endswith((".", "'", '"', "!", "?"))) / len(lines)
        if ratio <= 0.12:
            return "line_punct_ratio"
        if sum(1 for line in lines if len(line) <= 30) / len(lines) >= 0.67:
            return "short_line_ratio"
        non_empty = [line for line in lines if line.strip() != ""]
        if find_duplicates(non_empty)[1] / len(text.replace("\n", "")) >= 0.01:
            return "char_dup_ratio"
        if text.count("\n") / len(split_into_words(text)) > 0.3:
            return "list_ratio"
        return True

    stage = FineWebQualityStage()
    results = set()
    for text in corpus_texts(corpus, 300):
        result, _ = run(stage, text)
        assert result == released(text)
        results.add(result)
    assert True in results and len(results) >= rules  # kept, and dropped by several rules


@pytest.mark.parametrize("stage", [C4Stage(), FineWebQualityStage()])
def test_pickles_and_works_after_unpickling(stage):
    text = "\n".join(f"{SENTENCE} It goes on for {i} more words." for i in range(5))
    run(stage, text)
    assert run(reloaded(stage), text)[0] is True
