"""What the sweeps built on training runs share (`mdr ablate`, `mdr scale`): their runs trained one after another or
several CPU runs side by side, a finished run known by its result.json and checked against the settings asked for,
texts written as Parquet shards, each training corpus tokenized once into token files that all its runs read, and a
whole evaluation set evaluated at the end of a run.

Nothing here imports torch (only train/ may, tests/test_packaging.py): the train modules it calls are imported inside
the functions that need them, so the verbs register without torch.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import random
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mdr.atomic import atomic_file
from mdr.errors import UsageError
from mdr.layout import TokenLayout


def check_parallel(parallel: int, device: str) -> None:
    """--parallel N: at least 1, and more than 1 only on the CPU (`device` as train/cli.py's check_device passed it:
    "cpu", "cuda", "cuda:N")."""
    if parallel < 1:
        raise UsageError(f"--parallel must be at least 1, got {parallel}")
    if parallel > 1 and device.split(":")[0] != "cpu":
        # one accelerator is not shared well by several trainings: its memory and its queue are one
        raise UsageError(f"--parallel {parallel} runs CPU trainings side by side: with --device {device} leave it "
                         "out (the runs go one at a time)")


def run_pending(work: Callable, pending: Mapping, parallel: int, done: Callable[[object, int], None] | None = None
                ) -> None:
    """Calls work(*arguments) for each key → arguments of `pending`, one after another, or `parallel` at a time,
    each in a spawned process of its own with an equal share of this process's cores (a forked one would inherit
    torch's thread pool in whatever state it is). `work` must be a module-level function and write what it
    produces itself (a run directory and its result.json). done(key, finished) is called in this process as each
    call returns. The first failure is raised here once the calls under way end; calls not started stay so, and a
    rerun of the sweep makes them."""
    finished = 0
    if parallel == 1:
        for key, arguments in pending.items():
            work(*arguments)
            finished += 1
            if done is not None:
                done(key, finished)
        return
    from mdr.train.distributed import use_threads  # torch, in the train package alone (tests/test_packaging.py)

    threads = max(1, len(os.sched_getaffinity(0)) // parallel)
    with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn"),
                             initializer=use_threads, initargs=(threads,)) as pool:
        futures = {pool.submit(work, *arguments): key for key, arguments in pending.items()}
        try:
            for future in as_completed(futures):
                future.result()
                finished += 1
                if done is not None:
                    done(futures[future], finished)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def check_earlier_results(results: Mapping[object, Path], train_configs: Mapping, identity: Callable[[dict], dict],
                          root: Path, what: Callable[[object], str]) -> None:
    """A result.json already in the sweep's directory must come from the run this invocation would train (compared
    by identity(train_config as a dict), stored under "train_config"): else the directory is another sweep's."""
    for key, train_config in train_configs.items():
        path = results[key]
        if path.is_file():
            stored = json.loads(path.read_text())["train_config"]
            if identity(stored) != identity(dataclasses.asdict(train_config)):
                raise UsageError(f"{root} holds a run of {what(key)} with other settings ({path}): give another "
                                 "--out, or the same settings")


def write_texts(path: Path, texts: list[str], ids: list[str] | None = None) -> None:
    """A Parquet shard of (id, text), written whole then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {"id": ids or [str(i) for i in range(len(texts))], "text": texts}
    with atomic_file(path) as handle:
        pq.write_table(pa.table(columns), handle)


def tokenize_once(shards: list[Path], tokenizer_path: Path, out: Path, progress: bool) -> dict:
    """Token directory `out` of `shards` made with the tokenizer at `tokenizer_path` (train/tokenize.py, `mdr
    tokenize`, on the local executor in this process), which every run of the sweep then trains from: the corpus is
    tokenized once, not again inside each run's loader (the batches are the same, bit for bit: train/data.py).
    Returns its manifest. When `out` holds those shards' tokens made with that tokenizer already (a rerun of the
    sweep), nothing is written (tokenize's own rerun of a finished directory); an interrupted tokenization resumes
    where it stopped (tokenize skips the shards it finished). Token files of another tokenizer (the sweep refitted its
    tokenizer since), or that do not check out, are the sweep's own derived files: removed and made again."""
    import shutil

    from mdr.train.data import read_token_manifest
    from mdr.train.tokenize import tokenize
    from mdr.train.tokenizer import load_tokenizer

    made = TokenLayout(out).manifest.is_file()
    if made:
        try:
            read_token_manifest(out, load_tokenizer(str(tokenizer_path)))
        except UsageError:  # another tokenizer, or token files missing or cut short
            shutil.rmtree(out)
            made = False
    # one task per shard, as many at a time as there are cores (tokenize's default); a directory that checks out is
    # only confirmed, without a word
    return tokenize([str(path) for path in shards], str(tokenizer_path), str(out), progress=progress and not made)


def write_eval_set(path: Path, name: str, texts: list[str]) -> None:
    """An eval set's documents in a random order seeded by its name: its first batches, which learning curves
    evaluate, are then a sample of the whole set; the final evaluation (evaluate_file) reads all of it."""
    order = list(range(len(texts)))
    random.Random(f"eval:{name}").shuffle(order)
    write_texts(path, [texts[i] for i in order], [str(i) for i in order])


def evaluate_file(model, tokenizer_path: str | Path, path: str | Path, batch_size: int, device: str,
                  seed: int = 0) -> dict:
    """train/evaluate.py's metrics of `model` on every document of one Parquet file, in file order (evaluate()
    runs without gradients)."""
    from mdr.train.data import TokenLoader
    from mdr.train.evaluate import evaluate, token_byte_lengths

    token_bytes = token_byte_lengths(str(tokenizer_path), model.config.vocab_size)
    loader = TokenLoader([str(path)], str(tokenizer_path), model.config.block_size, batch_size, seed=seed,
                         split="train", val_fraction=0.0, epochs=1, shuffle=False)
    return evaluate(model, loader, token_bytes, None, device)


def note(text: str, enabled: bool) -> None:
    """A progress line of a sweep on stderr."""
    if enabled:
        print(text, file=sys.stderr)
