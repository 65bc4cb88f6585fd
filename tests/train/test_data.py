"""The streaming loader: packing, every token exactly once across ranks and workers, exact resume, seeded order,
a stable train/val split, and shards read through fsspec (file:// and a local HTTP server)."""

from __future__ import annotations

import functools
import http.server
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from mdr.errors import UsageError
from mdr.train.data import TokenLoader, in_val_split, list_pieces
from mdr.train.tokenizer import load_tokenizer, resolve_parquet_files, train_tokenizer
from tests.train.shards import SHAKESPEARE, samples_run, shakespeare_shards


@pytest.fixture(scope="module")
def samples():
    return samples_run()


@pytest.fixture(scope="module")
def shakespeare():
    if not SHAKESPEARE.is_file():
        pytest.skip(f"real text not present at {SHAKESPEARE}")
    return shakespeare_shards()


@pytest.fixture(scope="module")
def samples_tokenizer(samples, tmp_path_factory):
    return train_tokenizer([str(samples)], 600, str(tmp_path_factory.mktemp("tok") / "tokenizer.json"))


@pytest.fixture(scope="module")
def shakespeare_tokenizer(shakespeare, tmp_path_factory):
    return train_tokenizer([str(shakespeare)], 400, str(tmp_path_factory.mktemp("tok") / "tokenizer.json"))


def corpus_texts(data) -> list[str]:
    """Every non-null text of the shards, in file and row order."""
    return [t for path in resolve_parquet_files(data) for t in pq.read_table(path, columns=["text"])["text"].to_pylist()
            if t is not None]


def packed_stream(texts: list[str], tokenizer_path: str) -> np.ndarray:
    """The corpus as the loader must pack it: each document's tokens followed by end-of-document."""
    tokenizer = load_tokenizer(tokenizer_path)
    return np.array([i for text in texts for i in tokenizer.encode(text) + [tokenizer.eos_id]], dtype=np.int64)


def windows(batches) -> list[np.ndarray]:
    """The seq_len + 1 token windows of (x, y) batches, after checking y is x shifted by one."""
    out = []
    for x, y in batches:
        assert x.dtype == y.dtype == torch.long and x.shape == y.shape
        assert torch.equal(x[:, 1:], y[:, :-1])
        out.extend(np.concatenate([x.numpy(), y[:, -1:].numpy()], axis=1))
    return out


def counts(tokens, vocab_size: int) -> np.ndarray:
    return np.bincount(np.asarray(tokens, dtype=np.int64).ravel(), minlength=vocab_size)


def one_epoch(data, tokenizer, *, ranks: int, workers: int, seq_len: int, batch_size: int, **options):
    """All ranks' windows over one epoch, and the dropped tails by global worker."""
    all_windows, tails = [], {}
    for rank in range(ranks):
        loader = TokenLoader([str(data)], tokenizer, seq_len, batch_size, rank=rank, world_size=ranks,
                             num_workers=workers, epochs=1, **options)
        all_windows += windows(loader)
        assert set(loader.dropped_tail_tokens) == {rank * max(1, workers) + w for w in range(max(1, workers))}
        tails.update(loader.dropped_tail_tokens)
    return all_windows, tails


def assert_exactly_once(all_windows, tails, expected: np.ndarray, vocab_size: int, seq_len: int, batch_size: int,
                        global_workers: int):
    """Windows and tails together hold every token of `expected` exactly once; each tail is under one batch."""
    assert len(tails) == global_workers
    assert all(len(tail) < batch_size * (seq_len + 1) for tail in tails.values())
    yielded = counts(np.array(all_windows).ravel() if all_windows else [], vocab_size)
    dropped = counts([t for tail in tails.values() for t in tail], vocab_size)
    missing_or_twice = np.flatnonzero(yielded + dropped != counts(expected, vocab_size))
    assert missing_or_twice.size == 0, f"token ids seen too often or too rarely: {missing_or_twice[:10]}"
    assert sum(map(len, all_windows)) + sum(map(len, tails.values())) == len(expected)


