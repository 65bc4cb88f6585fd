"""Builders for filter tests: texts of an exact length made of words that never repeat, shared-data paths, and the
corpora the tests that compare a stage with datatrove's filter run on."""

import gzip
import itertools
import json
import pickle
import string
from pathlib import Path

import pytest
from datatrove.data import Document

from data_samples.make_samples import paragraphs

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
DOLMA_CC_SAMPLE = "text/cc-derived/dolma_cc_main_2019_30/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
SAMPLE_TEXTS = Path(__file__).resolve().parents[2] / "data_samples" / "texts"
# `pytest.mark.parametrize("corpus", CORPORA)`: real Common Crawl text where ../shared/data is, and the bundled
# sample texts always, so that a bare clone checks the comparisons with datatrove too (issue 11.9).
CORPORA = ("shared", "samples")


def shared_file(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data not found at {path} (shared data absent)")
    return path


def unique_words(prefix: str = "q", length: int = 4):
    """Distinct lowercase words `q` + letters, none equal to another: fillers that repeat no n-gram."""
    for letters in itertools.product(string.ascii_lowercase, repeat=length - len(prefix)):
        yield prefix + "".join(letters)


def pad_to(prefix: str, length: int, separator: str = " ") -> str:
    """`prefix` followed by distinct filler words so that the text is exactly `length` characters long."""
    text, words = prefix, unique_words()
    while length - len(text) >= 7:
        text += separator + next(words)
    remaining = length - len(text)
    assert remaining != 1, "cannot pad by a single character"
    if remaining:
        text += separator + "z" * (remaining - 1)
    assert len(text) == length
    return text


def run(stage, text: str, **metadata) -> tuple[object, Document]:
    """Filters one document; returns (True or the drop reason, the document)."""
    doc = Document(text=text, id="doc", metadata=dict(metadata))
    result = stage.filter(doc)
    return (True if result is True else result[1]), doc


def reloaded(stage):
    """The stage after a pickle round trip, as executors ship it to workers."""
    return pickle.loads(pickle.dumps(stage))


def real_texts(count: int | None = None) -> list[str]:
    """The first `count` documents (all by default) of a real Common Crawl extraction sample (skips when shared data
    is absent)."""
    with gzip.open(shared_file(DOLMA_CC_SAMPLE), "rt") as lines:
        return [json.loads(line)["text"] for line in itertools.islice(lines, count)]


def sample_texts() -> list[str]:
    """Every page text of data_samples/texts/ (articles, and the pages planted for the filters to drop: repeated
    lines, a price list, a short page, French, German, Spanish), twice: its paragraphs on lines of their own, as
    extraction gives them, and a blank line apart, so that the paragraph rules see several paragraphs. Each
    paragraph reads as make_samples.py puts it in the sample WARCs' pages."""
    pages = [paragraphs(path.stem) for path in sorted(SAMPLE_TEXTS.glob("*.txt"))]
    return [separator.join(paragraphs) for separator in ("\n", "\n\n") for paragraphs in pages]


def corpus_texts(corpus: str, count: int | None = None) -> list[str]:
    """The texts of one of CORPORA: `real_texts(count)` (skips when shared data is absent), or every sample text."""
    return real_texts(count) if corpus == "shared" else sample_texts()


def decisions(ours, theirs, texts: list[str]) -> set:
    """Asserts our stage and datatrove's filter keep or drop each text alike, for the same reason; returns the
    decisions seen (so a test can require that several rules were exercised)."""
    seen = set()
    for text in texts:
        result, _ = run(ours, text)
        expected = theirs.filter(Document(text=text, id="x"))
        assert result == (True if expected is True else expected[1]), text[:200]
        seen.add(result)
    return seen
