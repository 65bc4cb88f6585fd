"""dedup/exact_substring.py: repeated spans of ≥ k tokens are removed from every occurrence but the first, so that
none is left twice; modes cut, mask and drop; partitions; results independent of task counts."""

import json
import random
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers

from mdr.dedup.exact_substring import (
    GPT2_PRETOKEN,
    ExactSubstringConfig,
    ExactSubstringStage,
    SpanTokenizer,
    deduplicate_texts,
    find_duplicate_spans,
)
from tests.dedup.phases import dedup, document

WORDS = ["".join(random.Random(i).choices("abcdefghij", k=4)) for i in range(60)]


def windows(text: str, k: int) -> list[tuple]:
    pieces = GPT2_PRETOKEN.findall(text)
    return [tuple(pieces[i : i + k]) for i in range(len(pieces) - k + 1)]


def repeated_windows(texts: list[str], k: int) -> set:
    seen, repeated = set(), set()
    for text in texts:
        for window in windows(text, k):
            (repeated if window in seen else seen).add(window)
    return repeated


def is_subsequence(short: str, long: str) -> bool:
    characters = iter(long)
    return all(c in characters for c in short)


@given(st.text(max_size=300))
def test_pretokens_cover_the_text(text):
    assert "".join(GPT2_PRETOKEN.findall(text)) == text


def test_gpt2_pretokens_match_gpt2_pattern_on_english():
    assert GPT2_PRETOKEN.findall("Don't stop: 42 cats_and dogs!!  ok") == [
        "Don", "'t", " stop", ":", " 42", " cats", "_", "and", " dogs", "!!", " ", " ok"]


def test_find_duplicate_spans_marks_all_but_the_first_occurrence():
    shared = np.arange(100, 110)
    docs = [np.r_[1, 2, shared], np.r_[shared, 3], np.r_[4, shared[2:], 5], np.r_[6, 7]]
    spans = find_duplicate_spans(docs, min_tokens=5)
    assert [(s.document, s.start, s.end, s.first_document) for s in spans] == [(1, 0, 10, 0), (2, 1, 9, 0)]
    assert find_duplicate_spans(docs, min_tokens=11) == []


def test_repeat_within_one_document_keeps_its_first_occurrence():
    doc = np.r_[np.arange(10), 99, np.arange(10)]
    [span] = find_duplicate_spans([doc], min_tokens=6)
    assert (span.document, span.start, span.end, span.first_document) == (0, 11, 21, 0)


sentences = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=st.lists(sentences, min_size=1, max_size=6), picks=st.lists(st.lists(st.integers(0, 5), max_size=8),
                                                                        min_size=1, max_size=6))
def test_after_cutting_no_span_of_k_tokens_occurs_twice(pool, picks):
    # documents assembled from a small pool of sentences share many long spans, also across cut seams
    texts = [" ".join(pool[i % len(pool)] for i in pick) for pick in picks]
    config = ExactSubstringConfig(min_span_tokens=8)
    cut, spans = deduplicate_texts(texts, config)
    assert repeated_windows(cut, 8) == set()
    assert cut[0] == texts[0] or spans[0]  # the first document loses only what repeats inside itself
    for before, after in zip(texts, cut):
        assert is_subsequence(after, before)  # cutting only removes characters
    if not repeated_windows(texts, 8):
        assert cut == texts


def test_a_repeat_formed_across_a_cut_is_cut_in_a_second_pass():
    span = " sa sb sc sd se sf sg sh si"
    texts = ["x" + span, "a b c d e f g h", "a b c d" + span + " e f g h"]
    cut, spans = deduplicate_texts(texts, ExactSubstringConfig(min_span_tokens=8))
    assert cut == [texts[0], texts[1], ""]  # cutting the span left "a b c d e f g h", a repeat of text 1
    assert [(s["pass"], s["first_document"]) for s in spans[2]] == [(1, 0), (2, 1)]


