"""dedup/minhash.py: signatures equal datasketch's, LSH candidates equal datasketch's MinHashLSH, and the four phases
keep one document per cluster, deterministically, under any task count and on the local, Ray and Slurm executors."""

import json
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdr.dedup.minhash import (
    MinhashConfig,
    MinhashSignature,
    MinhashStage,
    _signature_name,
    band_groups,
    bucket_pairs,
    connected_components,
    detection_probability,
    shingle_hash,
    unique_pairs,
)
from mdr.pipeline.executors import ExecutorOptions, RayOptions, SlurmOptions, run_phases
from mdr.dedup.shards import DocumentOrder
from tests.dedup.phases import INPUT_FILES, context, dedup, document, kept_and_excluded, run_in_process, write_shards

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MCCORMICK = SHARED / "dedup" / "mccormick"
SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
SMALL = MinhashConfig(num_bands=20, rows_per_band=5)  # fast, and a pair at Jaccard 0.9 collides with p > 0.9999

# letters only: normalization maps digit runs to 0
WORDS = ["".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=6)) for i in range(400)]


def random_text(rng: random.Random, words: int = 80) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def test_signatures_equal_datasketch_with_the_same_permutations():
    signer = MinhashSignature(MinhashConfig())
    text = "The quick brown fox jumps over the lazy dog, again and again: 12 times on 3 March!"
    reference = MinHash(num_perm=9000, seed=1, hashfunc=shingle_hash, scheme="affine32")
    reference.update_batch(signer.shingles(text))
    assert np.array_equal(signer.permutations, reference.permutations)
    assert np.array_equal(signer.signature(text), reference.hashvalues)


def test_shingles_are_normalized_word_five_grams():
    signer = MinhashSignature(MinhashConfig())
    assert signer.shingles("One, TWO three\n\nfour five six") == [b"one two three four five", b"two three four five six"]
    assert signer.shingles("Only three words") == [b"only three words"]  # fewer than n words: one shingle
    assert signer.shingles(" ... ") == [] and signer.signature("!!") is None


def test_detection_probability_is_rw_s_curve():
    # spec §8: 450 × 20 gives 0.760 at s = 0.75 and 0.995 at s = 0.8; FineWeb's 14 × 8 gives 0.924 at s = 0.8
    assert detection_probability(0.75, 450, 20) == pytest.approx(0.760, abs=0.001)
    assert detection_probability(0.80, 450, 20) == pytest.approx(0.995, abs=0.001)
    fineweb = MinhashConfig.fineweb()
    assert detection_probability(0.80, fineweb.num_bands, fineweb.rows_per_band) == pytest.approx(0.924, abs=0.001)


def mccormick_articles() -> tuple[dict[str, str], set[tuple[str, str]]]:
    """The 100 news articles of McCormick's MinHash tutorial, by name, and their labelled duplicate pairs (skips when
    shared data is absent)."""
    if not MCCORMICK.is_dir():
        pytest.skip(f"real data not present at {MCCORMICK}")
    lines = (MCCORMICK / "articles_100.train").read_text().splitlines()
    texts = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines if line.strip()}
    truth = {tuple(sorted(line.split())) for line in (MCCORMICK / "articles_100.truth").read_text().splitlines()[1:]}
    return texts, truth


def sample_articles() -> tuple[dict[str, str], set[tuple[str, str]]]:
    """The pages of data_samples/ as the filter phase extracts them, by URL (the first crawl of the URL crawled
    twice), and the exact and near duplicate pairs planted there (expected.json): a bare clone runs the comparison
    with datasketch too (issue 11.9)."""
    from mdr.filters.extraction import ExtractionStage
    from mdr.pipeline.reader import WarcRecordReader

    texts = {}
    for doc in ExtractionStage().run(WarcRecordReader(sorted(map(str, SAMPLES.glob("sample-*.warc.gz")))).run()):
        texts.setdefault(doc.metadata["url"], doc.text)
    expected = json.loads((SAMPLES / "expected.json").read_text())
    truth = {tuple(sorted((url, fate["duplicate_of"]))) for url, fate in expected.items()
             if fate.get("dedup") in ("exact", "near")}
    return texts, truth


