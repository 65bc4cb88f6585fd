"""experiments/heldout.py: held-out selection by record id, the held-out sets, decontamination at Jaccard 0.8 (its
boundary exactly, every removal checked against brute-force Jaccard), and the --eval readers."""

import gzip
import json
import uuid
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mdr.dedup.minhash import MinhashConfig, MinhashSignature, detection_probability
from mdr.errors import UsageError
from mdr.experiments.heldout import (
    DECONTAMINATION,
    HeldOut,
    decontaminate,
    is_heldout,
    load_eval_set,
    split_heldout,
)
from mdr.layout import RunLayout
from tests.filters.texts import SAMPLE_TEXTS, real_texts, sample_texts, unique_words

FRACTION = 0.2
SIGNER = MinhashSignature(MinhashConfig())  # dedup's shingling: word 5-grams of the normalised text


def jaccard(a: str, b: str) -> Fraction:
    """Exact Jaccard of the two texts' word 5-gram sets, computed here for the test."""
    a, b = set(SIGNER.shingles(a)), set(SIGNER.shingles(b))
    return Fraction(len(a & b), len(a | b))


def record_id(name: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}>"


def ids(docs) -> list[str]:
    return [doc_id for doc_id, _ in docs]


def corpus() -> list[tuple[str, str]]:
    """The sample pages, whole and paragraph by paragraph, each with a record id."""
    texts = sample_texts() + [p for text in sample_texts()[: len(sample_texts()) // 2] for p in text.split("\n")]
    return [(record_id(f"doc-{i}"), text) for i, text in enumerate(dict.fromkeys(texts))]


def free_id(prefix: str, heldout: bool = False) -> str:
    """A record id that is (or is not) held out at FRACTION."""
    return next(i for i in map(record_id, (f"{prefix}-{n}" for n in range(1000))) if is_heldout(i, FRACTION) == heldout)


def arms_of(docs):
    """Four nested arms, as stages forward them: a language filter drops some, a line filter shortens some texts,
    a dedup drops more."""
    language = [doc for i, doc in enumerate(docs) if i % 3]
    lines = [(doc_id, text.rsplit("\n", 1)[0] if i % 4 == 0 else text) for i, (doc_id, text) in enumerate(language)]
    dedup = [doc for i, doc in enumerate(lines) if i % 5]
    return {"extract": docs, "language": language, "lines": lines, "dedup": dedup}


# ---------------------------------------------------------------------------------------------------------------
# held-out selection


def test_is_heldout_depends_on_the_id_alone_and_takes_the_fraction():
    many = [record_id(str(n)) for n in range(20000)]
    rate = sum(is_heldout(i, 0.1) for i in many) / len(many)
    assert abs(rate - 0.1) < 4 * (0.1 * 0.9 / len(many)) ** 0.5  # 4 standard deviations
    assert all(is_heldout(i, 0.2) for i in many if is_heldout(i, 0.1))  # a larger fraction holds out a superset
    assert [is_heldout(i, 0.1) for i in many] == [is_heldout(i, 0.1) for i in many]


def test_split_heldout_takes_held_out_ids_out_of_every_arm():
    docs = corpus()
    arms = arms_of(docs)
    split = split_heldout(arms, FRACTION)
    assert split.first == [doc for doc in docs if is_heldout(doc[0], FRACTION)] and len(split.first) >= 10
    heldout_ids = set(ids(split.first))
    for name, arm in arms.items():
        assert heldout_ids.isdisjoint(ids(split.training[name])), name
        assert split.training[name] == [doc for doc in arm if doc[0] not in heldout_ids]
        assert split.removed[name] == len(arm) - len(split.training[name]) > 0
    # heldout-last: the held-out documents that survive to the last arm, in its text
    assert set(ids(split.last)) == heldout_ids & set(ids(arms["dedup"]))
    assert set(ids(split.last)) <= heldout_ids and 0 < len(split.last) < len(split.first)
    assert set(split.last) <= set(arms["dedup"])
    shortened = [doc for doc in split.last if doc not in split.first]
    assert shortened, "the line-filtered text of a held-out document is heldout-last's text"


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_a_fraction_outside_0_1_is_a_usage_error(fraction):
    with pytest.raises(UsageError, match="between 0 and 1"):
        split_heldout({"extract": corpus()}, fraction)


def test_a_first_arm_without_a_held_out_document_is_a_usage_error():
    docs = [(free_id("kept"), "some text of a page")]
    with pytest.raises(UsageError, match="no document of the first arm"):
        split_heldout({"extract": docs, "dedup": docs}, FRACTION)


# ---------------------------------------------------------------------------------------------------------------
# decontamination


def test_decontamination_finds_a_pair_at_jaccard_0_8_but_with_probability_2e_9():
    """Candidates are confirmed by exact Jaccard, so the banding only has to miss nothing at J ≥ 0.8."""
    config = DECONTAMINATION
    assert (config.n_grams, config.normalize) == (5, True)
    assert 1 - detection_probability(0.8, config.num_bands, config.rows_per_band) < 1e-8


def with_references(split: HeldOut, **eval_sets) -> dict:
    return {"heldout-first": [t for _, t in split.first], "heldout-last": [t for _, t in split.last], **eval_sets}


def test_a_planted_near_duplicate_of_a_held_out_document_is_removed_from_every_arm():
    docs = corpus()
    split = split_heldout(arms_of(docs), FRACTION)
    original = max((text for _, text in split.first), key=len)
    words = original.split(" ")
    for position in (3, len(words) // 2, len(words) - 2):  # a few words changed
        words[position] = "changed"
    copy = " ".join(words)
    assert Fraction(4, 5) <= jaccard(original, copy) < 1
    planted = free_id("planted")
    training = {arm: docs + [(planted, copy)] for arm, docs in split.training.items()}
    result = decontaminate(training, with_references(split))
    assert planted in result.removed and "heldout-first" in result.removed[planted]
    for arm, docs in result.training.items():
        assert planted not in ids(docs), arm
        assert result.per_arm[arm] == len(training[arm]) - len(docs) >= 1
    assert result.per_reference["heldout-first"] >= 1
    assert result.summary()["removed_documents"] == len(result.removed)


def test_the_boundary_is_jaccard_0_8_exactly():
    """A copy with S/4 words appended has Jaccard S/(S + S/4) = 0.8 exactly and is removed; one more word, and it
    is kept."""
    words = max(sample_texts(), key=len).split()
    while len(set(SIGNER.shingles(" ".join(words)))) % 4:  # S divisible by 4
        words.pop()
    original = " ".join(words)
    shingles = len(set(SIGNER.shingles(original)))
    filler = unique_words(length=5)
    at = original + " " + " ".join(next(filler) for _ in range(shingles // 4))
    below = at + " " + next(filler)
    assert jaccard(original, at) == Fraction(4, 5)
    assert Fraction(79, 100) < jaccard(original, below) < Fraction(4, 5)
    training = {"extract": [("at", at), ("below", below)], "dedup": [("at", at), ("below", below)]}
    result = decontaminate(training, {"heldout-first": [original]})
    assert set(result.removed) == {"at"}
    assert result.training == {"extract": [("below", below)], "dedup": [("below", below)]}
    assert result.per_arm == {"extract": 1, "dedup": 1} and result.per_reference == {"heldout-first": 1}


def test_an_id_near_duplicate_in_one_arm_only_is_removed_from_every_arm():
    """A line filter can make a text a near-duplicate: its id leaves every arm, the unfiltered text with it."""
    reference = max(sample_texts(), key=len)
    boilerplate = " ".join(w for w, _ in zip(unique_words(length=6), range(len(reference.split()))))
    training = {"extract": [("x", reference + "\n" + boilerplate)], "lines": [("x", reference)]}
    assert jaccard(reference, training["extract"][0][1]) < Fraction(1, 2)
    result = decontaminate(training, {"clean": [reference]})
    assert result.training == {"extract": [], "lines": []}
    assert result.removed == {"x": {"clean"}} and result.per_arm == {"extract": 1, "lines": 1}


def test_texts_under_5_words_match_only_their_equal_once_normalised():
    references = {"heldout-first": ["Subscribe to our newsletter", ""], "menus": ["Home | About | Contact"]}
    training = {"extract": [("equal", "subscribe to our NEWSLETTER!"), ("longer", "Subscribe to our newsletter today"),
                            ("menu", "home about contact"), ("empty", ""), ("digits", "page 12 of 30"),
                            ("other", "Read more")]}
    result = decontaminate(training, references)
    assert result.removed == {"equal": {"heldout-first"}, "menu": {"menus"}}
    assert result.per_reference == {"heldout-first": 1, "menus": 1}


def test_a_document_near_duplicating_several_sets_counts_in_each():
    text = max(sample_texts(), key=len)
    result = decontaminate({"extract": [("a", text), ("b", "unrelated words " * 20)]},
                           {"heldout-first": [text], "heldout-last": [text], "clean": [text + " one more line"]})
    assert result.removed == {"a": {"heldout-first", "heldout-last", "clean"}}
    assert result.per_reference == {"heldout-first": 1, "heldout-last": 1, "clean": 1}


def changed(text: str, every: int = 40) -> str:
    """`text` with one word in `every` replaced."""
    words = text.split(" ")
    return " ".join("changed" if i % every == every // 2 else word for i, word in enumerate(words))


@pytest.mark.parametrize("source", ["samples", "shared"])
def test_removals_equal_brute_force_jaccard(source):
    """Every training document at Jaccard ≥ 0.8 of a reference is removed (recall), and only those (precision),
    checked pair by pair against exact Jaccard. The corpora hold natural near-duplicates (the sample WARCs' planted
    ones, the pages of two market weeks) and planted ones: one document in ten has a copy with words changed."""
    if source == "samples":
        texts = list(dict.fromkeys(sample_texts() + [p for t in sample_texts() for p in t.split("\n")]))
    else:
        texts = list(dict.fromkeys(real_texts(600)))
    texts += [changed(text) for text in texts[::10]]
    docs = [(record_id(f"{source}-{i}"), text) for i, text in enumerate(texts)]
    split = split_heldout({"extract": docs}, 0.3)
    references = with_references(split, clean=[p for t in sample_texts()[:5] for p in t.split("\n")])
    result = decontaminate(split.training, references)
    shingled = {name: [set(SIGNER.shingles(r)) for r in refs] for name, refs in references.items()}
    expected = {}
    for doc_id, text in split.training["extract"]:
        own = set(SIGNER.shingles(text))
        sets = {name for name, refs in shingled.items()  # J ≤ min/max of the sizes: the size test skips no pair
                if own and any(5 * min(len(own), len(r)) >= 4 * max(len(own), len(r))
                               and 5 * len(own & r) >= 4 * len(own | r) for r in refs)}
        if sets:
            expected[doc_id] = sets
    assert result.removed == expected
    assert len(expected) >= 5


# ---------------------------------------------------------------------------------------------------------------
# --eval sets


def write_parquet(path: Path, texts, row_group_size: int = 2, column: str = "text") -> Path:
    pq.write_table(pa.table({column: texts}), path, row_group_size=row_group_size)
    return path


def test_parquet_eval_set_reads_every_row_group_and_leaves_out_documents_without_text(tmp_path):
    path = write_parquet(tmp_path / "set.parquet", ["one", None, "two", "", "  \n", "three"])
    assert load_eval_set(path) == ["one", "two", "three"]


def test_jsonl_eval_set_plain_and_gzipped(tmp_path):
    rows = [{"text": "first doc", "id": 1}, {"text": None}, {"text": "second\n\ndoc"}]
    lines = "\n".join(map(json.dumps, rows)) + "\n\n"
    (tmp_path / "set.jsonl").write_text(lines)
    with gzip.open(tmp_path / "set.jsonl.gz", "wt") as file:
        file.write(lines)
    assert load_eval_set(tmp_path / "set.jsonl") == ["first doc", "second\n\ndoc"]
    assert load_eval_set(tmp_path / "set.jsonl.gz") == ["first doc", "second\n\ndoc"]


def test_a_text_file_is_one_document_and_a_directory_every_file_in_it():
    files = sorted(SAMPLE_TEXTS.glob("*.txt"))
    texts = load_eval_set(SAMPLE_TEXTS)
    assert texts == [path.read_text(encoding="utf-8") for path in files] and len(texts) > 20
    assert any("\n\n" in text for text in texts)  # paragraphs stay in their document
    assert load_eval_set(files[0]) == [files[0].read_text(encoding="utf-8")]


def test_a_directory_mixes_formats_skips_hidden_files_and_an_mdr_run_means_its_data(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("from text")
    (tmp_path / "sub" / "b.jsonl").write_text('{"text": "from jsonl"}\n')
    write_parquet(tmp_path / "sub" / "c.parquet", ["from parquet"])
    (tmp_path / ".hidden.txt").write_text("temporary")
    (tmp_path / "notes.md").write_text("not an eval file")
    assert load_eval_set(tmp_path) == ["from text", "from jsonl", "from parquet"]
    run = RunLayout(tmp_path / "run")
    run.data.mkdir(parents=True)
    run.excluded("lines").mkdir(parents=True)
    run.run_file.write_text("{}")
    write_parquet(run.data / "00000.parquet", ["kept"])
    write_parquet(run.excluded("lines") / "00000.parquet", ["dropped"])
    assert load_eval_set(run.root) == ["kept"]


def bad(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("name, content, message", [
    ("set.jsonl", b'{"text": "ok"}\n{"text": "cut', "line 2 is not JSON"),
    ("set.jsonl", b'{"content": "wrong field"}\n', 'line 1 is not an object with a "text" string'),
    ("set.jsonl", b'{"text": 12}\n', 'line 1 is not an object with a "text" string'),
    ("set.jsonl", b'["text"]\n', 'line 1 is not an object with a "text" string'),
    ("set.jsonl", b'{"text": "caf\xe9"}\n', "is not UTF-8 text"),
    ("set.jsonl.gz", b"not gzip at all", "cannot be read"),
    ("set.jsonl.gz", gzip.compress(b'{"text": "a"}\n' * 100)[:40], "cannot be read"),
    ("set.txt", b"caf\xe9", "is not UTF-8 text"),
    ("set.parquet", b"PAR1 garbage", "is not a readable Parquet file"),
    ("set.csv", b"text\nhello\n", "not an evaluation file"),
    ("set.jsonl", b"\n\n", "holds no document with text"),
    ("set.txt", b"  \n", "holds no document with text"),
])
def test_a_bad_eval_file_is_one_line_naming_it(tmp_path, name, content, message):
    path = bad(tmp_path, name, content)
    with pytest.raises(UsageError, match=message) as error:
        load_eval_set(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_parquet_without_a_text_column_missing_paths_and_empty_directories_are_usage_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no eval file here")
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "ints.parquet")
    cases = {write_parquet(tmp_path / "body.parquet", ["x"], column="body"): "has no 'text' column",
             tmp_path / "ints.parquet": "holds int64, not text",
             tmp_path / "absent.jsonl": "no such file or directory",
             tmp_path / "empty": "holds no evaluation file"}
    for path, message in cases.items():
        with pytest.raises(UsageError, match=message) as error:
            load_eval_set(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)
