"""The curation verbs of the `mdr` command (mdr/cli.py holds the root parser and the exit codes).

    mdr run RECIPE --input PATH... --output DIR [--executor local|ray|slurm] [--tasks N] [--workers N] [--tap STAGE]...
    mdr stats DIR [DIR_B] [--json]
    mdr recipes [NAME]
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import sys
from pathlib import Path

from mdr.pipeline.recipe import MAX_TASKS, RecipeError


def register(verbs) -> None:
    """Adds run, stats and recipes to the mdr CLI (mdr/cli.py)."""
    run = verbs.add_parser("run", help="curate WARC/ARC/WET files with a recipe")
    run.add_argument("recipe", help="built-in recipe (refinedweb, fineweb) or a path to a recipe YAML")
    run.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH",
                     help="files, directories, URLs, cc:CC-MAIN-YYYY-WW[/SEGMENT] (a crawl's WARC files), or @LIST "
                          "(a file of paths or URLs, one a line)")
    run.add_argument("--cc-endpoint", metavar="URL",
                     help="where cc: inputs are read (default: MDR_CC_ENDPOINT, else https://data.commoncrawl.org/; "
                          "s3://commoncrawl/ with s3fs installed)")
    run.add_argument("--sample", type=int, metavar="N",
                     help="cc: inputs: N of the crawl's WARC files, drawn with --seed")
    run.add_argument("--limit", type=int, metavar="N", help="cc: inputs: the first N of the crawl's WARC files")
    run.add_argument("--seed", type=int, default=0, help="the seed of --sample (default 0)")
    run.add_argument("--output", "-o", required=True, metavar="DIR")
    run.add_argument("--executor", choices=["local", "ray", "slurm"], default="local")
    run.add_argument("--tasks", type=int, help="number of tasks (default: max(files, workers))")
    run.add_argument("--workers", type=int, help="tasks run at once (local default: CPU count)")
    run.add_argument("--tap", action="append", default=[], metavar="STAGE",
                     help="also keep the documents STAGE forwards, in OUT/taps/STAGE/ (repeatable; recipe key taps)")
    run.add_argument("--no-progress", action="store_true", help="no live progress line")
    run.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)")
    run.add_argument("--slurm-partition", help="Slurm partition (default: the cluster's default)")
    run.add_argument("--slurm-time", default="24:00:00", help="Slurm time limit per task")
    run.add_argument("--slurm-cpus-per-task", type=int, default=1)
    run.add_argument("--slurm-mem-per-cpu-gb", type=float, default=2.0)
    run.add_argument("--no-wait", action="store_true", help="slurm: submit the jobs and return")

    stats = verbs.add_parser("stats", help="the per-stage funnel of a run")
    stats.add_argument("dirs", nargs="+", metavar="DIR", help="a run directory; two to compare them stage by stage")
    stats.add_argument("--json", action="store_true", help="machine-readable funnel (or comparison)")

    recipes = verbs.add_parser("recipes", help="list the built-in recipes, or print one to copy and edit")
    recipes.add_argument("name", nargs="?")

    run.set_defaults(handler=cmd_run)
    stats.set_defaults(handler=cmd_stats)
    recipes.set_defaults(handler=cmd_recipes)


def _positive(value: int | None, flag: str, most: int | None = None, why: str = "") -> int | None:
    if value is not None and value < 1:
        raise RecipeError(f"{flag} must be at least 1, got {value}")
    if value is not None and most is not None and value > most:
        raise RecipeError(f"{flag} must be at most {most:,}{why}, got {value:,}")
    return value


# sbatch --time: minutes, minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes,
# days-hours:minutes:seconds (sbatch(1)), or the partition's UNLIMITED/INFINITE.
_SLURM_TIME = re.compile(r"\d+(?::\d+){0,2}|\d+-\d+(?::\d+){0,2}|UNLIMITED|INFINITE")


def check_tasks_and_workers(tasks: int | None, workers: int | None, executor: str = "local") -> None:
    """--tasks and --workers in range (None: the default), for `mdr run` and `mdr ablate --input`."""
    _positive(tasks, "--tasks", MAX_TASKS, " (each task keeps files of its own in every phase)")
    nproc, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if executor == "local" and nproc != resource.RLIM_INFINITY:  # a local worker is a process of this user
        _positive(workers, "--workers", nproc, " (this user's process limit, ulimit -u)")
    else:
        _positive(workers, "--workers")


def _check_run_flags(args) -> None:
    """`mdr run`'s numeric and formatted flags, before anything runs (argparse checks only their types)."""
    check_tasks_and_workers(args.tasks, args.workers, args.executor)
    _positive(args.slurm_cpus_per_task, "--slurm-cpus-per-task")
    if not (math.isfinite(args.slurm_mem_per_cpu_gb) and args.slurm_mem_per_cpu_gb > 0):
        raise RecipeError(f"--slurm-mem-per-cpu-gb must be a positive number, got {args.slurm_mem_per_cpu_gb}")
    if not _SLURM_TIME.fullmatch(args.slurm_time):
        raise RecipeError(f"--slurm-time must be a Slurm time such as 24:00:00, 90 or 2-00:00:00, got "
                          f"{args.slurm_time!r}")


