"""Does curation help? `mdr ablate` on the real pages: the tiny model trained on the documents after extraction,
after language ID, after the line-wise filter and after the last dedup stage, at equal tokens, 3 seeds (issue 12).

    .venv/bin/python benchmarks/bench_ablation.py [--work DIR] [--tokens N] [--seeds 3] [--parallel 2]
        [--eval-docs 50] [--smoke]

One command, run as a subprocess and printed exactly as run, timed (wall clock, with the load average):
`mdr ablate --input WARCS --recipe refinedweb --out WORK/ablation --arms extract,language,lines,url_dedup --preset
tiny --seeds 3 --tokens N --eval aeb=... --eval wcxb=... --heldout-fraction 0.1 --continuation 30 --parallel P`,
which curates the 531 dev pages (`../shared/data/warc/pages`) and the Common Crawl sample WARCs (`warc/commoncrawl`:
every .warc/.warc.gz there, not the .wat/.wet/paths files) into WORK/ablation/run with a tap at every arm (url_dedup
is refinedweb's last dedup stage, its tap the run's data/; the lines tap is filtered/), then trains and compares. It
is evaluated on heldout-first, heldout-last, the human-annotated main text of `../shared/data/extraction` (aeb's
articleBody, wcxb-dev's ground_truth.main_content) as clean text, written here as JSONL under WORK/clean-text (never
into the repo), and 30 continuation questions built from heldout-last.
Then the taps' documents, the arms' documents, tokens and epochs and the decontamination counts from ablation.json,
and the total time.

The dev pages are the pages whose main text aeb and wcxb annotate, so decontamination (MinHash, word 5-grams,
Jaccard >= 0.8) removes from every arm the training documents that are near-duplicates of the clean-text documents
evaluated: intended, and printed. `--eval-docs N` evaluates N documents of each clean-text set (the first N by
sha256 of their id, a fixed sample); only those are decontaminated against, so the other dev pages stay in training.

Last full run: 1169 s wall (19.5 minutes, other work beside it part of the time), figures in benchmarks/RESULTS.md
("Does curation help?"). How the defaults were chosen (2026-12-07, 2 cores, AMD EPYC, Python 3.11, torch CPU; the
machine was shared with four other jobs, load average 2-7, so the times are upper bounds for an idle machine):
- curation (`mdr run` above, 7 WARCs, 755 records, 2 workers): 76 s wall, load average 0.3 before, 2.3 after
  (extraction is 66% of it). Documents per tap: extract 662 (5.4 MB of text), language 580 (4.9 MB), lines 358
  (2.4 MB), url_dedup 357 (2.3 MB).
- with every aeb/wcxb document as an eval set (181 + 342 non-empty), decontamination removes 265 documents from the
  first arm (aeb 150, wcxb 115, heldout-first 0) and each run must evaluate 1.42M tokens (aeb 372k, wcxb 940k), which
  at 9k tokens per CPU second (below) is 157 CPU s a run, 12 runs 16 minutes of both cores before any training.
  Hence `--eval-docs 50`: aeb 50 documents (68k tokens), wcxb 50 (148k), decontamination removes 58 (aeb 41, wcxb
  17); with heldout-first (24 documents, 53k tokens) and heldout-last (21, 49k), 317k tokens evaluated per run.
- the arms then train on (4096-token BPE fitted on the pooled sample): extract 580 documents, 1.70M tokens; language
  501, 1.41M; lines 293, 0.55M; url_dedup 292, 0.53M.
- tiny preset, batch 12 x 128, one torch thread (what each of `--parallel 2`'s processes gets on 2 cores): training
  5.4k tokens per CPU second (40 steps of `mdr train` on url_dedup's documents, by CPU time, load 6-7;
  bench_loader.py measured 4.9k at load 5); evaluation (`mdr eval --split all`) 9k tokens per CPU second.
- check: `mdr ablate --arms extract,url_dedup --seeds 1 --tokens 294912 --parallel 2` with the eval sets above took
  290 s wall at load 4-5 and 228 CPU s (user + sys): about 13 s to split, decontaminate and fit the tokenizer, 18 s to
  count the arms' tokens, then per run about 96 CPU s, what the rates above predict (55 training + 35 evaluating +
  start-up); each run's training took 192 s wall and its evaluation 56 s, the two runs side by side.

Budget: 14 minutes of 2 idle cores. Curation 76 s; the ablation's preparation (all four arms) about 40 s; per run 6
+ 35 CPU s besides training. Default --tokens 344,064 (224 steps of 12 x 128): 64 CPU s of training, 105 a run, 12
runs on 2 cores 630 s; about 12.5 minutes in all (the limit is 20), leaving about 1.5 minutes for learning curves:
an evaluation of 20 batches of each of the 4 sets is 123k tokens, 14 CPU s a run, 84 s wall for the 12 runs. At that
budget every arm trains on fewer tokens than it holds, so no arm repeats its data and the comparison is not
confounded by repetition: epochs extract 0.20, language 0.24, lines 0.62, url_dedup 0.64 (the script prints the
exact figures from ablation.json). One epoch of every arm would take 1.70M tokens per run, about 40 minutes here.

--smoke runs the same two commands on data_samples/ (3 WARCs of planted pages) with a micro budget (2 seeds, batch 4
x 32, a 512-token vocabulary, 30% held out, 5 documents per clean-text set): a check that the script works, in
about two minutes (at load 5), not a result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from results import machine

from mdr.layout import AblationLayout, RunLayout, tap_folders

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PAGES = SHARED / "warc" / "pages" / "dev-pages-531.warc.gz"
COMMONCRAWL = SHARED / "warc" / "commoncrawl"
AEB = SHARED / "extraction" / "aeb" / "ground-truth.json"
WCXB = SHARED / "extraction" / "wcxb-dev" / "ground-truth"
RECIPE = "refinedweb"
ARMS = ("extract", "language", "lines", "url_dedup")  # refinedweb's stages; url_dedup is its last dedup stage
DEFAULT_TOKENS = 224 * 12 * 128  # 224 steps of the tiny preset's batch 12 x 128 (module docstring: the budget)
DEFAULT_EVAL_DOCS = 50
# --smoke: data_samples/ and a micro budget; options given to mdr ablate besides --tokens and --seeds
SMOKE_TOKENS, SMOKE_SEEDS, SMOKE_EVAL_DOCS = 30 * 4 * 32, 2, 5
# 10% held out, not mdr ablate's default 5%: on these 662 documents 5% leaves 24 in heldout-first and 21 in
# heldout-last, 10% leaves 57 and 39 (counted with heldout.is_heldout on the taps), for steadier held-out figures and
# enough documents for the continuation task.
HELDOUT_FRACTION = 0.1
# Questions of the continuation task built from heldout-last documents (issue 12.3), one per document: a
# multiple-choice score small models can beat chance on; scoring them costs a few seconds a run.
CONTINUATION, SMOKE_CONTINUATION = 30, 4
SMOKE_ABLATE_OPTIONS = ["--batch-size", "4", "--seq-len", "32", "--tokenizer-vocab-size", "512",
                        "--heldout-fraction", "0.3"]


def warcs() -> list[Path]:
    """The dev pages and the Common Crawl samples that are WARCs (their .wat, .wet and .paths files are not)."""
    samples = sorted(path for path in COMMONCRAWL.iterdir() if path.name.endswith((".warc", ".warc.gz")))
    return [PAGES, *samples]


def clean_text_sets() -> dict[str, dict[str, str]]:
    """{set: {id: main text}}: aeb's articleBody and wcxb-dev's ground_truth.main_content, empty ones left out."""
    aeb = {key: value["articleBody"] for key, value in json.loads(AEB.read_text()).items()}
    wcxb = {path.stem: json.loads(path.read_text())["ground_truth"]["main_content"]
            for path in sorted(WCXB.glob("*.json"))}
    return {name: {key: text for key, text in texts.items() if text and text.strip()}
            for name, texts in (("aeb", aeb), ("wcxb", wcxb))}


def write_clean_text(folder: Path, docs_per_set: int) -> dict[str, Path]:
    """Each clean-text set's sample as JSONL with a "text" field: the first `docs_per_set` documents by sha256 of
    their id, the same sample every time."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, texts in clean_text_sets().items():
        keys = sorted(texts, key=lambda key: hashlib.sha256(key.encode()).hexdigest())[:docs_per_set]
        paths[name] = folder / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps({"id": key, "text": texts[key]}) + "\n" for key in keys))
        print(f"clean-text set {name}: {len(keys)} of {len(texts)} documents -> {paths[name]}")
    return paths


