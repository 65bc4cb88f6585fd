"""The byte-level BPE tokenizer: lossless on any text, one end-of-document token that documents cannot forge,
deterministic and atomic training, and `mdr tokenizer train` on an `mdr run` output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mdr.errors import UsageError
from mdr.train.tokenizer import EOS_TOKEN, load_tokenizer, train_tokenizer
from tests.pipeline.commands import mdr
from tests.train.shards import SHAKESPEARE, samples_run, shakespeare_shards

TEXTS = [
    "Hello, world!",
    "  leading and trailing spaces  \n\ttabs\r\n",
    "ünïcödé, 漢字, Ελληνικά, русский, العربية, emoji 🙂👍🏽",
    "",
    "\x00 control \x7f bytes",
    "numbers 1234567890 and punctuation ...!?",
]


@pytest.fixture(scope="module")
def samples():
    return samples_run()


@pytest.fixture(scope="module")
def tokenizer_path(samples, tmp_path_factory):
    return train_tokenizer([str(samples)], 700, str(tmp_path_factory.mktemp("tok") / "tokenizer.json"))


def test_round_trip_on_any_text(tokenizer_path):
    tokenizer = load_tokenizer(tokenizer_path)
    for text in TEXTS:
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.encode_batch(TEXTS) == [tokenizer.encode(t) for t in TEXTS]
    # Merges learnt from the data: common English is shorter in tokens than in bytes.
    assert len(tokenizer.encode("the quality of the information")) < len("the quality of the information") / 2


def test_vocabulary_and_end_of_document(tokenizer_path):
    tokenizer = load_tokenizer(tokenizer_path)
    assert tokenizer.vocab_size == 700
    assert tokenizer.decode([tokenizer.eos_id]) == EOS_TOKEN
    spec = json.loads(open(tokenizer_path).read())
    assert spec["pre_tokenizer"]["type"] == "ByteLevel" and spec["decoder"]["type"] == "ByteLevel"
    assert [t["content"] for t in spec["added_tokens"]] == [EOS_TOKEN]


def test_literal_end_of_text_in_a_document_is_text(tokenizer_path):
    tokenizer = load_tokenizer(tokenizer_path)
    text = f"a page that quotes {EOS_TOKEN} in its body"
    ids = tokenizer.encode(text)
    assert tokenizer.eos_id not in ids
    assert tokenizer.decode(ids) == text


def test_training_is_deterministic_and_atomic(samples, tokenizer_path, tmp_path):
    again = train_tokenizer([str(samples / "data")], 700, str(tmp_path / "sub") + "/")
    assert again == str(tmp_path / "sub" / "tokenizer.json")
    assert load_tokenizer(again).sha256 == load_tokenizer(tokenizer_path).sha256
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["tokenizer.json"]  # no temporary left behind
    fewer = train_tokenizer([str(samples)], 700, str(tmp_path / "fewer.json"), max_docs=2)
    assert load_tokenizer(fewer).sha256 != load_tokenizer(tokenizer_path).sha256


def test_bad_requests_are_one_line(samples, tmp_path):
    with pytest.raises(UsageError, match="at least 257"):
        train_tokenizer([str(samples)], 256, str(tmp_path / "t.json"))
    with pytest.raises(UsageError, match="no Parquet files found"):
        train_tokenizer([str(tmp_path / "missing")], 1000, str(tmp_path / "t.json"))
    with pytest.raises(UsageError, match="not found"):
        load_tokenizer(str(tmp_path / "missing.json"))
    assert not (tmp_path / "t.json").exists()


@pytest.mark.skipif(not SHAKESPEARE.is_file(), reason=f"real text not present at {SHAKESPEARE}")
def test_cli_trains_on_shards(tmp_path):
    out = tmp_path / "tok.json"
    result = mdr("tokenizer", "train", "--data", str(shakespeare_shards()), "--vocab-size", "500", "--out", str(out),
                 "--max-docs", "3000")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    tokenizer = load_tokenizer(str(out))
    assert tokenizer.vocab_size == 500 and tokenizer.sha256[:12] in result.stderr
    assert tokenizer.decode(tokenizer.encode("ROMEO:\nBut, soft!")) == "ROMEO:\nBut, soft!"

    missing = mdr("tokenizer", "train", "--data", str(tmp_path / "none"), "--vocab-size", "500", "--out", str(out))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "no Parquet files found" in missing.stderr


def test_a_corrupt_tokenizer_file_is_one_line(tmp_path):
    from tests.train.runs import shakespeare_tokenizer

    raw = Path(shakespeare_tokenizer()).read_bytes()
    for name, content in (("truncated", raw[: len(raw) // 2]), ("empty", b""), ("binary", bytes(range(256)))):
        path = tmp_path / f"{name}.json"
        path.write_bytes(content)
        with pytest.raises(UsageError, match="is not a tokenizer file") as error:
            load_tokenizer(str(path))
        assert "\n" not in str(error.value)


def test_a_run_that_kept_no_document_is_no_data_not_its_work_files(tmp_path):
    """An `mdr run` OUT without data/ (every document dropped) used to stand for the whole directory, so `--data OUT`
    read the dedup stages' work files (a MinHash docs/ shard without a text column) and failed on them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mdr.layout import RunLayout
    from mdr.train.tokenizer import resolve_parquet_files

    run = RunLayout(tmp_path / "out")
    run.root.mkdir()
    run.run_file.write_text("{}")
    (run.root / "work").mkdir()
    pq.write_table(pa.table({"text": ["a work file, not a kept document"]}), run.root / "work" / "docs.parquet")
    with pytest.raises(UsageError, match="no Parquet files found"):
        resolve_parquet_files(str(run.root))
    run.data.mkdir()
    pq.write_table(pa.table({"text": ["kept"]}), run.data / "00000.parquet")
    assert resolve_parquet_files(str(run.root)) == [str(run.data / "00000.parquet")]