def _check_run_resources(args, recipe, tasks: int, workers: int) -> None:
    """A recipe whose predictable memory or open files do not fit where its tasks run (mdr.pipeline.recipe)."""
    from mdr.pipeline.recipe import check_resources, open_files_limit

    if args.executor == "local":
        check_resources(recipe, tasks, workers, open_files_limit=open_files_limit())
    elif args.executor == "slurm":  # sbatch --mem-per-cpu=<n>G: GiB per CPU, a task's hard limit
        memory = int(args.slurm_mem_per_cpu_gb * args.slurm_cpus_per_task * 2**30)
        where = (f"a Slurm task's memory (--slurm-mem-per-cpu-gb {args.slurm_mem_per_cpu_gb:g} × "
                 f"{args.slurm_cpus_per_task} CPU)")
        check_resources(recipe, tasks, 1, memory, where=where)
    elif not (args.ray_address or os.environ.get("RAY_ADDRESS")):  # a Ray started here, on this machine
        check_resources(recipe, tasks, workers)


def _tell(line: str) -> None:
    """One line of `mdr run` on stderr; file names are data, so it goes through the terminal neutraliser, and a
    newline in one is shown as `\\n` (a name holding one would otherwise print a line of its own, `mdr: error: ...`
    as well as anything)."""
    from mdr.pipeline.terminal import one_line

    print(one_line(f"mdr: {line}"), file=sys.stderr)


def skipped_lines(skipped: list, shown: int = 5) -> list[str]:
    """One line per reason a path found in the inputs is not read, naming the first `shown` such paths."""
    from mdr.pipeline.runner import SKIP_REASONS

    lines = []
    for reason, description in SKIP_REASONS.items():
        paths = [f"{s.path} ({s.detail})" if s.detail else s.path for s in skipped if s.reason == reason]
        if paths:
            more = f" ... and {len(paths) - shown} more" if len(paths) > shown else ""
            lines.append(f"skipping {len(paths)} path(s) {description}: {', '.join(paths[:shown])}{more}")
    return lines


def _executor_options(args, workers: int):
    """The executor options of `mdr run`'s flags. `workers` (the CPU-count default) applies to local runs only, unless
    --workers was given: on Ray and Slurm the cluster decides how many tasks run at once."""
    from mdr.pipeline.executors import ExecutorOptions, RayOptions, SlurmOptions

    return ExecutorOptions(
        kind=args.executor,
        workers=workers if args.executor == "local" or args.workers is not None else -1,
        wait=not args.no_wait,
        start_method=_start_method(args),
        slurm=SlurmOptions(partition=args.slurm_partition, time=args.slurm_time,
                           cpus_per_task=args.slurm_cpus_per_task, mem_per_cpu_gb=args.slurm_mem_per_cpu_gb),
        ray=RayOptions(address=args.ray_address),
    )


def _start_method(args) -> str:
    """How `mdr run` starts local task processes: forked from the `mdr` command's own process on Linux, not from a
    forkserver, a second interpreter that imports again what this one has (mdr, datatrove, pyarrow), plus a
    resource-tracker process: 0.7-0.9 CPU seconds of every run (one-record run 3.04 -> 2.14 s CPU, medians of 5
    alternating runs; benchmarks/RESULTS.md, issue 15). That process starts no OpenMP threads before it forks, and
    what threads it has are fork-safe: fsspec and loguru reset their locks in the child, numpy's OpenBLAS and Arrow
    their pools, and the progress thread draws under a lock that forks take (mdr.pipeline.progress). A process that calls `main([...])` itself (a test, a notebook) may
    have started OpenMP's threads (torch, pydivsufsort), which a forked child cannot use: it hangs on its first
    parallel region (seen in the test suite). It, and other callers of the executors, get the forkserver."""
    return "fork" if sys.platform == "linux" and getattr(args, "command_process", False) else "forkserver"