def test_fifty_tokens_is_the_default_and_shorter_repeats_stay():
    rng = random.Random(1)
    span = " ".join(rng.choice(WORDS) for _ in range(40))  # 40 words: ≥ 50 pre-tokens? no: one pre-token each
    long_span = " ".join(rng.choice(WORDS) for _ in range(60))
    texts = [f"start {span} middle {long_span} end", f"other {span} and {long_span} done"]
    cut, spans = deduplicate_texts(texts, ExactSubstringConfig())
    assert cut[0] == texts[0] and span in cut[1] and long_span.split(" ", 1)[1] not in cut[1]
    assert repeated_windows(cut, 50) == set()


@pytest.mark.parametrize("mode", ["cut", "mask", "drop"])
def test_modes(tmp_path, mode):
    rng = random.Random(2)
    note = " ".join(rng.choice(WORDS) for _ in range(80))
    own = [" ".join(rng.choice(WORDS) for _ in range(30)) for _ in range(4)]
    documents = [document(0, f"{own[0]} {note}"), document(1, f"{own[1]} {note}"), document(2, note),
                 document(3, own[3])]
    config = ExactSubstringConfig(mode=mode)
    kept, excluded = dedup(ExactSubstringStage, config, documents, tmp_path, tasks=2)
    spans = [row for path in (tmp_path / "work" / "exact_substring" / "spans").glob("*.parquet")
             for row in __import__("pyarrow.parquet").parquet.read_table(path).to_pylist()]
    assert {(row["id"], row["duplicate_of"]) for row in spans} == {("doc-001", "doc-000"), ("doc-002", "doc-000")}
    if mode == "cut":
        # doc-002 opens with its first word without the leading space it has elsewhere: another GPT-2 token
        assert kept == {"doc-000": documents[0].text, "doc-001": own[1], "doc-002": note.split()[0], "doc-003": own[3]}
        duplicate = dedup(ExactSubstringStage, config, documents[:1] + [document(4, " " + note)], tmp_path / "again")
        assert duplicate[1]["doc-004"]["reason"] == "all_text_duplicated"
    elif mode == "mask":  # text kept whole; the spans table says what to mask
        assert kept == {doc.id: doc.text for doc in documents} and not excluded
    else:
        assert set(kept) == {"doc-000", "doc-003"}
        assert {row["reason"] for row in excluded.values()} == {"duplicate_span"}
        assert json.loads(excluded["doc-001"]["metadata"])["duplicate_of"] == "doc-000"


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), tasks=st.integers(2, 3))
def test_results_do_not_depend_on_task_count_and_partitions_split_the_run(seed, tasks):
    rng = random.Random(seed)
    shared = [" ".join(rng.choice(WORDS) for _ in range(70)) for _ in range(3)]
    documents = [document(i, " ".join(rng.choice(shared + [str(i)]) for _ in range(3))) for i in range(8)]
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, tempfile.TemporaryDirectory() as c:
        one = dedup(ExactSubstringStage, ExactSubstringConfig(), documents, Path(a), tasks=1)
        many = dedup(ExactSubstringStage, ExactSubstringConfig(), documents, Path(b), tasks=tasks, shards=3)
        kept, excluded = dedup(ExactSubstringStage, ExactSubstringConfig(partitions=3), documents, Path(c), tasks=tasks)
        assert len(list((Path(c) / "work" / "exact_substring" / "spans").glob("*.parquet"))) == 3
    assert one == many
    assert set(kept) | set(excluded) == {doc.id for doc in documents}


def test_tokenizer_file_is_used(tmp_path):
    vocabulary = {word: i for i, word in enumerate(["[UNK]"] + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    ids, starts, ends = SpanTokenizer(str(tmp_path / "tokenizer.json")).tokenize(f"{WORDS[3]}  {WORDS[5]}")
    assert ids.tolist() == [4, 6] and starts.tolist() == [0, 6] and ends.tolist() == [4, 10]
    texts = [" ".join(WORDS[:30]), "x " + " ".join(WORDS[:30])]
    cut, _ = deduplicate_texts(texts, ExactSubstringConfig(min_span_tokens=30, tokenizer_file=str(tmp_path / "tokenizer.json")))
    assert cut == [texts[0], "x "]
