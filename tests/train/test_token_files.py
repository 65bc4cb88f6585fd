"""Token files (`mdr tokenize`, train/tokenize.py) and the loader reading them (train/data.py): the documents'
tokens the Parquet loader yields, each once across ranks and workers, the same batches, exact resume, the held-out
split by stored text hash, a tokenizer mismatch refused in one line, reruns that skip finished shards; and
`mdr train` / `mdr eval` on a token directory."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mdr.cli import main
from mdr.errors import UsageError
from mdr.layout import MERGED_STATS_FILE, TokenLayout, TrainLayout
from mdr.train.data import TokenLoader, in_val_split, text_hash
from mdr.train.tokenize import token_dtype, tokenize
from mdr.train.tokenizer import load_tokenizer, train_tokenizer
from tests.train.shards import SHAKESPEARE, samples_run, shakespeare_speeches
from tests.train.test_data import (assert_documents_whole, assert_exactly_once, assert_same_batches, corpus_texts,
                                   one_epoch, packed_stream, take)


@pytest.fixture(scope="module")
def shakespeare(tmp_path_factory):
    """A third of tinyshakespeare's speeches in 3 Parquet files of 300-row row groups (9 pieces for 4 workers)."""
    if not SHAKESPEARE.is_file():
        pytest.skip(f"real text not present at {SHAKESPEARE}")
    speeches = shakespeare_speeches()[:2400]
    out = tmp_path_factory.mktemp("shakespeare")
    for index in range(3):
        part = speeches[index * 800 : (index + 1) * 800]
        pq.write_table(pa.table({"text": pa.array(part, pa.string())}), out / f"{index:05d}.parquet",
                       row_group_size=300)
    return out


@pytest.fixture(scope="module")
def tokenizer(shakespeare, tmp_path_factory):
    return train_tokenizer([str(shakespeare)], 400, str(tmp_path_factory.mktemp("tok") / "tokenizer.json"))


@pytest.fixture(scope="module")
def tokens(shakespeare, tokenizer, tmp_path_factory):
    out = tmp_path_factory.mktemp("tokens") / "TOK"
    tokenize([str(shakespeare)], tokenizer, str(out), workers=2, progress=False)
    return out


def test_token_files_hold_each_document_then_eos_in_the_smallest_dtype(shakespeare, tokenizer, tokens):
    manifest = json.loads(TokenLayout(tokens).manifest.read_text())
    vocab = load_tokenizer(tokenizer)
    assert manifest["dtype"] == "uint16" and token_dtype(65_536) == "uint16" and token_dtype(65_537) == "uint32"
    assert manifest["tokenizer"]["sha256"] == vocab.sha256
    layout, texts = TokenLayout(tokens), corpus_texts(shakespeare)
    stream = np.concatenate([np.fromfile(layout.tokens(s["name"]), dtype=np.uint16) for s in manifest["shards"]])
    assert np.array_equal(stream, packed_stream(texts, tokenizer))  # in row order, each ended by eos
    assert stream.nbytes == 2 * manifest["tokens"] and manifest["documents"] == len(texts)
    first = manifest["shards"][0]
    offsets, hashes = np.load(layout.offsets(first["name"])), np.load(layout.hashes(first["name"]))
    assert offsets.dtype == np.int64 and len(offsets) == first["rows"] + 1 and offsets[-1] == first["tokens"]
    assert hashes.tolist() == [text_hash(t) for t in corpus_texts(first["source"]["path"])]
    assert first["source"]["size"] == (shakespeare / "00000.parquet").stat().st_size
    assert sum(first["row_groups"]) == first["rows"] == pq.ParquetFile(first["source"]["path"]).metadata.num_rows


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_one_epoch_over_2_ranks_x_2_workers_is_the_parquet_loaders_documents(shakespeare, tokenizer, tokens):
    seq_len, batch_size = 64, 4
    texts = [t for t in corpus_texts(shakespeare) if not in_val_split(t, 0.01)]
    from_tokens, tails = one_epoch(tokens, tokenizer, ranks=2, workers=2, seq_len=seq_len, batch_size=batch_size,
                                   seed=7)
    # every document's tokens once, whole: the multiset of the Parquet loader's documents
    assert_exactly_once(from_tokens, tails, packed_stream(texts, tokenizer), load_tokenizer(tokenizer).vocab_size,
                        seq_len, batch_size, 4)
    assert_documents_whole(from_tokens, texts, tokenizer)
    # and the very batches it gives: the same pieces, the same orders
    from_parquet, parquet_tails = one_epoch(shakespeare, tokenizer, ranks=2, workers=2, seq_len=seq_len,
                                            batch_size=batch_size, seed=7)
    assert len(from_tokens) == len(from_parquet) and all(map(np.array_equal, from_tokens, from_parquet))
    assert tails == parquet_tails


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_gives_the_uninterrupted_batches(tokenizer, tokens, tmp_path, workers):
    # Rank 1 of 2 holds about 100k tokens, 50 batches an epoch: 80 cross an epoch boundary.
    def loader():
        return TokenLoader([str(tokens)], tokenizer, 64, 32, rank=1, world_size=2, num_workers=workers, seed=5)

    straight = take(loader(), 80)
    for k in (7, 61) if workers == 0 else (61,):
        first = loader()
        assert_same_batches(take(first, k), straight[:k])
        torch.save({"loader": first.state_dict()}, tmp_path / "state.pt")
        resumed = loader()
        resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True)["loader"])
        assert_same_batches(take(resumed, 80 - k), straight[k:])
    assert resumed.epoch >= 1


