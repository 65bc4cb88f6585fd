"""Token files: Parquet shards tokenized once, read by `mdr train --data TOK` and `mdr eval --data TOK`.

    mdr tokenize SHARDS... --tokenizer T --out TOK [--workers N] [--text-column text]

Each source shard becomes one token file (mdr.layout.TokenLayout spells the names): every row's tokens followed by
the end-of-document token, in row order, as raw integers of the smallest unsigned type that holds the vocabulary
(uint16 below 65,536 tokens, else uint32; nanoGPT's and datatrove's DocumentTokenizer's choice), beside an index of
where each row starts (int64 offsets) and the xxh64 hash of each row's text, the hash the held-out split is drawn by
(mdr.train.data.in_val_split): the split stays the text-hash split, at any --val-fraction. A null text has no tokens
(not even the end-of-document token), which tells it apart from an empty one. The rows keep their source row groups
(recorded in the shard's entry), so the loader deals out the same pieces and gives the same batches as on the
Parquet shards.

A shard is one task of a datatrove phase (the TokenizeShards step), run by mdr's executors as `mdr run`'s phases are
(`--executor local|ray|slurm`, `--workers N` at a time; mdr/pipeline/executors): its files are written atomically
(mdr/atomic.py), then its manifest entry; a rerun skips the shards whose entry matches the source (path, size,
sha256) and the tokenizer, so a killed run resumes. With several tasks each encodes serially, the tasks being the
parallelism. TOK/tokens.json, the manifest, is written last, when every shard is done.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

from datatrove.pipeline.base import PipelineStep

from mdr.atomic import atomic_file, is_temporary, write_atomically
from mdr.errors import UsageError
from mdr.layout import Phase, TokenLayout

MANIFEST_FORMAT = 1
UINT16_VOCABULARY = 1 << 16  # ids 0..65535


def token_dtype(vocab_size: int) -> str:
    """The smallest unsigned integer type holding every id of the vocabulary."""
    return "uint16" if vocab_size <= UINT16_VOCABULARY else "uint32"


def _entry_matches(path, source: dict, tokenizer_sha256: str, text_column: str) -> bool:
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return entry.get("source") == source and entry.get("tokenizer_sha256") == tokenizer_sha256 \
        and entry.get("text_column") == text_column


def tokenize_shard(source: dict, tokenizer_path: str, out: str, name: str, text_column: str) -> dict:
    """Writes shard `name`'s token file, offsets and hashes, then its entry; returns the entry."""
    import numpy as np

    from mdr.train.data import text_hash
    from mdr.train.tokenizer import load_tokenizer, open_text_parquet, read_texts

    layout = TokenLayout(out)
    tokenizer = load_tokenizer(tokenizer_path)
    dtype = np.dtype(token_dtype(tokenizer.vocab_size))
    parquet = open_text_parquet(source["path"], text_column)
    offsets, hashes, row_groups, total = [0], [], [], 0
    with atomic_file(layout.tokens(name)) as handle:
        for row_group in range(parquet.metadata.num_row_groups):
            texts = read_texts(parquet, source["path"], row_group, text_column)
            row_groups.append(len(texts))
            present = [text for text in texts if text is not None]
            encoded = iter(tokenizer.encode_batch(present))
            pieces = []
            for text in texts:
                if text is None:
                    hashes.append(0)
                else:
                    ids = next(encoded)
                    pieces.append(ids)
                    pieces.append([tokenizer.eos_id])
                    total += len(ids) + 1
                    hashes.append(text_hash(text))
                offsets.append(total)
            if pieces:
                handle.write(np.concatenate([np.asarray(p, dtype=dtype) for p in pieces]).tobytes())
    with atomic_file(layout.offsets(name)) as handle:
        np.save(handle, np.asarray(offsets, dtype=np.int64))
    with atomic_file(layout.hashes(name)) as handle:
        np.save(handle, np.asarray(hashes, dtype=np.uint64))
    rows = len(hashes)
    entry = {"name": name, "source": source, "tokenizer_sha256": tokenizer.sha256, "text_column": text_column,
             "dtype": dtype.name, "rows": rows, "documents": sum(1 for a, b in zip(offsets, offsets[1:]) if b > a),
             "tokens": total, "row_groups": row_groups}
    write_atomically(layout.entry(name), json.dumps(entry, indent=1) + "\n")
    return entry


class TokenizeShards(PipelineStep):
    """Task `rank` tokenizes shards rank, rank + world_size, ... of `shards` ((source, name) pairs) into `out`.
    Counters: shards, documents, tokens."""

    name = "tokenize"
    type = "🔢 - TOKENIZER"

    def __init__(self, shards: list[tuple[dict, str]], tokenizer_path: str, out: str, text_column: str):
        super().__init__()
        self.shards, self.tokenizer_path, self.out, self.text_column = shards, tokenizer_path, out, text_column

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if world_size > 1:  # tasks side by side: each encodes serially, the tasks are the parallelism
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
        for source, name in self.shards[rank::world_size]:
            entry = tokenize_shard(source, self.tokenizer_path, self.out, name, self.text_column)
            self.stat_update("shards")
            self.stat_update("documents", value=entry["documents"])
            self.stat_update("tokens", value=entry["tokens"])
        return
        yield


