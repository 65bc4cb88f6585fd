"""Time and peak memory of `mdr report` on a run with many excluded documents (issue 5: 100,000 in < 30 s on 2 cores).

A synthetic run directory is written first with mdr's own Parquet writer (the exclusion and data writers of
`mdr run`): documents built from random words, lengths log-normal around a web page's, spread over the funnel's
stages and tasks like a real run, plus the datatrove stats files and run.json that `mdr stats` reads. Then
`mdr report DIR -o FILE` runs in its own process with 2 polars threads, timed from process start to exit; peak RSS
is the child's `ru_maxrss`.

    .venv/bin/python benchmarks/bench_report.py [--excluded 100000 300000] [--tasks 8] [--repeat 3]
        [--workdir DIR] [--write-results]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results import RESULTS_MD, machine, write_section
from datatrove.data import Document

from mdr.formatting import size
from mdr.layout import RunLayout, task_stats_name
from mdr.pipeline.runner import FILTER_PHASE
from mdr.pipeline.writer import ParquetShardWriter

REPO = Path(__file__).resolve().parents[1]
RESULTS_HEADING = "## Report build (issue 5): `mdr report` on runs with many excluded documents (`bench_report.py`)"
# Share of the excluded documents per stage and its reasons, roughly as on dev-pages-531 (benchmarks/RESULTS.md).
STAGES = {
    "url": {"domain": 0.02, "curated_source": 0.03},
    "extract": {"empty": 0.05},
    "language": {"language": 0.2, "low_score": 0.05},
    "repetition": {"dup_line_frac": 0.15, "duplicated_5_n_grams": 0.1, "top_2_gram": 0.02},
    "quality": {"gopher_below_alpha_threshold": 0.25, "gopher_short_doc": 0.05},
    "lines": {"too_many_words_removed": 0.08},
}
HTML_STAGES = {"url", "extract"}
TYPES = {"url": "🔻 - FILTER", "extract": "🛢 - EXTRAC"}
MEDIAN_WORDS = 400  # log-normal document length (words), sigma below
SIGMA = 1.0
LANGUAGES = ["fr", "de", "es", "zh", "ru", "pt", "ja", "it"]


def make_run(out: Path, excluded: int, kept: int, tasks: int, seed: int = 0) -> dict:
    """Writes a run directory with `excluded` dropped and `kept` output documents; returns its stage counts."""
    layout = RunLayout(out)
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(5000)] + ["the", "of", "and", "a", "to", "in", "is"] * 300)
    paragraphs = [" ".join(rng.choice(vocabulary, size=n)) + "." for n in rng.integers(20, 120, size=3000)]
    reasons = [(stage, reason, share) for stage, shares in STAGES.items() for reason, share in shares.items()]
    shares = np.array([share for *_, share in reasons])
    picks = rng.choice(len(reasons), size=excluded, p=shares / shares.sum())
    counts = {(stage, reason): int((picks == i).sum()) for i, (stage, reason, _) in enumerate(reasons)}

    def text(html: bool) -> str:
        words = max(int(rng.lognormal(np.log(MEDIAN_WORDS), SIGMA)), 5)
        chosen = [paragraphs[i] for i in rng.integers(0, len(paragraphs), size=max(words // 70, 1))]
        return ("<html><body><p>" + "</p><p>".join(chosen) + "</p></body></html>") if html else "\n".join(chosen)

    stats = [dict() for _ in range(tasks)]  # per task: stage -> counters
    dropped_chars = {stage: [0] * tasks for stage in STAGES}  # text of the documents a text stage dropped
    kept_chars = [0] * tasks
    number = 0
    for stage_index, stage in enumerate(STAGES):
        writers = [ParquetShardWriter(str(layout.excluded(stage)), stage=stage, html=stage in HTML_STAGES)
                   for _ in range(tasks)]
        for (name, reason), count in counts.items():
            if name != stage:
                continue
            for _ in range(count):
                rank = number % tasks
                language = str(rng.choice(LANGUAGES)) if stage == "language" and reason == "language" else "en"
                score = float(rng.uniform(0.3, 0.64)) if reason == "low_score" else float(rng.uniform(0.65, 1))
                doc = Document(text=text(stage in HTML_STAGES), id=f"<urn:uuid:{number:032x}>", metadata={
                    "url": f"https://site{number % 997}.example/{number}", "filter_reason": reason,
                    "drop_detail": f"{reason} {rng.uniform(0.3, 0.9):.4f} > 0.3", "source_file": "bench.warc.gz",
                    "source_offset": number * 1000,
                    **({} if stage in HTML_STAGES else {"language": language, "language_score": score})})
                writers[rank].write(doc, rank)
                if stage not in HTML_STAGES:
                    dropped_chars[stage][rank] += len(doc.text)
                counter = stats[rank].setdefault(stage, {"dropped": 0})
                counter["dropped"] += 1
                counter[f"dropped_{reason}"] = counter.get(f"dropped_{reason}", 0) + 1
                number += 1
        for writer in writers:
            writer.close()
    data = [ParquetShardWriter(str(layout.data)) for _ in range(tasks)]
    for index in range(kept):
        rank = index % tasks
        body = text(False)
        data[rank].write(Document(text=body, id=f"<urn:uuid:k{index:031x}>", metadata={
            "url": f"https://kept{index % 991}.example/{index}", "language": "en",
            "language_score": float(rng.uniform(0.65, 1)), "source_file": "bench.warc.gz",
            "source_offset": index}), rank)
        kept_chars[rank] += len(body)
    for writer in data:
        writer.close()
    # datatrove stats files: each task's counters in pipeline order, documents flowing stage to stage.
    layout.stats(FILTER_PHASE).mkdir(parents=True)
    for rank in range(tasks):
        flowing = sum(c.get("dropped", 0) for c in stats[rank].values()) + len(range(rank, kept, tasks))
        steps = [{"name": "📖 - READER: read", "time_stats": {"total": 1.0},
                  "stats": {"total": flowing, "forwarded": flowing}}]
        names = list(STAGES)
        for index, stage in enumerate(names):
            counter = stats[rank].get(stage, {"dropped": 0})
            # doc_len: characters of the text it forwarded = kept text + text dropped by the stages after it
            forwarded_chars = kept_chars[rank] + sum(dropped_chars[later][rank] for later in names[index + 1:])
            step = {"total": flowing, "forwarded": flowing - counter["dropped"], **counter,
                    "doc_len": {"total": forwarded_chars}}
            steps.append({"name": f"{TYPES.get(stage, '🔻 - FILTER')}: {stage}", "time_stats": {"total": 1.0},
                          "stats": step})
            flowing -= counter["dropped"]
        (layout.logs(FILTER_PHASE) / task_stats_name(rank)).write_text(json.dumps(steps))
    layout.run_file.write_text(json.dumps({
        "recipe": {"name": "bench", "stages": [{stage: {"threshold": 0.65} if stage == "language" else {}}
                                               for stage in STAGES]},
        "inputs": ["bench.warc.gz"], "tasks": tasks,
        "phases": [{"name": FILTER_PHASE, "tasks": tasks, "stages": ["read", *STAGES]}]}))
    return {"excluded": number, "kept": kept}


def timed_mdr(*args: str) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of `mdr ARGS` in a child process limited to 2 polars threads."""
    env = {**os.environ, "POLARS_MAX_THREADS": "2"}
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "mdr", *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mdr {' '.join(args)} failed: {child.stderr.read().decode()}")
    child.stderr.close()
    return seconds, usage.ru_maxrss / 1024


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.parquet"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--excluded", type=int, nargs="+", default=[100_000, 300_000],
                        help="excluded documents of each synthetic run (kept: a fifth of it)")
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--write-results", action="store_true", help=f"replace this benchmark's section of {RESULTS_MD}")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mdr-bench-report-"))
    startup_seconds, startup_rss = timed_mdr("report", "--help")  # interpreter and imports only
    rows = []
    for excluded in args.excluded:
        out, kept = work / f"run-{excluded}", excluded // 5
        if not RunLayout(out).run_file.exists():
            start = time.perf_counter()
            make_run(out, excluded, kept, args.tasks)
            print(f"wrote {excluded:,} excluded + {kept:,} kept documents ({size(du(out))} of Parquet) in "
                  f"{time.perf_counter() - start:.0f} s -> {out}")
        runs, peaks = [], []
        for attempt in range(args.repeat):
            seconds, rss = timed_mdr("report", str(out), "-o", str(work / "report.html"))
            runs.append(seconds)
            peaks.append(rss)
            print(f"{excluded:,} excluded, run {attempt + 1}: {seconds:.1f} s, peak RSS {rss:.0f} MiB")
        rows.append(f"| {excluded:,} | {kept:,} | {size(du(RunLayout(out).excluded_dir))} | "
                    f"{statistics.median(runs):.1f} | {' '.join(f'{r:.1f}' for r in runs)} | {max(peaks):.0f} MiB | "
                    f"{size((work / 'report.html').stat().st_size)} |")
    summary = "\n".join([
        "| excluded docs | kept docs | Parquet (excluded) | median s | runs (s) | peak RSS (max) | report size |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"Starting `mdr` alone (`mdr report --help`, same measure): {startup_seconds:.1f} s, {startup_rss:.0f} MiB.",
    ])
    print(summary)
    if args.write_results:
        write_results(args, summary)
    return 0


def write_results(args, summary: str) -> None:
    date = subprocess.run(["date"], capture_output=True, text=True).stdout.strip()
    heading = RESULTS_HEADING
    command = " ".join(["benchmarks/bench_report.py", *sys.argv[1:]])
    section = "\n".join([
        heading, "",
        f"- date: {date}",
        f"- machine: {machine()}; shared with other jobs, so absolute figures are noisy",
        f"- command: `.venv/bin/python {command}`",
        f"- run: synthetic, written by mdr's own Parquet writers ({args.tasks} tasks, rows of 1,000 per row group); "
        f"texts from random words, log-normal lengths (median {MEDIAN_WORDS} words), dropped documents spread "
        "over url/extract (HTML) and language/repetition/quality/lines (text) with several reasons each",
        "- timed: `mdr report RUN -o report.html` (defaults: 10 samples per reason, 10,000 characters each) in its "
        "own process, interpreter start to exit, `POLARS_MAX_THREADS=2`; peak RSS = the child's `ru_maxrss` (wait4); "
        "`mdr report --help` in the same way gives the cost of starting `mdr` (interpreter and imports) alone",
        "", summary, "",
    ])
    write_section(section, heading.split(":")[0])


if __name__ == "__main__":
    sys.exit(main())
