"""Weighted mixtures (`mdr train --data web=OUT:0.7 --data notes=DIR:0.3`, train/mixture.py): the draw follows the
weights to within one sequence, each source's rows are exactly what its own loader gives (so each document once per
epoch of the source, across ranks and workers), a restored mixture gives the uninterrupted batches, a resumed run
the uninterrupted model; the tokens and epochs of each source in the records, and `mdr eval` per source and
overall. The two sources come from this repository: the curated sample run and data_samples/texts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mdr.cli import main
from mdr.errors import UsageError
from mdr.layout import TrainLayout
from mdr.train.cli import parse_sources
from mdr.train.data import TokenLoader, in_val_split
from mdr.train.mixture import MixtureLoader, blend_next, split_tokens
from mdr.train.tokenize import tokenize
from mdr.train.tokenizer import load_tokenizer, train_tokenizer
from mdr.train.trainer import TrainConfig, train
from tests.train.runs import assert_same_state
from tests.train.shards import SAMPLES, samples_run
from tests.train.test_data import assert_same_batches, corpus_texts, packed_stream, take, windows

SEQ_LEN, BATCH = 16, 4


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """web: the curated sample run's documents (18); notes: data_samples/texts as one Parquet file of 2 row groups."""
    notes = tmp_path_factory.mktemp("notes") / "notes.parquet"
    texts = [path.read_text() for path in sorted((SAMPLES / "texts").glob("*.txt"))]
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), notes, row_group_size=16)
    return {"web": [str(samples_run())], "notes": [str(notes)]}


@pytest.fixture(scope="module")
def tokenizer(sources, tmp_path_factory):
    return train_tokenizer([p for paths in sources.values() for p in paths], 300,
                           str(tmp_path_factory.mktemp("tok") / "tokenizer.json"))


def test_the_draw_keeps_every_source_within_one_sequence_of_its_share():
    weights = [0.5, 0.3, 0.2]
    counts = [0, 0, 0]
    for k in range(1, 1001):
        counts[blend_next(weights, counts)] += 1
        assert all(abs(count - w * k) < 1 for count, w in zip(counts, weights)), (k, counts)
    assert counts == [500, 300, 200]
    assert blend_next([0.5, 0.5], [0, 0]) == 0 and blend_next([0.5, 0.5], [1, 0]) == 1  # ties to the first


def test_data_items_as_sources():
    assert parse_sources(["web=out/:0.7", "books=s3://b/x/*.parquet:3"]) == (
        {"web": ["out/"], "books": ["s3://b/x/*.parquet"]}, {"web": 0.7, "books": 3.0})
    assert parse_sources(["data/lang=en/", "shards/"]) is None  # a Hive partition stays a path
    assert parse_sources(["web=out/", "books=dir"], weighted=False) == (
        {"web": ["out/"], "books": ["dir"]}, {"web": 1.0, "books": 1.0})
    for items, message in ((["web=out:0.7", "shards/"], "give every source as NAME=SHARDS:WEIGHT"),
                           (["web=a:1", "web=b:1"], "given twice"),
                           (["web=a:0", "books=b:1"], "above 0"),
                           (["web=a:0.5", "books=b"], "NAME=SHARDS:WEIGHT")):
        with pytest.raises(UsageError, match=message):
            parse_sources(items)


def _rows(batches) -> list[np.ndarray]:
    return windows(batches)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("workers", [0, 2])
