"""Builders for filter tests: texts of an exact length made of words that never repeat, and shared-data paths."""

import itertools
import pickle
import string
from pathlib import Path

import pytest
from datatrove.data import Document

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


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
