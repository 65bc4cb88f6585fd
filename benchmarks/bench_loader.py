"""Loader throughput against what the trainer consumes, on this machine (issue 3: the loader must be >= 10x faster).

    .venv/bin/python benchmarks/bench_loader.py [--repeat 3] [--write-results]

Loader: tokens/s of `TokenLoader` (read Parquet, tokenize on the fly, pack, hand over (x, y)) with 0, 1 and 2
DataLoader workers, over one epoch of real web text (the 697 documents that dolma extracted from a Common Crawl
2019-30 WARC, 54 languages, in `../shared/data/text/cc-derived`), written as Parquet shards (a `text` column, as
`mdr run` writes), with a byte-level BPE trained on it at each preset's vocabulary size. Each repeat is a fresh
loader, so the tokenizer's word cache starts cold; tokens/s counts from the first batch on (the time to the first
batch, worker start included, is printed beside it).

Trainer: tokens/s of one training step (forward, loss, backward, AdamW step) of `mdr.train.model.GPT` on CPU, the
faster of 1 torch thread and one per core (on a shared machine one thread can win by far), at the trainer's shapes:
tiny (vocabulary 4096, batch 12 × 128) and gpt2-124m (vocabulary 50257, sequence 1024, batch 1 here: a step of the
trainer's batch 12 takes minutes on two cores; per-token cost barely depends on the batch on CPU).

The ratio is loader tokens/s over trainer tokens/s. With 0 workers the loader runs inside the training process, so
1/ratio is the share of a step spent on data.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from results import write_section

REPO = Path(__file__).resolve().parents[1]
WEB_TEXT = REPO.parent / "shared" / "data" / "text" / "cc-derived" / "dolma_cc_main_2019_30"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
HEADING = "## Loader throughput (issue 3)"
SHARDS = 4  # Parquet files the corpus is written as: every worker gets a whole row group
REQUIRED_RATIO = 10  # issue 3
GPU_GOAL_TOKENS_PER_S = 600_000  # issue 3's goal for gpt2-124m, bf16, compiled, on one GPU
# The trainer's shapes (train/trainer.py defaults): preset -> (tokenizer vocabulary, batch, sequence length).
TRAINER_SHAPES = {"tiny": (4096, 12, 128), "gpt2-124m": (50257, 1, 1024)}
WORKERS = (0, 1, 2)


def write_web_shards(out: Path) -> Path:
    files = sorted(WEB_TEXT.glob("*.jsonl.gz"))
    if not files:
        sys.exit(f"bench_loader: no web text at {WEB_TEXT}")
    texts = [json.loads(line)["text"] for f in files for line in gzip.open(f, "rt", encoding="utf-8")]
    shards = out / "shards"
    shards.mkdir(parents=True)
    per_shard = -(-len(texts) // SHARDS)
    for index in range(SHARDS):
        part = texts[index * per_shard : (index + 1) * per_shard]
        pq.write_table(pa.table({"text": pa.array(part, pa.string())}), shards / f"{index:05d}.parquet",
                       compression="zstd", row_group_size=1000)
    return shards


def loader_tokens_per_second(shards: Path, tokenizer: str, seq_len: int, batch_size: int,
                             workers: int) -> tuple[float, float, int]:
    """(tokens/s after the first batch, seconds to the first batch, tokens) over one epoch of a fresh loader."""
    from mdr.train.data import TokenLoader

    loader = TokenLoader([str(shards)], tokenizer, seq_len, batch_size, num_workers=workers, epochs=1, seed=0)
    start = time.perf_counter()
    batches = iter(loader)
    next(batches)
    first = time.perf_counter()
    count = sum(1 for _ in batches)
    seconds = time.perf_counter() - first
    return count * batch_size * seq_len / seconds, first - start, (count + 1) * batch_size * seq_len


def trainer_tokens_per_second(preset: str, vocab_size: int, batch_size: int, seq_len: int,
                              steps: int) -> tuple[float, int]:
    """(tokens/s of forward+backward+AdamW steps, parameters) for a preset on CPU, after one warm-up step."""
    from mdr.train import objective
    from mdr.train.model import GPT, config_for

    torch.manual_seed(0)
    model = GPT(config_for(preset, vocab_size, block_size=seq_len))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, vocab_size, (batch_size, seq_len))
    y = torch.randint(0, vocab_size, (batch_size, seq_len))

    def step():
        loss, _ = objective.loss(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size * seq_len / (time.perf_counter() - start), sum(p.numel() for p in model.parameters())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, torch {torch.__version__}; "
            f"load average {load:.1f} at the start (the machine is shared with other jobs)")


def write_results(section: str) -> None:
    """Replaces this benchmark's section of RESULTS.md (or appends it), leaving the other sections as they are."""
    write_section(section, HEADING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="loader runs per setting (median reported)")
    parser.add_argument("--trainer-steps", type=int, default=3, help="timed steps per preset")
    parser.add_argument("--write-results", action="store_true", help=f"write the section of {RESULTS.name}")
    args = parser.parse_args()
    from mdr.train.tokenizer import train_tokenizer

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="bench-loader-") as scratch:
        shards = write_web_shards(Path(scratch))
        chars = sum(len(t) for f in shards.glob("*.parquet") for t in pq.read_table(f)["text"].to_pylist())
        trainer, threads = {}, {}
        default_threads = torch.get_num_threads()
        for preset, (vocab, batch, seq_len) in TRAINER_SHAPES.items():
            for count in sorted({1, os.cpu_count() or 1}):
                torch.set_num_threads(count)
                tps, params = trainer_tokens_per_second(preset, vocab, batch, seq_len, args.trainer_steps)
                print(f"trainer {preset}, {count} thread(s): {tps:,.0f} tokens/s ({params / 1e6:.1f}M parameters)",
                      file=sys.stderr)
                if tps > trainer.get(preset, 0.0):
                    trainer[preset], threads[preset] = tps, count
        torch.set_num_threads(default_threads)

        say(HEADING)
        say()
        say(f"- date: {started}")
        say(f"- machine: {machine()}")
        say(f"- command: `.venv/bin/python benchmarks/bench_loader.py --repeat {args.repeat}"
            f"{' --write-results' if args.write_results else ''}`")
        say(f"- corpus: {WEB_TEXT.relative_to(REPO.parent)} (real Common Crawl text, {chars / 1e6:.1f}M "
            f"characters), written as {SHARDS} Parquet shards; one epoch per run, fresh loader each run, "
            f"median of {args.repeat}")
        say()
        say("| preset | trainer tokens/s (CPU step, threads) | loader workers | loader tokens/s | first batch s "
            "| ratio loader/trainer |")
        say("|---|---|---|---|---|---|")
        ratios = {}
        for preset, (vocab, batch, seq_len) in TRAINER_SHAPES.items():
            tokenizer = train_tokenizer([str(shards)], vocab, str(Path(scratch) / f"tokenizer-{vocab}.json"))
            loader_batch = max(batch, 8)
            for workers in WORKERS:
                runs = [loader_tokens_per_second(shards, tokenizer, seq_len, loader_batch, workers)
                        for _ in range(args.repeat)]
                if preset == "gpt2-124m" and workers == 1:
                    loader_gpt2_one_worker = [r[0] for r in runs]
                tps = statistics.median(r[0] for r in runs)
                ratio = tps / trainer[preset]
                ratios[(preset, workers)] = ratio
                say(f"| {preset} (vocab {vocab}, {batch}×{seq_len}) | {trainer[preset]:,.0f} ({threads[preset]}) "
                    f"| {workers} | {tps:,.0f} "
                    f"| {statistics.median(r[1] for r in runs):.2f} | {ratio:,.0f}× |")
        say()
        worst = min(ratios.values())
        verdict = "met" if worst >= REQUIRED_RATIO else "NOT met"
        say(f"Lowest ratio {worst:,.0f}× (requirement ≥ {REQUIRED_RATIO}×: {verdict}). With 0 workers the loader "
            f"shares the training process: it takes {100 / ratios[('tiny', 0)]:.1f}% of a tiny step's time and "
            f"{100 / ratios[('gpt2-124m', 0)]:.2f}% of a gpt2-124m step's.")
        one_worker = statistics.median(loader_gpt2_one_worker)
        say(f"GPU estimate: the issue's goal for gpt2-124m on one GPU is {GPU_GOAL_TOKENS_PER_S:,} tokens/s. "
            f"One loader worker (one core, GPT-2's vocabulary) gives {one_worker:,.0f} tokens/s here, so matching "
            f"the goal takes about {math.ceil(GPU_GOAL_TOKENS_PER_S / one_worker)} workers and 10× takes about "
            f"{math.ceil(REQUIRED_RATIO * GPU_GOAL_TOKENS_PER_S / one_worker)}: measure on the GPU machine's cores "
            "before deciding on pre-tokenized shards there.")
        say()
    if args.write_results:
        write_results("\n".join(lines) + "\n")
        print(f"bench_loader: wrote the section of {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
