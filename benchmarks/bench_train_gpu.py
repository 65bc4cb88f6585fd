"""Training throughput of `mdr train` on one GPU: gpt2-124m, bf16, torch.compile, sequence 1024, real shards through
the real loader. Prints tokens/s and MFU (model FLOPs utilisation).

    .venv/bin/python benchmarks/bench_train_gpu.py [--data SHARDS] [--batch-size 32 64] [--steps 100]

FLOPs per token = 6N + 12·L·H·Q·T (PaLM appendix B, nanoGPT's estimate_mfu), over 989 TFLOP/s dense bf16 (H100/H200
SXM). Reference: nanoGPT's bench.py (synthetic tokens, same model, compiled, bf16) on an H200 ran at 496k tokens/s
with batch 32 and 523k with batch 64. The whole script (curating the shards, compiling) runs in a few minutes.

Without --data, the shards are curated from data_samples/ with `mdr run refinedweb` into a temporary directory. The
tokenizer is trained on them; the model keeps GPT-2's padded vocabulary of 50,304 so its FLOPs are GPT-2's.
Without a GPU it runs the tiny preset on CPU for a few steps (a smoke test of the same path).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from mdr.layout import TrainLayout

REPO = Path(__file__).resolve().parents[1]
PEAK_BF16_FLOPS = 989e12  # H100/H200 SXM dense bf16 (NVIDIA datasheet), the MFU denominator
GPT2_VOCAB = 50304  # GPT-2's 50,257 padded to a multiple of 64, as nanoGPT's bench.py
WARMUP_STEPS = 20  # steps left out of the timing: compilation and allocator warm-up


def curate_samples(out: Path) -> str:
    """`mdr run refinedweb --input data_samples --output OUT`; returns OUT."""
    command = [sys.executable, "-m", "mdr", "run", "refinedweb", "--input", str(REPO / "data_samples"),
               "--output", str(out), "--no-progress"]
    subprocess.run(command, check=True)
    return str(out)


def run_once(data: list[str], tokenizer: str, out: Path, preset: str, batch_size: int, seq_len: int, steps: int,
             compile_model: bool, num_workers: int, vocab_size: int | None) -> dict:
    from mdr.train.model import GPT, config_for
    from mdr.train.trainer import TrainConfig, train

    config = TrainConfig(data=data, out=str(out), tokenizer=tokenizer, preset=preset, vocab_size=vocab_size,
                         seq_len=seq_len, batch_size=batch_size, max_steps=steps, log_interval=10,
                         eval_interval=10**9, eval_batches=1, checkpoint_interval=10**9, val_fraction=0.2,
                         num_workers=num_workers, compile=compile_model, progress=False)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    train(config)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in TrainLayout(out).metrics.read_text().splitlines()]
    timed = [r for r in rows if r["split"] == "train" and r["step"] > WARMUP_STEPS]
    if not timed:
        raise SystemExit(f"--steps must exceed {WARMUP_STEPS + 10} to leave timed steps")
    # each row covers 10 steps of equal token count: the harmonic mean of the rates is tokens over time
    tokens_per_s = len(timed) / sum(1.0 / r["tokens_per_s"] for r in timed)
    from mdr.train.tokenizer import load_tokenizer

    with torch.device("meta"):
        model = GPT(config_for(preset, vocab_size or load_tokenizer(tokenizer).vocab_size, seq_len))
    flops_per_token = model.flops_per_token(seq_len)
    return {"batch_size": batch_size, "tokens_per_s": tokens_per_s,
            "mfu": tokens_per_s * flops_per_token / PEAK_BF16_FLOPS, "flops_per_token": flops_per_token,
            "params": model.num_params(), "wall_s": wall, "final_loss": timed[-1]["loss"],
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", help="Parquet shards (default: data_samples/ curated with mdr run)")
    parser.add_argument("--batch-size", type=int, nargs="+", help="one run per batch size (GPU default: 32 64)")
    parser.add_argument("--steps", type=int, help="optimizer steps per run (GPU default 120, CPU 40)")
    parser.add_argument("--num-workers", type=int, default=4, help="loader worker processes")
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()

    gpu = torch.cuda.is_available()
    preset, seq_len = ("gpt2-124m", 1024) if gpu else ("tiny", 128)
    batch_sizes = args.batch_size or ([32, 64] if gpu else [8])
    steps = args.steps or (120 if gpu else 40)
    compile_model = gpu and not args.no_compile
    device = torch.cuda.get_device_name() if gpu else "CPU"
    start = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="mdr-bench-train-"))
    try:
        data = args.data or [curate_samples(scratch / "shards")]
        from mdr.train.tokenizer import train_tokenizer

        tokenizer = train_tokenizer(data, 50257 if gpu else 4096, str(TrainLayout(scratch).tokenizer))
        print(f"device {device}, preset {preset}, bf16 {gpu}, compiled {compile_model}, seq {seq_len}, "
              f"{args.num_workers} loader workers, {steps} steps (first {WARMUP_STEPS} untimed); data {data}",
              flush=True)
        results = []
        for batch_size in batch_sizes:
            result = run_once(data, tokenizer, scratch / f"run-{batch_size}", preset, batch_size, seq_len, steps,
                              compile_model, args.num_workers, GPT2_VOCAB if gpu else None)
            results.append(result)
            print(f"batch {batch_size:>3}: {result['tokens_per_s']:>12,.0f} tokens/s  MFU {result['mfu']:6.1%}  "
                  f"({result['params'] / 1e6:.1f}M params, {result['flops_per_token'] / 1e9:.3f} GFLOP/token, "
                  f"run {result['wall_s']:.0f} s"
                  + (f", peak {result['peak_memory_gib']:.1f} GiB" if result["peak_memory_gib"] else "") + ")",
                  flush=True)
        print(json.dumps({"device": device, "preset": preset, "seq_len": seq_len, "compiled": compile_model,
                          "total_s": time.perf_counter() - start, "results": results}))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