def assert_documents_whole(all_windows, texts: list[str], tokenizer_path: str):
    """Inside every window, each run of tokens between two end-of-document tokens is a whole corpus document."""
    tokenizer = load_tokenizer(tokenizer_path)
    documents = {tuple(tokenizer.encode(text)) for text in texts}
    inner = 0
    for window in all_windows:
        ends = np.flatnonzero(window == tokenizer.eos_id)
        for start, end in zip(ends[:-1] + 1, ends[1:]):
            assert tuple(window[start:end].tolist()) in documents
            inner += 1
    assert inner > 0, "no window holds a whole document: make the windows longer"


def test_packing_is_the_corpus_stream_in_order(samples, samples_tokenizer):
    # One worker, no shuffle: windows then the tail are exactly the documents in file order, each ended by eos.
    loader = TokenLoader([str(samples)], samples_tokenizer, 32, 2, shuffle=False, epochs=1, val_fraction=0.0)
    got = np.concatenate(windows(loader) + [np.array(loader.dropped_tail_tokens[0], dtype=np.int64)])
    assert np.array_equal(got, packed_stream(corpus_texts(samples), samples_tokenizer))
    assert len(loader.dropped_tail_tokens[0]) < 2 * 33


@pytest.mark.filterwarnings("ignore:This DataLoader will create 3 worker processes")
@pytest.mark.parametrize("ranks,workers", [(1, 0), (2, 2), (1, 3)])
def test_every_token_exactly_once_across_ranks_and_workers(shakespeare, shakespeare_tokenizer, ranks, workers):
    seq_len, batch_size = 64, 4
    texts = [t for t in corpus_texts(shakespeare) if not in_val_split(t, 0.01)]
    expected = packed_stream(texts, shakespeare_tokenizer)
    vocab = load_tokenizer(shakespeare_tokenizer).vocab_size
    all_windows, tails = one_epoch(shakespeare, shakespeare_tokenizer, ranks=ranks, workers=workers, seq_len=seq_len,
                                   batch_size=batch_size, seed=7)
    assert_exactly_once(all_windows, tails, expected, vocab, seq_len, batch_size, ranks * max(1, workers))
    assert_documents_whole(all_windows, texts, shakespeare_tokenizer)


def test_exactly_once_on_mdr_run_shards(samples, samples_tokenizer):
    # The run's few row groups are cut into row slices so that 2 ranks × 2 workers all get documents.
    files = resolve_parquet_files(samples)
    assert len(list_pieces(files)) < 4 <= len(list_pieces(files, min_pieces=4))
    texts = [t for t in corpus_texts(samples) if not in_val_split(t, 0.01)]
    all_windows, tails = one_epoch(samples, samples_tokenizer, ranks=2, workers=2, seq_len=1023, batch_size=1)
    expected = packed_stream(texts, samples_tokenizer)
    assert_exactly_once(all_windows, tails, expected, load_tokenizer(samples_tokenizer).vocab_size, 1023, 1, 4)
    assert_documents_whole(all_windows, texts, samples_tokenizer)


@pytest.fixture(scope="module")
def two_documents(samples, tmp_path_factory):
    import pyarrow as pa

    path = tmp_path_factory.mktemp("two") / "two.parquet"
    pq.write_table(pa.table({"text": corpus_texts(samples)[:2]}), path)
    return path


@pytest.mark.filterwarnings("ignore:This DataLoader will create 3 worker processes")
def test_a_worker_without_documents_does_not_block_the_others(two_documents, samples_tokenizer):
    texts = corpus_texts(two_documents)
    with pytest.warns(UserWarning, match="2 piece.* for 3 loader workers: 1 worker"):
        all_windows, tails = one_epoch(two_documents, samples_tokenizer, ranks=1, workers=3, seq_len=8, batch_size=1,
                                       val_fraction=0.0)
    assert tails[2] == []
    expected = packed_stream(texts, samples_tokenizer)
    assert_exactly_once(all_windows, tails, expected, load_tokenizer(samples_tokenizer).vocab_size, 8, 1, 3)


def test_a_rank_without_data_is_refused(two_documents, samples_tokenizer):
    with pytest.raises(UsageError, match="rank 2 gets no data"):
        TokenLoader([str(two_documents)], samples_tokenizer, 16, 2, rank=2, world_size=3)