def _input_size_line(files: list[str]) -> str:
    """How many files and bytes the run reads (URLs sized by HEAD requests); sizes not known are said to be."""
    from mdr.formatting import size
    from mdr.pipeline.crawl import input_sizes

    sizes = input_sizes(files)
    known = [n for n in sizes if n is not None]
    unknown = len(sizes) - len(known)
    amount = size(sum(known)) if known else "unknown size"
    if known and unknown:
        amount += f" in {len(known)} of them, {unknown} of unknown size"
    return f"reading {len(files)} file(s), {amount}"


def cmd_run(args) -> int:
    from mdr.patches import check_installed
    from mdr.pipeline.crawl import CrawlOptions, RetryPolicy, crawl_request, expand_crawl_inputs
    from mdr.pipeline.recipe import load_recipe
    from mdr.pipeline.runner import RunPlan, check_output_dir, default_tasks, expand_inputs, recorded_inputs, run
    from mdr.pipeline.stats import check_invariants

    _check_run_flags(args)
    check_installed(optional=(args.executor,))  # here, not in a task after run.json is written (Ray: --executor ray)
    recipe = load_recipe(args.recipe).with_taps(args.tap)
    RetryPolicy.from_env()  # a bad MDR_HTTP_* setting is a usage error here, not a failure in every task
    crawl = CrawlOptions(endpoint=args.cc_endpoint, sample=args.sample, limit=args.limit, seed=args.seed)
    # The drawn paths are the plan's inputs: run.json records them with the request they were drawn by; a resume of
    # the same request takes them from there, any other must draw the same (check_output_dir)
    request = crawl_request(args.input, crawl)
    recorded = recorded_inputs(Path(args.output), request)
    files, skipped = expand_inputs(recorded if recorded is not None else expand_crawl_inputs(args.input, crawl))
    workers = args.workers or (os.cpu_count() or 1)  # --workers and --tasks checked by _check_run_flags
    tasks = args.tasks or default_tasks(len(files), workers)
    _check_run_resources(args, recipe, tasks, workers)
    plan = RunPlan(recipe, files, Path(args.output), tasks, crawl=request)
    resuming = check_output_dir(plan)  # refuse before anything is written
    options = _executor_options(args, workers)
    for line in skipped_lines(skipped):
        _tell(line)
    _tell(_input_size_line(files))
    _tell(f"{'resuming' if resuming else 'running'} recipe {recipe.name} on {len(files)} file(s), "
          f"{tasks} task(s), executor {args.executor} -> {plan.output}")
    if plan.tap_folders:
        _tell("taps: " + ", ".join(f"{stage} -> {folder}" for stage, folder in plan.tap_folders.items()))
    result = run(plan, options, progress=not args.no_progress)
    if args.executor == "slurm" and args.no_wait:
        _tell(f"submitted; follow it with `mdr stats {plan.output}`")
        return 0
    problems = check_invariants(result)
    _tell(f"{result['input_records']:,} records in, {result['output_docs']:,} documents out -> {plan.layout.data}")
    if problems:
        _tell(f"warning: stats inconsistent: {'; '.join(problems)}")
    return 0


def cmd_stats(args) -> int:
    from mdr.pipeline.report.table import compare, format_comparison, format_funnel
    from mdr.pipeline.stats import funnel

    if len(args.dirs) > 2:
        raise RecipeError(f"mdr stats takes one run directory, or two to compare; got {len(args.dirs)}")
    try:
        result = funnel(args.dirs[0]) if len(args.dirs) == 1 else compare(*args.dirs)
    except FileNotFoundError as error:
        raise RecipeError(str(error)) from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_funnel(result) if len(args.dirs) == 1 else format_comparison(result))
    return 0


def cmd_recipes(args) -> int:
    from mdr.pipeline.recipe import builtin_recipes, recipe_path

    if args.name:
        print(recipe_path(args.name).read_text(), end="")
    else:
        for name in builtin_recipes():
            print(name)
    return 0
