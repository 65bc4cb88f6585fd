"""Scaling of `mdr run`: documents/s and peak memory at 1x, 2x and 4x the input, with 1 and 2 workers.

The input is `dev-pages-531.warc.gz` given k times (k = 1, 2, 4) as k files (symbolic links in a temp dir), so the
work per document is the same at every size; from the second copy on every page is a duplicate, which the dedup
stages find (MinHash and URL dedup see k times as many documents). Each run is `mdr run RECIPE --input DIR --workers
W --tasks W --no-progress`, timed from start to exit; memory is the PSS summed over the whole process tree, sampled
every 0.2 s (bench_curation.measure), and split into the filtering phase and the dedup phases by the time the last
filtering task completed (OUT/logs/filter/completions).

    .venv/bin/python benchmarks/bench_scaling.py [--recipe fineweb] [--sizes 1 2 4] [--workers 1 2]
        [--warc PATH] [--write-results]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_curation import DEFAULT_WARC, REPO, count_html_responses, measure  # noqa: E402
from mdr.layout import RunLayout  # noqa: E402
from mdr.pipeline.runner import FILTER_PHASE  # noqa: E402
from results import machine, table, write_section  # noqa: E402

RESULTS_HEADING = "## Scaling (issue 6): `mdr run {recipe}` at 1x, 2x, 4x the input, 1 and 2 workers (`bench_scaling.py`)"


def run(recipe: str, inputs: Path, out: Path, workers: int, timeout: float) -> dict:
    mdr = REPO / ".venv" / "bin" / "mdr"
    timeline: list[tuple[float, int]] = []
    started = time.time()
    cmd = [str(mdr), "run", recipe, "--input", str(inputs), "--output", str(out), "--workers", str(workers),
           "--tasks", str(workers), "--no-progress"]
    seconds, peak, _ = measure(cmd, dict(os.environ), out.with_suffix(".log"), timeout, timeline=timeline)
    completions = list(RunLayout(out).completions(FILTER_PHASE).glob("*"))
    filter_end = max((p.stat().st_mtime for p in completions), default=started + seconds)
    stats = json.loads(subprocess.run([str(mdr), "stats", str(out), "--json"], check=True, capture_output=True,
                                      text=True, cwd=REPO).stdout)
    return {
        "seconds": seconds, "peak": peak,
        "filter_peak": max((pss for t, pss in timeline if t <= filter_end), default=0),
        "dedup_peak": max((pss for t, pss in timeline if t > filter_end), default=0),
        "filter_seconds": filter_end - started,
        "kept": stats["output_docs"],
        "filtered": next((s["docs_out"] for s in stats["stages"] if s["name"] in ("fineweb_quality", "lines")), None),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--recipe", default="fineweb")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    warc = args.warc.resolve()
    if not warc.is_file():
        print(f"bench_scaling: {warc} not found (pass --warc PATH). Skipping.", file=sys.stderr)
        return 0
    command = " ".join([".venv/bin/python", "benchmarks/bench_scaling.py", *sys.argv[1:]])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    docs = count_html_responses(warc)
    rows = [("input", "HTML docs", "workers", "wall s", "docs/s", "filtering s", "filtering peak", "dedup peak",
             "docs after filtering", "docs kept")]
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        for size in args.sizes:
            inputs = Path(tmp) / f"x{size}"
            inputs.mkdir()
            for copy in range(size):
                (inputs / f"copy{copy}-{warc.name}").symlink_to(warc)
            for workers in args.workers:
                result = run(args.recipe, inputs, Path(tmp) / f"out-x{size}-w{workers}", workers, args.timeout)
                row = (f"{size}x", str(docs * size), str(workers), f"{result['seconds']:.1f}",
                       f"{docs * size / result['seconds']:.2f}", f"{result['filter_seconds']:.1f}",
                       f"{result['filter_peak'] / 2**20:.0f} MiB", f"{result['dedup_peak'] / 2**20:.0f} MiB",
                       str(result["filtered"]), str(result["kept"]))
                rows.append(row)
                print(" | ".join(row), file=sys.stderr, flush=True)
    lines = table(rows)
    print("\n".join(lines))
    if args.write_results:
        heading = RESULTS_HEADING.format(recipe=args.recipe)
        date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
        section = "\n".join([heading, "", f"- date: {date}; load average before the run: {load}",
                             f"- machine: {machine()}", f"- command: `{command}`",
                             f"- input: `{warc.name}` ({docs} HTML responses) given k times as k files; one run each",
                             "", *lines, ""])
        write_section(section, heading)
    return 0


if __name__ == "__main__":
    sys.exit(main())
