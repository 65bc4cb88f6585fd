import pytest

from mdr.filters.lines import LinesConfig, LinesStage, count_words
from tests.filters.texts import CORPORA, corpus_texts, reloaded, run

# 40 lines of 5 plain words: enough words that removing one short line stays under 5%.
BODY = "\n".join(f"this is body line {i}" for i in range(40))


def corrected(line: str, config: LinesConfig = None) -> tuple[object, str, int]:
    """Runs one line inside BODY; returns (result, the line's corrected form or None if removed, lines removed)."""
    stage = LinesStage(config)
    result, doc = run(stage, f"{BODY}\n{line}")
    kept = doc.text.split("\n")[40:] if result is True else None
    return result, (kept[0] if kept else None), doc.metadata["lines_removed"]


def test_defaults_are_dclms():
    config = LinesConfig()
    assert (config.max_uppercase_fraction, config.max_numeric_fraction) == (0.5, 0.999999)
    assert (config.min_words_per_line, config.max_words_for_boilerplate, config.max_removed_words_fraction) == (
        2, 10, 0.05,
    )  # fmt: skip


def test_uppercase_fraction_boundary():
    assert corrected("A" * 50 + " " + "b" * 49)[1:] == ("A" * 50 + " " + "b" * 49, 0)  # 50 / 100 = 0.5: kept
    result, line, removed = corrected("A" * 51 + " " + "b" * 48)  # 0.51
    assert (result, line, removed) == (True, None, 1)


def test_numeric_fraction_boundary():
    at_threshold = "1" * 499_999 + " " + "1" * 500_000  # 999,999 digits of 1,000,000 chars = 0.999999: kept
    assert corrected(at_threshold)[2] == 0
    assert corrected("2024 2025")[1] == "2024 2025"  # the space is not a digit
    stage = LinesStage()
    result, doc = run(stage, f"{BODY}\n20242025")
    assert doc.metadata["lines_removed"] == 1 and stage.stats["lines_dropped_numeric"].total == 1


@pytest.mark.parametrize("line", ["3 likes", "1.2K views", "- 1,024 Followers -", "12 comments:", "5m Downloads"])
def test_counter_lines_are_removed(line):
    assert corrected(line)[2] == 1


@pytest.mark.parametrize("line", ["3 likes and counting", "likes 3", "Three likes"])
def test_non_counter_lines_are_kept(line):
    assert corrected(line)[1:] == (line, 0)


def test_single_word_lines_are_removed_empty_lines_kept():
    result, doc = run(LinesStage(), f"{BODY}\nHello\n\nHello world\n   \nend here")
    assert result is True
    assert doc.text.endswith("this is body line 39\n\nHello world\nend here")
    assert doc.metadata["lines_removed"] == 2


def test_boilerplate_is_deleted_from_short_lines_only():
    assert corrected("Sign-in to leave a comment")[1] == "to leave a comment"
    assert corrected("Log in or register to post")[1] == "or register to post"
    assert corrected("The full story. Read more...")[1] == "The full story."
    assert corrected("You have 3 items in cart now")[1] == "You have 3 now"
    # Eleven words: above the 10-word limit, untouched.
    long_line = "Sign in to see the eleven words of this very line"
    assert len(long_line.split()) == 11 and corrected(long_line)[1:] == (long_line, 0)
    # Exactly ten words: edited.
    assert corrected("Sign in to see the ten words of this line")[1] == "to see the ten words of this line"


def test_a_line_that_is_only_boilerplate_is_removed():
    result, line, removed = corrected("Read more...")
    assert (result, line, removed) == (True, None, 1)


def test_removed_words_fraction_boundary():
    body = "\n".join(["one two three four five"] * 19)  # 95 words
    at_threshold = body + "\n" + "\n".join(f"single{i}" for i in range(5))  # 5 of 100 words removed = 0.05
    result, doc = run(LinesStage(), at_threshold)
    assert result is True and doc.text == body and doc.metadata["lines_removed"] == 5

    body = "\n".join(["one two three four five"] * 18 + ["one two three four"])  # 94 words
    past = body + "\n" + "\n".join(f"single{i}" for i in range(6))  # 6 of 100 = 0.06
    result, doc = run(LinesStage(), past)
    assert result == "too_many_words_removed"
    assert doc.metadata["drop_detail"] == "removed_words_fraction 0.06 > 0.05"
    assert doc.text == past  # a dropped document keeps its text for the exclusion report


def test_word_count_ignores_punctuation():
    assert count_words("Hello , world -- it's 3 ... (a) test !") == 6


def test_untouched_document_keeps_its_text():
    text = "  A normal line of text.\nAnother normal line here.  "
    result, doc = run(LinesStage(), text)
    assert (result, doc.text, doc.metadata["lines_removed"]) == (True, text, 0)


@pytest.mark.parametrize("corpus", CORPORA)
def test_real_documents_lose_at_most_five_percent_of_their_words(corpus):
    stage = LinesStage()
    kept = dropped = 0
    for text in corpus_texts(corpus):
        result, doc = run(stage, text)
        if result is True:
            kept += 1
            assert count_words(doc.text) >= 0.95 * count_words(text)
        else:
            dropped += 1
            assert result in ("too_many_words_removed", "empty")
    assert kept > 0 and dropped > 0


def test_pickles_and_works_after_unpickling():
    stage = LinesStage()
    run(stage, "a used stage")
    assert run(reloaded(stage), "ALL CAPS LINE\nfine")[0] == "too_many_words_removed"