def test_zero_and_one_worker_give_the_same_batches(shakespeare, shakespeare_tokenizer):
    def first(workers):
        loader = TokenLoader([str(shakespeare)], shakespeare_tokenizer, 32, 4, num_workers=workers, seed=3)
        return [b for _, b in zip(range(40), loader)]

    for (x0, y0), (x1, y1) in zip(first(0), first(1), strict=True):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)


def take(loader, n):
    return [b for _, b in zip(range(n), loader)]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for i, ((xa, ya), (xb, yb)) in enumerate(zip(a, b)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb), f"batch {i} differs"


@pytest.mark.filterwarnings("ignore:This DataLoader will create 3 worker processes")
@pytest.mark.parametrize("workers", [0, 2, 3])
def test_resume_gives_the_batches_an_uninterrupted_loader_gives(shakespeare, shakespeare_tokenizer, tmp_path, workers):
    # Rank 1 of 2 holds about 300k tokens of the 21 row groups, about 150 batches: 200 batches cross an epoch.
    def loader():
        return TokenLoader([str(shakespeare)], shakespeare_tokenizer, 64, 32, rank=1, world_size=2,
                           num_workers=workers, seed=5)

    straight = take(loader(), 200)
    assert len({b[0].numpy().tobytes() for b in straight}) == len(straight)
    for k in (1, 7, 170):
        first = loader()
        assert_same_batches(take(first, k), straight[:k])
        torch.save({"loader": first.state_dict()}, tmp_path / "state.pt")
        resumed = loader()
        resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True)["loader"])
        assert resumed.state_dict() == first.state_dict()
        assert_same_batches(take(resumed, 200 - k), straight[k:])
    assert loader().state_dict()["epoch"] == 0 and resumed.epoch >= 1


@pytest.fixture(scope="module")
def aligned_shards(shakespeare_tokenizer, tmp_path_factory):
    """2 files × 3 row groups of speeches, each row group padded with empty documents (eos alone) to a multiple of
    8 tokens: with 8-token windows every row group ends exactly at a batch end, the case where nothing is carried."""
    import pyarrow as pa

    from tests.train.shards import shakespeare_speeches

    tokenizer = load_tokenizer(shakespeare_tokenizer)
    speeches = iter(shakespeare_speeches())
    out = tmp_path_factory.mktemp("aligned")
    for index in range(2):
        groups = []
        for _ in range(3):
            docs = [next(speeches) for _ in range(5)]
            total = sum(len(tokenizer.encode(d)) + 1 for d in docs)
            groups.append(pa.table({"text": docs + [""] * (-total % 8)}))
        with pq.ParquetWriter(out / f"{index}.parquet", groups[0].schema) as writer:
            for group in groups:
                writer.write_table(group)
    return out


def k_worker(state: dict) -> int:
    """The worker that produced the batch after which `state` was taken."""
    return (state["next_worker"] - 1) % len(state["positions"])


def test_resume_at_batch_and_row_group_ends(aligned_shards, shakespeare_tokenizer):
    def loader(workers):
        return TokenLoader([str(aligned_shards)], shakespeare_tokenizer, 7, 1, num_workers=workers, seed=2, epochs=2,
                           val_fraction=0.0)

    assert len(list_pieces(resolve_parquet_files(str(aligned_shards)))) == 6
    for workers in (0, 2):
        straight, states = [], []
        running = loader(workers)
        for batch in running:
            straight.append(batch)
            states.append(running.state_dict())
        # Batches that end at a row group's end: position [epoch, group, rows, 0], rows >= 5 (else a speech's end).
        group_ends = [k for k, state in enumerate(states, 1)
                      if state["positions"][k_worker(state)][2] >= 5 and state["positions"][k_worker(state)][3] == 0]
        assert len(group_ends) >= 12  # 6 row groups, 2 epochs
        for k in sorted(set(group_ends) | set(range(1, len(straight), 5 if workers == 0 else 200))):
            resumed = loader(workers)
            resumed.load_state_dict(states[k - 1])
            assert_same_batches(take(resumed, 40), straight[k : k + 40])


def test_resume_near_the_end_of_a_finite_run(aligned_shards, shakespeare_tokenizer):
    def loader():
        return TokenLoader([str(aligned_shards)], shakespeare_tokenizer, 24, 2, num_workers=2, epochs=2, seed=1)

    straight = list(loader())
    interrupted = loader()
    take(interrupted, len(straight) - 3)
    resumed = loader()
    resumed.load_state_dict(interrupted.state_dict())
    assert_same_batches(list(resumed), straight[-3:])