def test_each_sources_rows_are_its_own_loaders_over_2_ranks(sources, tokenizer, workers):
    """The mixture only interleaves: on each rank, the rows taken from a source are, in order, the rows a loader of
    that source alone gives, which holds each document once per epoch (tests/train/test_data.py)."""
    weights = {"web": 0.7, "notes": 0.3}
    for rank in range(2):
        mixture = MixtureLoader(sources, weights, tokenizer, SEQ_LEN, BATCH, rank=rank, world_size=2,
                                num_workers=workers, seed=3)
        rows = _rows(take(mixture, 40))
        assert sum(mixture.counts) == len(rows) == 160 and abs(mixture.counts[0] - 0.7 * 160) < 1
        drawn, counts = {"web": [], "notes": []}, [0, 0]
        for row in rows:  # replay the draw: which source each row came from
            index = blend_next(mixture.weights, counts)
            counts[index] += 1
            drawn[mixture.names[index]].append(row)
        for name, paths in sources.items():
            alone = TokenLoader(paths, tokenizer, SEQ_LEN, 1, rank=rank, world_size=2, num_workers=workers, seed=3)
            expected = _rows(take(alone, len(drawn[name])))
            assert all(map(np.array_equal, drawn[name], expected)), name
        assert mixture.source_tokens() == {"web": 112 * SEQ_LEN * 2, "notes": 48 * SEQ_LEN * 2}