def _finished_manifest(layout: TokenLayout, names: list[str]) -> dict | None:
    """TOK/tokens.json when it lists exactly the entries of shards `names` as they stand (every one done, with the
    tokenizer checked by the caller), else None."""
    try:
        manifest = json.loads(layout.manifest.read_text())
        return manifest if manifest["shards"] == [json.loads(layout.entry(name).read_text()) for name in names] \
            else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def tokenize(data, tokenizer_path: str, out: str, workers: int = -1, text_column: str = "text",
             progress: bool = True, executor=None) -> dict:
    """Tokenizes the shards `data` names (anything resolve_parquet_files takes) into token directory `out`, one task
    per shard run by `executor` (mdr.pipeline.executors.ExecutorOptions; default: local, `workers` at a time, -1:
    one per core); returns the manifest. Shards done by an earlier run with the same tokenizer are skipped."""
    from mdr.pipeline.executors import ExecutorOptions, run_phases
    from mdr.train.runlog import file_sha256, file_size
    from mdr.train.tokenizer import load_tokenizer, open_text_parquet, resolve_parquet_files

    if workers < 1 and workers != -1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    options = executor or ExecutorOptions(kind="local", workers=workers)
    tokenizer = load_tokenizer(tokenizer_path)
    files = resolve_parquet_files(data)
    for path in files:  # each a Parquet file with a text column of strings, before anything is written
        open_text_parquet(path, text_column)
    layout = TokenLayout(out)
    if layout.manifest.is_file():
        try:
            made_with = json.loads(layout.manifest.read_text())["tokenizer"]["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            made_with = None
        if made_with != tokenizer.sha256:
            raise UsageError(f"{out} holds token files of another tokenizer (sha256 {str(made_with)[:12]}, not "
                             f"{tokenizer.path}'s {tokenizer.sha256[:12]}): choose another --out")
    elif os.path.isdir(out) and any(os.scandir(out)) and not layout.shards.is_dir():
        raise UsageError(f"{out} exists and is not a token directory: choose another --out")
    names = [TokenLayout.shard_name(index) for index in range(len(files))]
    sources = [{"path": os.path.abspath(path) if "://" not in path else path, "sha256": file_sha256(path),
                "size": file_size(path)} for path in files]
    todo = [i for i, name in enumerate(names)
            if not _entry_matches(layout.entry(name), sources[i], tokenizer.sha256, text_column)]
    if progress:
        print(f"mdr: tokenizing {len(todo)} of {len(files)} shard(s), executor {options.kind} "
              f"({len(files) - len(todo)} done before) -> {out}", file=sys.stderr)
    finished = _finished_manifest(layout, names) if not todo else None
    if finished is not None:  # a rerun of a finished directory writes nothing (mdr ablate/scale rerun it)
        return finished
    layout.shards.mkdir(parents=True, exist_ok=True)
    for path in layout.shards.iterdir():  # a killed run's half-written files (mdr/atomic.py's temporaries)
        if is_temporary(path.name):
            path.unlink(missing_ok=True)
    with open(tokenizer.path, "rb") as handle:
        write_atomically(layout.tokenizer, handle.read())
    dtype = token_dtype(tokenizer.vocab_size)
    started = time.perf_counter()
    shutil.rmtree(layout.logs, ignore_errors=True)  # this attempt's tasks are the shards left: see TokenLayout.logs
    if todo:
        step = TokenizeShards([(sources[i], names[i]) for i in todo], tokenizer.path, str(out), text_column)
        run_phases([Phase("tokenize", [step], len(todo), str(layout.logs))], options)
    entries = [json.loads(layout.entry(name).read_text()) for name in names]
    manifest = {
        "format": MANIFEST_FORMAT,
        "tokenizer": {"sha256": tokenizer.sha256, "vocab_size": tokenizer.vocab_size, "eos_id": tokenizer.eos_id},
        "dtype": dtype, "text_column": text_column,
        "documents": sum(e["documents"] for e in entries), "tokens": sum(e["tokens"] for e in entries),
        "shards": entries,
    }
    write_atomically(layout.manifest, json.dumps(manifest, indent=1) + "\n")
    if progress:
        from mdr.formatting import duration, quantity

        print(f"mdr: {quantity(manifest['tokens'])} tokens of {quantity(manifest['documents'])} documents in "
              f"{len(files)} token file(s) ({dtype}) in {duration(time.perf_counter() - started)} -> {out}",
              file=sys.stderr)
    return manifest


