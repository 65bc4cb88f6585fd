"""Per-stage time of a recipe's filtering steps, single task, in one process (issue 6 profiling).

Reads the first --docs response records of a WARC with mdr's reader, runs the recipe's filter stages (no exclusion
or output writers, no dedup) as one chained datatrove pipeline, and prints each stage's seconds (datatrove's
`track_time` stats). Run it under a profiler to look inside the stages; extraction runs in a forked child, so use
py-spy with --subprocesses:

    .venv/bin/python benchmarks/profile_filtering.py [--recipe refinedweb] [--docs 100] [--warc PATH ...]
    .venv/bin/py-spy record --subprocesses -f raw -o prof.txt -- .venv/bin/python benchmarks/profile_filtering.py
"""

import argparse
import importlib
import itertools
import json
import time
from pathlib import Path

from mdr.pipeline.reader import WarcRecordReader
from mdr.pipeline.recipe import load_recipe

DEFAULT_WARC = Path(__file__).resolve().parents[1] / "../shared/data/warc/pages/dev-pages-531.warc.gz"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="refinedweb")
    parser.add_argument("--docs", type=int, default=100, help="first N response records (0: all)")
    parser.add_argument("--warc", nargs="+", default=[str(DEFAULT_WARC)], help="WARC/ARC files, read in order")
    args = parser.parse_args()

    recipe = load_recipe(args.recipe)
    reader = WarcRecordReader(args.warc, config=recipe.reader)
    stages = [stage.build() for stage in recipe.stages if not stage.is_dedup]
    for module in {module for stage in stages for module in getattr(stage, "preload_modules", ())}:
        importlib.import_module(module)  # as mdr's executor does in its forkserver, outside the stages' time
    start = time.perf_counter()
    data = itertools.islice(reader.run(None, rank=0, world_size=1), args.docs or None)
    for stage in stages:
        data = stage.run(data, rank=0, world_size=1)
    kept = sum(1 for _ in data)
    wall = time.perf_counter() - start
    seconds = {stage.name: round(stage.stats.time_stats.total, 3) for stage in [reader, *stages]}
    print(json.dumps({"recipe": args.recipe, "docs": args.docs, "kept": kept, "wall_s": round(wall, 3),
                      "stage_seconds": seconds}))


if __name__ == "__main__":
    main()
