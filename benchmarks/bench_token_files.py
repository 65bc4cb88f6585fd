"""Token files (`mdr tokenize`) against Parquet shards tokenized on the fly (issue 14.3): loader tokens/s per core
and disk bytes per token.

    .venv/bin/python benchmarks/bench_token_files.py [--repeat 3]

Data: the same real web text as bench_loader.py (the 697 documents dolma extracted from a Common Crawl 2019-30 WARC,
54 languages, `../shared/data/text/cc-derived`) written as 4 Parquet shards the way `mdr run` writes them (zstd
level 3, 1000-row row groups), and tinyshakespeare's speeches (`../shared/data/text/tinyshakespeare`), each with a
byte-level BPE of the tiny preset's vocabulary (4096) trained on it. Both loaders read one epoch at the tiny preset's
shapes (batch 12 × 128) in the benchmark's process (num_workers=0) with the Rust tokenizer held to one thread
(TOKENIZERS_PARALLELISM=false) and one torch thread: tokens/s of that one core, measured as tokens per CPU second of
the process (time.process_time: what a worker costs, whatever else shares the machine) beside wall-clock tokens/s.
Each repeat is a fresh loader (the tokenizer's word cache starts cold); the best repeat counts.

`mdr tokenize` is timed too: one task at a time on the local executor (task processes included).

Disk: bytes per token of the Parquet shards, and of the token directory (token files, offsets and hashes; the
manifest and tokenizer copy are a few kB).
"""

from __future__ import annotations

import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # before tokenizers loads: one core for the on-the-fly tokenizer

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "text"
WEB_TEXT = SHARED / "cc-derived" / "dolma_cc_main_2019_30"
SHAKESPEARE = SHARED / "tinyshakespeare" / "input.txt"
SHARDS = 4
VOCABULARY, BATCH, SEQ_LEN = 4096, 12, 128  # the tiny preset's (train/trainer.py)


def corpora() -> dict[str, list[str]]:
    found = {}
    files = sorted(WEB_TEXT.glob("*.jsonl.gz"))
    if files:
        found["web (dolma CC 2019-30)"] = [json.loads(line)["text"] for f in files
                                           for line in gzip.open(f, "rt", encoding="utf-8")]
    if SHAKESPEARE.is_file():
        found["tinyshakespeare"] = [s for s in SHAKESPEARE.read_text().split("\n\n") if s.strip()]
    if not found:
        sys.exit(f"bench_token_files: no text under {SHARED}")
    return found


def write_shards(texts: list[str], out: Path) -> Path:
    out.mkdir(parents=True)
    per_shard = -(-len(texts) // SHARDS)
    for index in range(SHARDS):
        part = texts[index * per_shard : (index + 1) * per_shard]
        pq.write_table(pa.table({"text": pa.array(part, pa.string())}), out / f"{index:05d}.parquet",
                       compression="zstd", compression_level=3, row_group_size=1000)
    return out


def one_epoch(data: Path, tokenizer: str) -> tuple[float, float, int]:
    """(tokens per CPU second, tokens per wall second, tokens) of one epoch of a fresh loader, in this process."""
    from mdr.train.data import TokenLoader

    loader = TokenLoader([str(data)], tokenizer, SEQ_LEN, BATCH, num_workers=0, epochs=1, seed=0, val_fraction=0.0)
    cpu, wall = time.process_time(), time.perf_counter()
    tokens = sum(x.numel() for x, _ in loader)
    return tokens / (time.process_time() - cpu), tokens / (time.perf_counter() - wall), tokens


def folder_bytes(path: Path, suffixes: tuple[str, ...]) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes))


def main() -> None:
    from mdr.layout import TrainLayout
    from mdr.train.tokenize import tokenize
    from mdr.train.tokenizer import train_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}, torch {torch.__version__}; batch {BATCH} × {SEQ_LEN}, vocabulary {VOCABULARY}")
    print("| corpus | loader | tokens/CPU-s | tokens/s (wall) | ratio (CPU) | disk bytes/token | tokenize once |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-token-files-") as scratch:
        for number, (name, texts) in enumerate(corpora().items()):
            root = Path(scratch) / str(number)
            shards = write_shards(texts, root / "shards")
            tokenizer = train_tokenizer([str(shards)], VOCABULARY, str(TrainLayout(root).tokenizer))
            started = time.perf_counter()
            manifest = tokenize([str(shards)], tokenizer, str(root / "TOK"), workers=1, progress=False)
            tokenize_s = time.perf_counter() - started
            results = {}
            for label, data in (("parquet", shards), ("token files", root / "TOK")):
                runs = [one_epoch(data, tokenizer) for _ in range(args.repeat)]
                results[label] = max(runs)
            parquet_bytes = folder_bytes(shards, (".parquet",))
            token_bytes = folder_bytes(root / "TOK", (".bin", ".npy"))
            per_token = {"parquet": parquet_bytes / manifest["tokens"],
                         "token files": token_bytes / manifest["tokens"]}
            for label, (cpu_rate, wall_rate, _) in results.items():
                ratio = cpu_rate / results["parquet"][0]
                once = f"{manifest['tokens'] / tokenize_s:,.0f} tokens/s" if label == "token files" else ""
                print(f"| {name} ({manifest['tokens']:,} tokens) | {label} | {cpu_rate:,.0f} | {wall_rate:,.0f} | "
                      f"{ratio:.1f}× | {per_token[label]:.2f} | {once} |")


if __name__ == "__main__":
    main()