@pytest.mark.parametrize("articles", [mccormick_articles, sample_articles], ids=["mccormick", "samples"])
def test_lsh_candidates_equal_datasketch_minhash_lsh_on_real_articles(articles):
    texts, truth = articles()
    signer = MinhashSignature(SMALL)
    names = sorted(texts)
    keys = signer.document_keys([texts[name] for name in names])
    ours = set()
    for band in range(SMALL.num_bands):
        for first, other in bucket_pairs(keys[:, band]).tolist():
            ours.add(tuple(sorted((names[first], names[other]))))
    lsh = MinHashLSH(num_perm=SMALL.num_hashes, params=(SMALL.num_bands, SMALL.rows_per_band))
    sketches = {}
    for name in names:
        sketches[name] = MinHash(num_perm=SMALL.num_hashes, seed=1, hashfunc=shingle_hash, scheme="affine32")
        sketches[name].update_batch(signer.shingles(texts[name]))
        lsh.insert(name, sketches[name])
    theirs = {tuple(sorted((name, match))) for name in names for match in lsh.query(sketches[name]) if match != name}
    # datasketch links all pairs of a bucket, we link each member to the bucket's first: same components
    assert _components(ours) == _components(theirs)
    assert truth and truth <= theirs  # the labelled duplicate pairs are found