def test_a_state_from_another_configuration_is_refused(samples, samples_tokenizer):
    state = TokenLoader([str(samples)], samples_tokenizer, 16, 2, seed=1).state_dict()
    with pytest.raises(UsageError, match="seed was 1, now 2"):
        TokenLoader([str(samples)], samples_tokenizer, 16, 2, seed=2).load_state_dict(state)
    with pytest.raises(UsageError, match="workers_per_rank"):
        TokenLoader([str(samples)], samples_tokenizer, 16, 2, seed=1, num_workers=2).load_state_dict(state)


def test_seed_sets_the_order(shakespeare, shakespeare_tokenizer):
    def epoch(seed):
        loader = TokenLoader([str(shakespeare)], shakespeare_tokenizer, 64, 16, seed=seed, epochs=1)
        return windows(loader), loader.dropped_tail_tokens[0]

    (a, tail_a), (a_again, _), (b, tail_b) = epoch(1), epoch(1), epoch(2)
    assert all(np.array_equal(u, v) for u, v in zip(a, a_again, strict=True))
    assert not np.array_equal(np.concatenate(a[:20]), np.concatenate(b[:20]))
    # A reordering, not other data: over the epoch the same tokens (the tails differ with the order).
    vocab = load_tokenizer(shakespeare_tokenizer).vocab_size
    assert np.array_equal(counts(np.concatenate(a + [np.array(tail_a, int)]), vocab),
                          counts(np.concatenate(b + [np.array(tail_b, int)]), vocab))


def test_epochs_are_reshuffled(shakespeare, shakespeare_tokenizer):
    loader = TokenLoader([str(shakespeare)], shakespeare_tokenizer, 64, 8, epochs=2)
    batches = list(loader)
    half = len(batches) // 2
    assert loader.epoch == 1
    assert not torch.equal(batches[0][0], batches[half][0])


def documents_of(loader) -> list[str]:
    """Documents of a one-worker, unshuffled, one-epoch loader, read back from its windows and tail."""
    tokens = np.concatenate(windows(loader) + [np.array(loader.dropped_tail_tokens[0], dtype=np.int64)])
    ends = np.flatnonzero(tokens == loader.eos_id)
    return [loader.tokenizer.decode(tokens[start:end].tolist()) for start, end in zip(np.r_[0, ends[:-1] + 1], ends)]


def test_train_and_val_are_disjoint_and_stable_across_worker_counts(shakespeare, shakespeare_tokenizer):
    fraction = 0.2
    split = {name: documents_of(TokenLoader([str(shakespeare)], shakespeare_tokenizer, 64, 8, split=name,
                                            val_fraction=fraction, shuffle=False, epochs=1))
             for name in ("train", "val")}
    texts = corpus_texts(shakespeare)
    assert split["train"] == [t for t in texts if not in_val_split(t, fraction)]
    assert split["val"] == [t for t in texts if in_val_split(t, fraction)]
    assert not set(split["train"]) & set(split["val"])
    assert 0.15 < len(split["val"]) / len(texts) < 0.25
    # The same val tokens whatever the ranks and workers.
    vocab = load_tokenizer(shakespeare_tokenizer).vocab_size
    expected = packed_stream(split["val"], shakespeare_tokenizer)
    for ranks, workers in ((1, 0), (2, 2)):
        all_windows, tails = one_epoch(shakespeare, shakespeare_tokenizer, ranks=ranks, workers=workers, seq_len=64,
                                       batch_size=8, split="val", val_fraction=fraction)
        assert_exactly_once(all_windows, tails, expected, vocab, 64, 8, ranks * max(1, workers))