def test_null_and_empty_texts_and_the_val_split(shakespeare, tokenizer, tmp_path):
    speeches = shakespeare_speeches()[:300]
    texts = speeches[:100] + [None, ""] + speeches[100:200] + [None] + speeches[200:]
    source = tmp_path / "mixed.parquet"
    pq.write_table(pa.table({"body": pa.array(texts, pa.string())}), source, row_group_size=70)
    manifest = tokenize([str(source)], tokenizer, str(tmp_path / "TOK"), text_column="body", progress=False)
    assert manifest["documents"] == len(texts) - 2 and manifest["shards"][0]["rows"] == len(texts)
    for split in ("train", "val"):  # a fraction other than the default: the hashes are stored, not a split
        options = dict(split=split, val_fraction=0.3, epochs=1, seed=1, num_workers=0)
        a = TokenLoader([str(source)], tokenizer, 16, 2, text_column="body", **options)
        b = TokenLoader([str(tmp_path / "TOK")], tokenizer, 16, 2, **options)
        batches = list(b)
        assert_same_batches(list(a), batches) and a.dropped_tail_tokens == b.dropped_tail_tokens
        kept = [t for t in texts if t is not None and in_val_split(t, 0.3) == (split == "val")]
        got = sum(x.numel() + x.shape[0] for x, _ in batches) + len(b.dropped_tail_tokens[0])
        assert got == len(packed_stream(kept, tokenizer))


def test_another_tokenizer_is_refused_in_one_line(shakespeare, tokens, tmp_path, capsys):
    other = train_tokenizer([str(shakespeare)], 300, str(tmp_path / "other.json"))
    with pytest.raises(UsageError, match="tokenized with another tokenizer"):
        TokenLoader([str(tokens)], other, 16, 2)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tokens), "--tokenizer", other, "--out", str(run), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and other in err and str(tokens) in err and not run.exists()
    assert main(["tokenize", str(shakespeare), "--tokenizer", other, "--out", str(tokens)]) == 2
    assert "another tokenizer" in capsys.readouterr().err


def test_a_rerun_skips_finished_shards(shakespeare, tokenizer, tmp_path, capsys):
    out = tmp_path / "TOK"
    assert main(["tokenize", str(shakespeare), "--tokenizer", tokenizer, "--out", str(out)]) == 0
    layout = TokenLayout(out)
    manifest = layout.manifest.read_text()
    written = {path: path.stat().st_mtime_ns for path in layout.shards.iterdir()}
    layout.entry("00001").unlink()  # as a run killed before shard 1's entry leaves it
    layout.manifest.unlink()
    capsys.readouterr()
    assert main(["tokenize", str(shakespeare), "--tokenizer", tokenizer, "--out", str(out), "--workers", "2"]) == 0
    assert "tokenizing 1 of 3 shard(s)" in capsys.readouterr().err
    [step] = json.loads((layout.logs / MERGED_STATS_FILE).read_text())  # the executor ran one task: shard 1
    counters = {k: v["total"] if isinstance(v, dict) else v for k, v in step["stats"].items()}
    assert counters["shards"] == 1 and counters["tokens"] == json.loads(layout.entry("00001").read_text())["tokens"]
    assert layout.manifest.read_text() == manifest
    rewritten = {path.name for path in written if path.stat().st_mtime_ns != written[path]}
    assert rewritten == {"00001.bin", "00001.offsets.npy", "00001.hashes.npy", "00001.json"}
    assert main(["tokenize", str(shakespeare), "--tokenizer", tokenizer, "--out", str(out)]) == 0
    assert "tokenizing 0 of 3 shard(s)" in capsys.readouterr().err


def test_a_truncated_token_file_is_refused(shakespeare, tokenizer, tmp_path):
    out = tmp_path / "TOK"
    tokenize([str(shakespeare)], tokenizer, str(out), progress=False)
    path = TokenLayout(out).tokens("00002")
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(UsageError, match="00002.bin is missing or not the size"):
        TokenLoader([str(out)], tokenizer, 16, 2)


def test_curate_tokenize_train_eval(tmp_path, capsys):
    shards = str(samples_run())  # `mdr run refinedweb --input data_samples --output OUT`
    tokenizer, out, run = str(tmp_path / "tokenizer.json"), tmp_path / "TOK", tmp_path / "run"
    assert main(["tokenizer", "train", "--data", shards, "--vocab-size", "600", "--out", tokenizer]) == 0
    assert main(["tokenize", shards, "--tokenizer", tokenizer, "--out", str(out)]) == 0
    assert main(["train", "--data", str(out), "--out", str(run), "--preset", "tiny", "--max-steps", "4",
                 "--batch-size", "2", "--seq-len", "32", "--val-fraction", "0.2", "--eval-interval", "4",
                 "--eval-batches", "2", "--no-progress"]) == 0  # no --tokenizer: the token directory's
    assert load_tokenizer(str(TrainLayout(run).tokenizer)).sha256 == load_tokenizer(tokenizer).sha256
    manifest = json.loads(TrainLayout(run).manifest.read_text())
    sources = [shard["source"] for shard in json.loads(TokenLayout(out).manifest.read_text())["shards"]]
    assert manifest["shards"] == sources and manifest["config"]["data"] == [str(out)]
    val = [json.loads(line) for line in TrainLayout(run).metrics.read_text().splitlines()
           if json.loads(line)["split"] == "val"][-1]
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(out), "--json", "--max-batches", "2"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert "the held-out split" in captured.err  # --split auto knows the token files' sources as trained on
    assert metrics["nll"] == pytest.approx(val["nll"])
    assert main(["eval", str(run), "--data", shards, "--json", "--max-batches", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["nll"] == pytest.approx(metrics["nll"])
