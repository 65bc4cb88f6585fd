"""How big should the next model be? `mdr scale` on shards curated from the real pages: an IsoFLOP sweep of 5 model
sizes at 3 compute budgets on 2 CPU cores, its fits, and the largest budget predicted from the other two (issue 13).

    .venv/bin/python benchmarks/bench_scale.py [--work DIR] [--parallel 2] [--smoke]

Two commands, run as subprocesses and printed exactly as run, each timed (wall clock, with the load average):
1. `mdr run refinedweb --input WARCS --output WORK/curated` on the 531 dev pages (`../shared/data/warc/pages`) and
   the Common Crawl sample WARCs (`warc/commoncrawl`), as bench_ablation.py curates them;
2. `mdr scale --data WORK/curated --out WORK/scale --sizes SIZES --flops BUDGETS --budget ... --tokenizer-vocab-size
   1024 --parallel 2`, whose table (the runs, approach 2 and 3, the held-out budget's prediction errors, the
   compute-optimal split at each --budget) is printed as the command prints it.
Then the total time.

Why these sizes and budgets (measured 2026-12-07, 2 cores AMD EPYC, torch 2.13 CPU, one thread per process, a
training step of batch 12 x 128 timed alone, 1024-token vocabulary): 1x32x1 (N 12.8k) 13.9 GFLOP/s, 2x48x2 (57k)
22.8, 2x64x2 (100k) 29.0, 3x96x3 (336k) 40.5, 4x128x4 (793k) 42.4 GFLOP/s (with 4096 tokens, the output head's
6·V·d is 3-5 times 6N at these widths, and a run's compute is mostly the head's). An IsoFLOP budget C costs every
size C / its rate. A first sweep of 1x32 to 4x128 at 1e12, 2e12, 4e12 took 13.1 minutes (load average 1.4-1.7) but
put the minimum of the two smaller budgets at its smallest size (approach 2's parabolas extrapolated, a = 2.4):
at these budgets a larger model gets too few steps (4x128: 103 at 1e12). So the sizes moved down: 1x16x1 (N 3.3k)
in, 4x128 out; every minimum is then inside the sizes. A budget of 1e12 gives the largest size 214 steps (its
compute within 0.5% of the budget, BUDGET_SLACK). The curated data holds 0.85M training tokens at this vocabulary:
the smallest models train on up to 28M tokens, many epochs (each run's epochs are in the table: repetition is a
confounder the table shows rather than hides). The largest budget is held out of the validation fit
(--holdout-budgets 1). Timings and figures: benchmarks/RESULTS.md ("How big should the next model be?").

--smoke runs the same commands on data_samples/ with the micro grid of tests/experiments/test_scale.py: a check that
the script works, not a result.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench_ablation import load, mdr, shown, timed, warcs
from results import machine

REPO = Path(__file__).resolve().parents[1]
SIZES = "1x16x1,1x32x1,2x48x2,2x64x2,3x96x3"
BUDGETS = "1e12,2e12,4e12"
PREDICT = ("1e13", "1e15", "1e18")  # --budget: compute-optimal N*, D* predicted at each
VOCAB = 1024
SMOKE_OPTIONS = ["--sizes", "1x16x2,1x24x2,2x32x2", "--flops", "5e8,1e9,2e9", "--seq-len", "16", "--batch-size",
                 "2", "--tokenizer-vocab-size", "300", "--heldout-fraction", "0.2", "--bootstrap", "8"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="working directory (default: a new temporary one, kept)")
    parser.add_argument("--parallel", type=int, default=2, help="trainings at once (mdr scale --parallel)")
    parser.add_argument("--smoke", action="store_true", help="data_samples/ and a micro grid: a check, no result")
    args = parser.parse_args()
    inputs = sorted((REPO / "data_samples").glob("*.warc.gz")) if args.smoke else warcs()
    missing = [path for path in inputs if not path.exists()] or ([] if inputs else ["data_samples/"])
    if missing:
        sys.exit(f"bench_scale: missing {', '.join(map(str, missing))} (../shared/data holds the real data)")
    work = (args.work or Path(tempfile.mkdtemp(prefix="mdr-bench-scale-"))).resolve()  # mdr runs in REPO
    curated, sweep = work / "curated", work / "scale"

    start = time.perf_counter()
    print(f"machine: {machine()}; {load()}; work {work}")
    curation_s = timed(mdr("run", "refinedweb", "--input", *map(shown, inputs), "--output", str(curated),
                           "--no-progress"))
    grid = SMOKE_OPTIONS if args.smoke else ["--sizes", SIZES, "--flops", BUDGETS,
                                             "--tokenizer-vocab-size", str(VOCAB)]
    scale_s = timed(mdr("scale", "--data", str(curated), "--out", str(sweep), *grid,
                        *(option for budget in PREDICT for option in ("--budget", budget)),
                        "--parallel", str(args.parallel), "--no-progress"))
    total = time.perf_counter() - start
    print(f"\ncuration {curation_s:.0f} s, mdr scale {scale_s:.0f} s, total {total:.0f} s ({total / 60:.1f} min) "
          f"wall; {load()}; results in {sweep} (scaling.json, scaling.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
