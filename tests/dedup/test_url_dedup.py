"""dedup/url_dedup.py: a URL kept once is not kept again, across files and partitions; the earliest copy in input
order is kept, whatever the task counts."""

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdr.dedup.shards import DocumentOrder
from mdr.dedup.url_dedup import UrlDedupConfig, UrlDedupStage, normalize_url
from tests.dedup.phases import INPUT_FILES, dedup, document


@pytest.mark.parametrize("url, normal", [
    ("HTTPS://Example.COM:443/a/B?x=1#top", "https://example.com/a/B?x=1"),
    ("http://example.com", "http://example.com/"),
    ("http://example.com:8080/", "http://example.com:8080/"),
    ("https://example.com./p", "https://example.com/p"),
    ("http://[::1", "http://[::1"),  # not a valid URL: compared as is
])
def test_normalize_url(url, normal):
    assert normalize_url(url) == normal


def test_earliest_copy_in_input_order_is_kept_and_named(tmp_path):
    documents = [document(0, "week two", url="https://news.example.com/market", file=2),
                 document(1, "week one", url="https://NEWS.example.com/market#prices", file=0),
                 document(2, "other", url="https://news.example.com/other", file=1),
                 document(3, "week three", url="https://news.example.com/market", file=3)]
    kept, excluded = dedup(UrlDedupStage, UrlDedupConfig(), documents, tmp_path, tasks=2)
    assert kept == {"doc-001": "week one", "doc-002": "other"}
    assert {row["reason"] for row in excluded.values()} == {"duplicate_url"}
    assert json.loads(excluded["doc-000"]["metadata"])["duplicate_of"] == "doc-001"
    assert excluded["doc-003"]["detail"] == ("URL https://news.example.com/market already kept in doc-001 "
                                             "(https://NEWS.example.com/market#prices)")
    kept_raw, _ = dedup(UrlDedupStage, UrlDedupConfig(normalize=False), documents, tmp_path / "raw")
    assert set(kept_raw) == {"doc-000", "doc-001", "doc-002"}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(urls=st.lists(st.sampled_from(["http://a.example/x", "http://A.example/x#y", "http://b.example/",
                                      "http://b.example", "https://a.example/x"]), min_size=1, max_size=12),
       tasks=st.integers(1, 3), resolve=st.integers(1, 3))
def test_properties_one_document_per_url_earliest_kept_subset_and_task_count_free(urls, tasks, resolve):
    documents = [document(i, f"text {i}", url=url) for i, url in enumerate(urls)]
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        kept, excluded = dedup(UrlDedupStage, UrlDedupConfig(resolve_tasks=resolve), documents, Path(a), tasks=tasks)
        kept_one, _ = dedup(UrlDedupStage, UrlDedupConfig(), documents, Path(b))
    assert set(kept) == set(kept_one)
    assert set(kept) | set(excluded) == {doc.id for doc in documents} and not set(kept) & set(excluded)
    order = DocumentOrder(INPUT_FILES)
    by_url = {}
    for doc in sorted(documents, key=order.key):
        by_url.setdefault(normalize_url(doc.metadata["url"]), doc.id)
    assert set(kept) == set(by_url.values())