def shown(path: Path) -> str:
    """`path` relative to the repository where it is beside it (../shared/data, data_samples/), so that the printed
    command reads as it would be typed in the repository; others (the work directory) as they are."""
    return os.path.relpath(path, REPO) if path.resolve().is_relative_to(REPO.parent) else str(path)


def load() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


def timed(command: list[str]) -> float:
    """Runs `command` (printed as run, shell-quoted), its output passed through; returns its wall seconds."""
    print(f"\n$ {shlex.join(command)}    # {load()}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    seconds = time.perf_counter() - start
    print(f"# {seconds:.1f} s wall; {load()}", flush=True)
    return seconds


def mdr(*arguments: str) -> list[str]:
    """The command line of `mdr` in this interpreter's environment, relative to the repository where it is in it,
    as a reader would type it."""
    executable = Path(sys.executable).parent / "mdr"
    try:
        executable = executable.relative_to(REPO)
    except ValueError:
        pass
    return [str(executable), *arguments]


def tap_summary(run: Path) -> None:
    """Documents and bytes of text each tap of `run` holds."""
    for stage, folder in tap_folders(RunLayout(run)).items():
        files = sorted(folder.glob("*.parquet"))
        texts = [text for path in files for text in pq.read_table(path, columns=["text"])["text"].to_pylist()]
        print(f"tap {stage:<10} {len(texts):>6,} documents  {sum(len(t.encode()) for t in texts) / 1e6:7.2f} MB "
              f"of text  ({folder})")


def ablation_summary(ablation: Path) -> None:
    """The arms' documents, tokens and epochs, and the decontamination counts, from ablation.json."""
    summary = json.loads(AblationLayout(ablation).ablation_file.read_text())
    configuration = summary["configuration"]
    print(f"\ntokens per run {configuration['tokens_per_run']:,} ({configuration['max_steps']} steps of "
          f"{configuration['batch_size']} x {configuration['seq_len']}); tokenizer sha256 "
          f"{summary['tokenizer']['sha256'][:16]}")
    print(f"{'arm':<10} {'documents':>9} {'held out':>8} {'decontam.':>9} {'training':>8} {'tokens':>10} "
          f"{'epochs':>6}")
    for arm, row in summary["arms"].items():
        print(f"{arm:<10} {row['documents']:>9,} {row['heldout_removed']:>8,} {row['decontaminated']:>9,} "
              f"{row['training_documents']:>8,} {row['training_tokens']:>10,} {row['epochs']:>6.2f}")
    decontamination = summary["decontamination"]
    print(f"decontamination ({decontamination['near_duplicate']}): {decontamination['removed_documents']} "
          f"documents removed; near each reference set: " + ", ".join(
              f"{name} {count}" for name, count in decontamination["per_reference"].items()))
    print("eval sets: " + ", ".join(f"{name} {row['documents']} documents"
                                    for name, row in summary["eval_sets"].items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="working directory (default: a new temporary one, kept)")
    parser.add_argument("--tokens", type=int, help=f"training tokens per run (default {DEFAULT_TOKENS:,}; "
                                                   f"--smoke {SMOKE_TOKENS:,})")
    parser.add_argument("--seeds", type=int, help=f"runs per arm (default 3; --smoke {SMOKE_SEEDS})")
    parser.add_argument("--parallel", type=int, default=2,
                        help="trainings at once (mdr ablate --parallel; default 2)")
    parser.add_argument("--eval-docs", type=int, help="documents of each clean-text set evaluated (default "
                                                      f"{DEFAULT_EVAL_DOCS}; --smoke {SMOKE_EVAL_DOCS})")
    parser.add_argument("--smoke", action="store_true", help="data_samples/ and a micro budget: a check, no result")
    args = parser.parse_args()
    samples = REPO / "data_samples"
    inputs = sorted(samples.glob("*.warc.gz")) if args.smoke else warcs()
    missing = [path for path in [*inputs, AEB, WCXB] if not path.exists()] + ([] if inputs else [samples])
    if missing:
        sys.exit(f"bench_ablation: missing {', '.join(map(str, missing))} (../shared/data holds the real data)")
    tokens = args.tokens or (SMOKE_TOKENS if args.smoke else DEFAULT_TOKENS)
    seeds = args.seeds or (SMOKE_SEEDS if args.smoke else 3)
    eval_docs = args.eval_docs or (SMOKE_EVAL_DOCS if args.smoke else DEFAULT_EVAL_DOCS)
    work = (args.work or Path(tempfile.mkdtemp(prefix="mdr-bench-ablation-"))).resolve()  # mdr runs in REPO
    ablation = work / "ablation"

    start = time.perf_counter()
    print(f"machine: {machine()}; {load()}; work {work}")
    clean_text = write_clean_text(work / "clean-text", eval_docs)
    command = mdr("ablate", "--input", *map(shown, inputs), "--recipe", RECIPE, "--out", str(ablation),
                  "--arms", ",".join(ARMS), "--preset", "tiny", "--seeds", str(seeds), "--tokens", str(tokens),
                  *(option for name, path in clean_text.items() for option in ("--eval", f"{name}={shown(path)}")),
                  "--heldout-fraction", str(HELDOUT_FRACTION),
                  "--continuation", str(SMOKE_CONTINUATION if args.smoke else CONTINUATION), "--parallel", str(args.parallel), "--no-progress")
    if args.smoke:
        command += SMOKE_ABLATE_OPTIONS
    ablation_s = timed(command)
    tap_summary(AblationLayout(ablation).curation)
    ablation_summary(ablation)
    total = time.perf_counter() - start
    print(f"\nmdr ablate {ablation_s:.0f} s (curation included), total {total:.0f} s "
          f"({total / 60:.1f} min) wall; {load()}; results in {ablation}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
