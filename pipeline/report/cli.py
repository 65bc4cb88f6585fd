"""The `mdr report` and `mdr inspect` verbs (plugged into `mdr` through `register(verbs)`)."""

from __future__ import annotations

import sys
from pathlib import Path

from mdr.formatting import size
from mdr.pipeline.recipe import RecipeError
from mdr.pipeline.report import DEFAULT_INSPECT_CHARS, DEFAULT_SAMPLE_CHARS, DEFAULT_SAMPLES


def _non_negative(value: int | None, flag: str) -> int | None:
    if value is not None and value < 0:
        raise RecipeError(f"{flag} must be 0 or more, got {value}")
    return value


def register(verbs) -> None:
    report = verbs.add_parser("report", help="a self-contained HTML report of a run: funnel, plots, sample browser")
    report.add_argument("dir", metavar="DIR")
    report.add_argument("--output", "-o", required=True, metavar="FILE", help="the HTML file to write")
    report.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                        help=f"random documents per stage and reason, and kept (default {DEFAULT_SAMPLES})")
    report.add_argument("--seed", type=int, default=0, help="seed of the random samples (default 0)")
    report.add_argument("--sample-chars", type=int, default=DEFAULT_SAMPLE_CHARS, metavar="N",
                        help=f"text characters kept per sampled document (default {DEFAULT_SAMPLE_CHARS:,})")
    report.set_defaults(handler=cmd_report)

    inspect = verbs.add_parser("inspect", help="page through the documents a stage dropped")
    inspect.add_argument("dir", metavar="DIR")
    inspect.add_argument("--stage", "-s", required=True, help="the stage, e.g. repetition")
    inspect.add_argument("--reason", "-r", help="only this drop reason, e.g. dup_line_frac")
    inspect.add_argument("--limit", "-n", type=int, metavar="N",
                         help="documents to show (default: all on a terminal, else 10)")
    inspect.add_argument("--random", action="store_true", help="random order (with --seed) instead of stored order")
    inspect.add_argument("--seed", type=int, default=0)
    inspect.add_argument("--chars", type=int, default=DEFAULT_INSPECT_CHARS, metavar="N",
                         help=f"text characters shown per document, 0 for all (default {DEFAULT_INSPECT_CHARS})")
    inspect.set_defaults(handler=cmd_inspect)


def cmd_report(args) -> int:
    from mdr.pipeline.report.report import write_report

    _non_negative(args.samples, "--samples")
    _non_negative(args.sample_chars, "--sample-chars")
    output = Path(args.output)
    _check_report_path(output)
    try:
        path = write_report(args.dir, output, samples=args.samples, seed=args.seed, sample_chars=args.sample_chars)
    except FileNotFoundError as error:
        raise RecipeError(str(error)) from None
    print(f"mdr: report of {args.dir} -> {path} ({size(path.stat().st_size)})", file=sys.stderr)
    return 0


def _check_report_path(output: Path) -> None:
    """Refuses (RecipeError) an output that is no file to write, and any path inside a run directory (a directory
    holding an mdr run.json, `is_run_dir`, at any depth above the output: the run reported or another). A report never
    replaces a run's run.json, shards, stats or logs, and nothing of a run's tree is the place for one: write it
    beside the run."""
    from mdr.pipeline.runner import is_run_dir, unwritable_reason

    if output.is_dir():
        raise RecipeError(f"--output {output} is a directory: name the HTML file to write")
    if output.exists() and not output.is_file():
        raise RecipeError(f"--output {output} exists and is not a regular file")
    target = output.resolve()  # through symbolic links, so that no link leads into a run either
    inside = next((folder for folder in target.parents if is_run_dir(folder)), None)
    if inside is not None:
        raise RecipeError(f"--output {output} is inside the run directory {inside}: mdr report writes nothing into "
                          f"a run; choose a path outside it, e.g. {inside.parent / (inside.name + '.html')}")
    if not output.parent.is_dir():
        raise RecipeError(f"cannot write {output}: directory {output.parent} does not exist")
    problem = unwritable_reason(output.parent)
    if problem:
        raise RecipeError(f"cannot write {output}: {problem}")


def cmd_inspect(args) -> int:
    from mdr.pipeline.report.inspect import inspect

    _non_negative(args.limit, "--limit")
    _non_negative(args.chars, "--chars")
    inspect(args.dir, args.stage, args.reason, limit=args.limit, random=args.random, seed=args.seed,
            max_chars=args.chars)
    return 0