def _components(pairs: set) -> set:
    parent = {}

    def root(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups = {}
    for x in parent:
        groups.setdefault(root(x), set()).add(x)
    return {frozenset(g) for g in groups.values()}


def test_signature_files_hold_each_groups_band_keys_band_major(tmp_path):
    rng = random.Random(3)
    texts = [random_text(rng) for _ in range(150)] + ["", random_text(rng)]  # 3 batches of 64; one without words
    write_shards(tmp_path / "in", [document(i, text) for i, text in enumerate(texts)], 1)
    config = MinhashConfig(num_bands=20, rows_per_band=5, bucket_tasks=3)
    run_in_process(MinhashStage.build_phases(config, context(tmp_path, 1))[:1])  # the signatures phase
    keys = MinhashSignature(config).document_keys(texts)
    work = Path(context(tmp_path, 1).work_dir(MinhashStage.key))
    for group, (start, end) in enumerate(band_groups(20, 3)):
        assert (work / _signature_name(group, 0)).read_bytes() == keys[:, start:end].T.tobytes()


def test_unique_pairs_equal_one_final_unique_whatever_the_merges():
    rng = np.random.default_rng(0)
    # 25 chunks drawn from few pairs: most rows repeat, as an exact copy's pair does in every band
    chunks = [rng.integers(0, 30, (int(rng.integers(0, 40)), 2)) for _ in range(25)]
    expected = np.unique(np.concatenate(chunks), axis=0)
    for merge_rows in (1, 7, 1 << 20):  # merged after every chunk, every few, only at the end
        assert np.array_equal(unique_pairs(iter(chunks), merge_rows=merge_rows), expected)
    assert unique_pairs(iter([])).shape == (0, 2)
    assert unique_pairs(iter([np.zeros((0, 2), dtype=np.int64)])).shape == (0, 2)


def test_connected_components_are_transitive():
    nodes, labels = connected_components(np.array([[5, 9], [9, 2], [7, 8], [2, 11]]))
    assert dict(zip(nodes.tolist(), labels.tolist())) == {2: 2, 5: 2, 9: 2, 11: 2, 7: 7, 8: 7}


texts = st.lists(st.text(st.sampled_from("abcde fgh"), min_size=1, max_size=60), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=texts, copy_of=st.integers(0, 100), tasks=st.integers(1, 3), data=st.data())
def test_properties_identical_collide_never_self_subset_and_task_count_free(texts, copy_of, tasks, data):
    source = copy_of % len(texts)
    texts = texts + [texts[source]]  # an exact copy, later in input order
    documents = [document(i, text) for i, text in enumerate(texts)]
    config = MinhashConfig(num_bands=20, rows_per_band=5, bucket_tasks=data.draw(st.integers(1, 4)))
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        kept, excluded = dedup(MinhashStage, config, documents, Path(a), tasks=tasks)
        kept_one, excluded_one = dedup(MinhashStage, MinhashConfig(num_bands=20, rows_per_band=5), documents, Path(b))
    ids = {doc.id for doc in documents}
    assert set(kept) | set(excluded) == ids and not set(kept) & set(excluded)  # a subset; nothing lost
    assert (set(kept), set(excluded)) == (set(kept_one), set(excluded_one))  # whatever the task counts
    for row in excluded.values():
        kept_copy = json.loads(row["metadata"])["duplicate_of"]
        assert kept_copy != row["id"] and kept_copy in kept  # never its own duplicate; the kept one survives
    if texts[source].split():  # identical documents with words always collide: all in one cluster, one kept
        copies = sorted((doc for doc in documents if doc.text == texts[source]), key=DocumentOrder(INPUT_FILES).key)
        representatives = {doc.id if doc.id in kept else json.loads(excluded[doc.id]["metadata"])["duplicate_of"]
                           for doc in copies}
        assert len(representatives) == 1 and sum(doc.id in kept for doc in copies) <= 1
        if all(doc.text == copies[0].text for doc in documents if doc.id in representatives):
            assert representatives == {copies[0].id}  # the earliest copy, unless an equal-after-normalization
            # document comes earlier still


def test_cluster_keeps_earliest_in_input_order_and_explains_the_others(tmp_path):
    rng = random.Random(7)
    base = random_text(rng, 200)
    words = base.split()
    near = " ".join(words[:100] + words[105:])  # 5 words removed: Jaccard ≈ 0.93
    documents = [document(0, random_text(rng)), document(1, near, file=2), document(2, base, file=1),
                 document(3, base, file=3), document(4, random_text(rng))]
    kept, excluded = dedup(MinhashStage, MinhashConfig(), documents, tmp_path, tasks=2)
    assert set(kept) == {"doc-000", "doc-002", "doc-004"}  # doc-002 comes from the earliest input file
    assert excluded["doc-001"]["reason"] == "near_duplicate" and excluded["doc-003"]["reason"] == "exact_duplicate"
    assert excluded["doc-001"]["detail"] == "near-duplicate of doc-002 (cluster 0, size 3)"
    histogram = json.loads((tmp_path / "logs" / "minhash_clusters" / "cluster_sizes.json").read_text())
    assert histogram == {"3": 1}


def _executor_run(root: Path, options: ExecutorOptions) -> tuple[dict, dict]:
    rng = random.Random(3)
    base = random_text(rng, 120)
    documents = [document(i, base if i % 3 == 0 else random_text(rng)) for i in range(9)]
    write_shards(root / "in", documents, 3)
    run_phases(MinhashStage.build_phases(SMALL, context(root, 3)), options)
    return kept_and_excluded(root, "minhash")


def _check_executor_result(kept: dict, excluded: dict) -> None:
    assert set(excluded) == {"doc-003", "doc-006"} and len(kept) == 7
    assert {json.loads(row["metadata"])["duplicate_of"] for row in excluded.values()} == {"doc-000"}


def test_runs_under_the_local_executor(tmp_path):
    _check_executor_result(*_executor_run(tmp_path, ExecutorOptions("local", workers=2)))


@pytest.mark.filterwarnings("ignore:placement_group.*deprecated:DeprecationWarning")
def test_runs_under_ray(tmp_path, ray_address):
    options = ExecutorOptions("ray", ray=RayOptions(address=ray_address, mem_per_cpu_gb=0.5))
    _check_executor_result(*_executor_run(tmp_path, options))


def test_runs_under_slurm(tmp_path, slurm_cluster):
    options = ExecutorOptions("slurm", slurm=SlurmOptions(poll_seconds=0.5, timeout_s=300))
    _check_executor_result(*_executor_run(tmp_path, options))