def test_resolve_parquet_files(samples, shakespeare, tmp_path):
    kept = sorted(str(p) for p in (samples / "data").glob("*.parquet"))
    assert kept and any(samples.glob("*/*/*.parquet"))  # the run also wrote excluded/ and dedup Parquet files
    assert resolve_parquet_files(str(samples)) == kept  # an `mdr run` OUT: its data/ only
    files = sorted(str(p) for p in shakespeare.glob("*.parquet"))
    assert len(files) == 3
    assert resolve_parquet_files(str(shakespeare)) == files
    assert resolve_parquet_files([str(shakespeare / "*.parquet")]) == files
    assert resolve_parquet_files([files[1], files[0], files[1]]) == files[:2]
    assert resolve_parquet_files(f"file://{shakespeare}") == [f"file://{p}" for p in files]
    with pytest.raises(UsageError, match="no Parquet files found at"):
        resolve_parquet_files([str(tmp_path)])
    with pytest.raises(UsageError, match="no data given"):
        resolve_parquet_files([])


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with byte ranges, as object stores and CDNs serve them (the stdlib handler has no ranges)."""

    def log_message(self, *args):
        pass

    def send_head(self):
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not match or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        start, end = match.groups()
        first = int(start) if start else len(data) - int(end)
        last = min(int(end), len(data) - 1) if start and end else len(data) - 1
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        self.send_header("Content-Length", str(last - first + 1))
        self.end_headers()
        return io.BytesIO(data[first : last + 1])


@pytest.fixture
def http_root(shakespeare):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_RangeHandler, directory=shakespeare))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("workers", [0, 2])
def test_shards_over_http_give_the_local_batches(shakespeare, shakespeare_tokenizer, http_root, workers):
    local = sorted(p.name for p in shakespeare.glob("*.parquet"))
    urls = [f"{http_root}/{name}" for name in local]
    assert resolve_parquet_files(urls) == urls
    over_http = TokenLoader(urls, shakespeare_tokenizer, 32, 4, num_workers=workers, seed=9)
    on_disk = TokenLoader([str(shakespeare)], shakespeare_tokenizer, 32, 4, num_workers=workers, seed=9)
    assert list_pieces(urls) == list_pieces(resolve_parquet_files(str(shakespeare)))
    assert_same_batches(take(over_http, 60), take(on_disk, 60))


def test_shards_through_file_urls(shakespeare, shakespeare_tokenizer):
    by_url = TokenLoader([f"file://{shakespeare}/*.parquet"], shakespeare_tokenizer, 32, 4, num_workers=2, seed=4)
    by_path = TokenLoader([str(shakespeare)], shakespeare_tokenizer, 32, 4, num_workers=2, seed=4)
    assert_same_batches(take(by_url, 30), take(by_path, 30))


def test_missing_text_column_is_one_line(tmp_path, samples_tokenizer):
    import pyarrow as pa

    pq.write_table(pa.table({"body": ["a"]}), tmp_path / "x.parquet")
    with pytest.raises(UsageError, match="has no 'text' column"):
        TokenLoader([str(tmp_path)], samples_tokenizer, 8, 1)


def _broken_shards(tmp_path: Path, shakespeare: Path) -> dict[str, Path]:
    """Directories each holding one Parquet file that cannot be trained on, made from a real shard."""
    import pyarrow as pa

    raw = (shakespeare / "00000.parquet").read_bytes()
    cases = {"empty": b"", "truncated": raw[: len(raw) // 2], "garbage": bytes(range(256)) * 16}
    dirs = {}
    for name in [*cases, "int text", "no text"]:
        directory = tmp_path / name.replace(" ", "-")
        directory.mkdir()
        if name in cases:
            (directory / "shard.parquet").write_bytes(cases[name])
        else:
            column = "text" if name == "int text" else "body"
            pq.write_table(pa.table({column: pa.array([1, 2, 3]) if name == "int text" else ["a"]}),
                           directory / "shard.parquet")
        dirs[name] = directory
    return dirs


def test_unreadable_or_mistyped_parquet_is_one_line(shakespeare, shakespeare_tokenizer, tmp_path, capsys):
    """Empty, truncated or garbage files and a text column of ints used to end `mdr train` in a pyarrow or tokenizers
    traceback; now a one-line error (exit code 2) before the run directory is made."""
    from mdr.cli import main

    expected = {"empty": "not a readable Parquet file", "truncated": "not a readable Parquet file",
                "garbage": "not a readable Parquet file", "int text": "holds int64, not text",
                "no text": "has no 'text' column"}
    for name, directory in _broken_shards(tmp_path, shakespeare).items():
        with pytest.raises(UsageError, match=expected[name]):
            TokenLoader([str(directory)], shakespeare_tokenizer, 8, 1)
        for tokenizer in (["--tokenizer", shakespeare_tokenizer], []):  # given, or to be trained on the data
            run = tmp_path / f"run-{directory.name}"
            assert main(["train", "--data", str(directory), "--out", str(run), "--max-steps", "1", "--seq-len", "8",
                         "--no-progress", *tokenizer]) == 2, name
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and expected[name] in err, (name, err)
            assert not run.exists()


def _corrupt_row_group(shakespeare: Path, tmp_path: Path) -> Path:
    """A copy of a real shard with every row group's first page header overwritten: its footer still reads fine."""
    source = shakespeare / "00000.parquet"
    raw = bytearray(source.read_bytes())
    metadata = pq.ParquetFile(source).metadata
    for row_group in range(metadata.num_row_groups):
        start = metadata.row_group(row_group).column(0).dictionary_page_offset
        raw[start : start + 64] = b"\xff" * 64
    directory = tmp_path / "corrupt"
    directory.mkdir()
    (directory / "00000.parquet").write_bytes(bytes(raw))
    return directory