def test_one_epoch_of_a_source_holds_each_of_its_documents_once(sources, tokenizer):
    """One rank, one worker: source notes' rows, laid end to end, begin with its split's every document once."""
    mixture = MixtureLoader(sources, {"web": 1, "notes": 1}, tokenizer, SEQ_LEN, BATCH, seed=1, val_fraction=0.1)
    epoch = split_tokens(sources["notes"], load_tokenizer(tokenizer), "train", 0.1)
    rows = _rows(take(mixture, 2 * epoch // (SEQ_LEN + 1) // BATCH + 4))
    counts, stream = [0, 0], []
    for row in rows:
        index = blend_next(mixture.weights, counts)
        counts[index] += 1
        if mixture.names[index] == "notes":
            stream.append(row)
    stream = np.concatenate(stream)[:epoch]
    texts = [t for t in corpus_texts(sources["notes"]) if not in_val_split(t, 0.1)]
    eos = load_tokenizer(tokenizer).eos_id
    documents = sorted(tuple(d) for d in np.split(stream, np.flatnonzero(stream == eos) + 1)[:-1])
    expected = packed_stream(texts, tokenizer)
    assert documents == sorted(tuple(d) for d in np.split(expected, np.flatnonzero(expected == eos) + 1)[:-1])


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("workers", [0, 2])
def test_a_restored_mixture_gives_the_uninterrupted_batches(sources, tokenizer, tmp_path, workers):
    def loader(weights=None):
        return MixtureLoader(sources, weights or {"web": 0.7, "notes": 0.3}, tokenizer, 64, BATCH, rank=1,
                             world_size=2, num_workers=workers, seed=5)

    straight = take(loader(), 90)  # past the end of an epoch of web on this rank
    first = loader()
    assert_same_batches(take(first, 23), straight[:23])
    torch.save({"loader": first.state_dict()}, tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)["loader"]
    resumed = loader()
    resumed.load_state_dict(state)
    assert_same_batches(take(resumed, 67), straight[23:])
    assert resumed.loaders["web"].epoch >= 1
    with pytest.raises(UsageError, match="resume with the same sources and weights"):
        loader({"web": 0.5, "notes": 0.5}).load_state_dict(state)


def test_split_tokens_of_token_files_and_of_parquet_agree(sources, tokenizer, tmp_path):
    tokens = tmp_path / "TOK"
    tokenize(sources["notes"], tokenizer, str(tokens), workers=1, progress=False)
    vocab = load_tokenizer(tokenizer)
    for split in ("train", "val"):
        assert split_tokens([str(tokens)], vocab, split, 0.2) == split_tokens(sources["notes"], vocab, split, 0.2) > 0


SMALL = dict(preset="tiny", seq_len=SEQ_LEN, batch_size=BATCH, val_fraction=0.2, eval_interval=3, eval_batches=2,
             checkpoint_interval=1000, log_interval=1, progress=False, n_layer=1, n_embd=32, n_head=2)


def _mixture_config(sources, tokenizer, out, **options) -> TrainConfig:
    return TrainConfig(data=[p for paths in sources.values() for p in paths], out=str(out), tokenizer=tokenizer,
                       sources=sources, weights={"web": 0.7, "notes": 0.3}, **{**SMALL, **options})


def test_a_mixture_run_records_each_sources_tokens_epochs_and_held_out_metrics(sources, tokenizer, tmp_path):
    torch.set_num_threads(1)
    result = train(_mixture_config(sources, tokenizer, tmp_path / "run", max_steps=6))
    records = [json.loads(line) for line in TrainLayout(tmp_path / "run").metrics.read_text().splitlines()]
    manifest = json.loads(TrainLayout(tmp_path / "run").manifest.read_text())
    vocab = load_tokenizer(tokenizer)
    epoch = {name: split_tokens(paths, vocab, "train", 0.2) for name, paths in sources.items()}
    assert {name: s["epoch_tokens"] for name, s in manifest["sources"].items()} == epoch
    assert manifest["sources"]["web"]["weight"] == pytest.approx(0.7)
    last = [r for r in records if r["split"] == "train"][-1]
    rows = 6 * BATCH  # sequences drawn: 17 from web, 7 from notes (each within one of its share)
    assert {n: s["tokens"] for n, s in last["sources"].items()} == {"web": 17 * SEQ_LEN, "notes": 7 * SEQ_LEN}
    assert sum(s["tokens"] for s in last["sources"].values()) == last["tokens"] == rows * SEQ_LEN
    assert last["sources"]["notes"]["epochs"] == pytest.approx(7 * (SEQ_LEN + 1) / epoch["notes"])
    assert result["mixture"] == last["sources"]
    val = [r for r in records if r["split"] == "val"][-1]
    assert set(val["sources"]) == {"web", "notes"}
    assert val["tokens"] == sum(s["tokens"] for s in val["sources"].values())
    pooled = sum(s["nll"] * s["tokens"] for s in val["sources"].values()) / val["tokens"]
    assert val["nll"] == pytest.approx(pooled, rel=1e-9)


def test_a_resumed_mixture_run_is_the_uninterrupted_run(sources, tokenizer, tmp_path):
    torch.set_num_threads(1)
    train(_mixture_config(sources, tokenizer, tmp_path / "straight", max_steps=8))
    train(_mixture_config(sources, tokenizer, tmp_path / "resumed", max_steps=8), stop_at=3)
    train(_mixture_config(sources, tokenizer, tmp_path / "resumed", max_steps=8, resume=True))
    assert_same_state(torch.load(TrainLayout(tmp_path / "straight").checkpoint, weights_only=True),
                      torch.load(TrainLayout(tmp_path / "resumed").checkpoint, weights_only=True))
    with pytest.raises(UsageError, match="cannot resume with a different weights"):
        train(TrainConfig(**{**_mixture_config(sources, tokenizer, tmp_path / "resumed", max_steps=9).__dict__,
                             "weights": {"web": 0.5, "notes": 0.5}, "resume": True}))


def test_mdr_train_and_eval_on_a_mixture_from_the_command_line(sources, tokenizer, tmp_path, capsys):
    tokens = tmp_path / "TOK"  # a source may be a token directory: tokenized once, read by the same loader
    tokenize(sources["notes"], tokenizer, str(tokens), workers=1, progress=False)
    run = tmp_path / "run"
    web, notes = f"web={sources['web'][0]}:0.7", f"notes={tokens}:0.3"
    shape = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--seq-len", str(SEQ_LEN), "--batch-size", "4"]
    assert main(["train", "--data", web, "--data", notes, "--out", str(run), "--max-steps", "4",
                 "--val-fraction", "0.2", "--eval-interval", "4", "--eval", f"tok={tokens}", "--no-progress",
                 *shape]) == 0
    capsys.readouterr()
    records = [json.loads(line) for line in TrainLayout(run).metrics.read_text().splitlines()]
    assert [r["step"] for r in records if r.get("set") == "tok"] == [4]  # an eval set may be a token directory
    assert main(["eval", str(run), "--data", f"web={sources['web'][0]}", f"notes={tokens}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["sources"]) == {"web", "notes"}
    assert out["tokens"] == out["sources"]["web"]["tokens"] + out["sources"]["notes"]["tokens"]
    pooled = sum(s["nll"] * s["tokens"] for s in out["sources"].values()) / out["tokens"]
    assert out["nll"] == pytest.approx(pooled, rel=1e-9)
    # each source alone gives its own line's numbers
    assert main(["eval", str(run), "--data", sources["web"][0], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nll"] == pytest.approx(out["sources"]["web"]["nll"], rel=1e-9)
    assert main(["eval", str(run), "--data", f"web={sources['web'][0]}", f"notes={tokens}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("overall  nll ") and {line.split()[0] for line in lines[1:]} == {"web", "notes"}


@pytest.mark.parametrize("data, message", [
    (["web=OUT:0.7", "plain/"], "give every source as NAME=SHARDS:WEIGHT"),
    (["web=OUT:0.7", "notes=/nonexistent/x:0.3"], "source notes: "),
])
def test_mixture_mistakes_are_one_line_and_write_nothing(sources, tmp_path, capsys, data, message):
    data = [item.replace("OUT", sources["web"][0]) for item in data]
    run = tmp_path / "run"
    assert main(["train", *[arg for item in data for arg in ("--data", item)], "--out", str(run),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not run.exists()


@pytest.mark.slow
def test_ddp_two_ranks_draw_the_mixture_a_one_process_reference_draws(sources, tokenizer, tmp_path):
    """torchrun 2 ranks (gloo) on a mixture against one process stepping on both ranks' mixture batches as two
    micro-batches: the same losses, and each source's tokens counted over both ranks."""
    from mdr.train.model import GPT, config_for
    from mdr.train.trainer import make_optimizer, make_scheduler, train_step

    run, steps = tmp_path / "ddp", 5
    shape = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--seq-len", str(SEQ_LEN), "--batch-size", str(BATCH)]
    command = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc-per-node", "2", "-m", "mdr",
               "train", "--data", f"web={sources['web'][0]}:0.7", "--data", f"notes={sources['notes'][0]}:0.3",
               "--out", str(run), "--tokenizer", tokenizer, "--max-steps", str(steps), "--lr", "1e-3",
               "--val-fraction", "0.2", "--eval-interval", "1000", "--log-interval", "1", "--no-progress", *shape]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]

    config = _mixture_config(sources, tokenizer, tmp_path / "unused", max_steps=steps, lr=1e-3, eval_interval=1000)
    torch.manual_seed(config.seed)
    model = GPT(config_for("tiny", load_tokenizer(tokenizer).vocab_size, SEQ_LEN, 1, 2, 32))
    optimizer = make_optimizer(model, config, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, config)
    ranks = [iter(MixtureLoader(sources, config.weights, tokenizer, SEQ_LEN, BATCH, rank=r, world_size=2,
                                val_fraction=0.2)) for r in (0, 1)]
    reference = [train_step(model, optimizer, scheduler, [next(r) for r in ranks], config, torch.device("cpu"))
                 for _ in range(steps)]
    logged = [r for r in map(json.loads, TrainLayout(run).metrics.read_text().splitlines()) if r["split"] == "train"]
    for row, (loss, _) in zip(logged, reference, strict=True):
        assert row["loss"] == pytest.approx(loss.item(), rel=1e-5)
    rows = steps * BATCH  # per rank: 14 from web, 6 from notes
    assert {n: s["tokens"] for n, s in logged[-1]["sources"].items()} == {"web": 14 * SEQ_LEN * 2,
                                                                         "notes": 6 * SEQ_LEN * 2}
    assert sum(s["tokens"] for s in logged[-1]["sources"].values()) == rows * SEQ_LEN * 2 == logged[-1]["tokens"]