@pytest.mark.parametrize("workers", [0, 1])
def test_a_corrupt_row_group_fails_the_run_in_one_line(shakespeare, shakespeare_tokenizer, tmp_path, capsys, workers):
    """A page that cannot be decoded is found only when it is read, mid-run: the run fails with one line naming the
    file and row group (exit code 1), not with pyarrow's traceback wrapped in the DataLoader worker's."""
    from mdr.cli import main

    directory = _corrupt_row_group(shakespeare, tmp_path)
    tokenizer = ["--tokenizer", shakespeare_tokenizer] if workers else []  # and while training the tokenizer
    assert main(["train", "--data", str(directory), "--out", str(tmp_path / "run"), "--max-steps", "1",
                 "--seq-len", "8", "--batch-size", "4", "--num-workers", str(workers), "--no-progress",
                 *tokenizer]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "00000.parquet" in err and "is unreadable" in err, err
    from mdr.train.data import DataError

    loader = TokenLoader([str(directory)], shakespeare_tokenizer, 8, 1, num_workers=workers, shuffle=False)
    with pytest.raises(DataError, match=r"00000.parquet: row group 0 is unreadable: Couldn't deserialize thrift"):
        for _ in loader:
            pass


_WATCHER = """
import os, sys
del os.pidfd_open  # as on a kernel before Linux 5.3 or a system without pidfd_open: the polling fallback
from mdr.train.data import _exit_when_gone
pid, start = int(sys.argv[1]), int(sys.argv[2])
print("watching", flush=True)
_exit_when_gone(pid, start)
"""


def _start_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[19])  # proc(5): field 22, starttime


def _watch(pid: int, start: int) -> subprocess.Popen:
    watcher = subprocess.Popen([sys.executable, "-c", _WATCHER, str(pid), str(start)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert watcher.stdout.readline() == "watching\n", watcher.stderr.read()
    return watcher


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="makes zombies and reads their state in /proc")
def test_worker_watchdog_fallback_sees_a_zombie_and_a_reused_pid():
    """Where pidfd_open is missing, a DataLoader worker polled its trainer with kill(pid, 0), which succeeds for a
    zombie and for another process given the pid later: the worker then outlived its trainer. It now also reads the
    state (Z) and the start time recorded at worker start from /proc/PID/stat."""
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    watchers = []
    try:
        watcher = _watch(parent.pid, _start_ticks(parent.pid))
        watchers.append(watcher)
        time.sleep(1.5)
        assert watcher.poll() is None, watcher.stderr.read()  # its trainer is alive: it keeps watching
        os.kill(parent.pid, signal.SIGKILL)  # not waited for: a zombie, which kill(pid, 0) still reaches
        deadline = time.monotonic() + 10
        while Path(f"/proc/{parent.pid}/stat").read_text().split(") ")[1][0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.wait(timeout=10) == 1 and watcher.stderr.read() == ""

        # a live process under the watched pid that started at another time is not the trainer
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        watchers.append(other)
        watcher = _watch(other.pid, _start_ticks(other.pid) - 1)
        watchers.append(watcher)
        assert watcher.wait(timeout=10) == 1 and watcher.stderr.read() == ""
    finally:
        for process in [parent, *watchers]:
            process.kill()
            process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
