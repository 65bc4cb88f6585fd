"""The `mdr` command: its root parser, and what a verb's error becomes (one line on stderr and an exit code).

    mdr run | stats | recipes             curate WARCs, read a run's funnel (mdr.pipeline.cli)
    mdr tokenizer                         train a tokenizer on shards (mdr.train.tokenizer)
    mdr report | inspect                  a run's HTML report, its documents (mdr.pipeline.report.cli)
    mdr train | eval | sample | export    GPT training on the shards (mdr.train.cli; the `train` extra)
    mdr tokenize                          shards into token files, once (mdr.train.cli -> mdr.train.tokenize)
    mdr ablate                            a model per tapped stage, compared (mdr.experiments.cli)
    mdr scale                             a sweep of model sizes × tokens, scaling-law fits (mdr.experiments.cli)

`python -m mdr ...` is the same command, so `torchrun --nproc-per-node N -m mdr train ...` trains with DDP.

Exit codes: 0 success, 1 a run that failed while running, 2 a request that cannot run (bad recipe, missing
input, output directory of another run); the error is one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from mdr.errors import PhaseFailedError, UsageError

EXIT_FAILED = 1
EXIT_USAGE = 2

# Modules with a `register(verbs)` function adding their own verbs (argparse subparsers with a `handler` default).
# They import nothing heavy at module level: `mdr --help` loads neither datatrove's executors nor torch.
VERBS: list[str] = ["mdr.pipeline.cli", "mdr.train.tokenizer", "mdr.pipeline.report.cli", "mdr.train.cli",
                   "mdr.experiments.cli"]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mdr", description="Macrodata Refinement: curate WARCs into Parquet shards.")
    verbs = root.add_subparsers(dest="verb", required=True)
    for module in VERBS:
        importlib.import_module(module).register(verbs)
    return root


def _os_error_line(error: OSError, args) -> str:
    """One line for an OSError met while running (a disk that filled up, a file removed meanwhile): the cause and
    the path, or the output directory when the failing call named none (a write() names no file)."""
    import errno

    paths = [os.fsdecode(name) if isinstance(name, bytes) else str(name)
             for name in (error.filename, error.filename2) if name is not None]
    line = error.strerror or str(error) or type(error).__name__
    if paths:
        line += f": {' -> '.join(paths)}"
    elif getattr(args, "output", None):
        line += f" (writing {args.output})"
    if error.errno == errno.ENOSPC and args.verb == "run":
        line += "; free some space and rerun the same command to resume"
    return line


def print_error(message: str) -> None:
    from mdr.pipeline.terminal import safe

    print(safe(f"mdr: error: {message}").replace("\n", " "), file=sys.stderr)  # one line, whatever it quotes


def main(argv: list[str] | None = None) -> int:
    from mdr.pipeline.terminal import set_console_level

    # This process too logs through loguru (datatrove's driver code, libraries routed to it): its console shows
    # neutralised warnings and errors, not loguru's raw DEBUG sink nor Python logging's raw last resort.
    set_console_level("WARNING")
    args = parser().parse_args(argv)
    # the `mdr` command's own process (argv from its command line), not a caller's process that runs main([...])
    args.command_process = argv is None
    code = _run_verb(args)
    if args.command_process and args.verb == "run":
        _exit_without_teardown(code)
    return code


def _run_verb(args) -> int:
    try:
        return args.handler(args)
    except UsageError as error:  # RecipeError and the trainer's user errors
        print_error(str(error))
        return EXIT_USAGE
    except PhaseFailedError as error:  # a task failed while running; its log file is named in the message
        print_error(str(error))
        return EXIT_FAILED
    except BrokenPipeError:  # `mdr stats OUT | head`
        sys.stderr.close()
        return 0
    except OSError as error:  # foreseeable, not a bug: a full disk, a read-only mount, a file removed meanwhile
        print_error(_os_error_line(error, args))
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("mdr: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _exit_without_teardown(code: int) -> None:
    """Exit as Python would, without tearing the interpreter down: the exit handlers run (logging's, multiprocessing's,
    loguru's, Ray's) and the standard streams are flushed, then os._exit. A run's driver holds spaCy, lxml, pyarrow and
    datatrove; freeing every module's objects one by one took 0.24-0.29 s from a run's last write to its exit, 0.02 s
    now (3-4% of a run on the Common Crawl samples, benchmarks/RESULTS.md, issue 15): memory the OS takes back at
    once. Every file a run writes is closed (and atomically renamed) before its verb returns. A thread that is still
    running (none is, after a run) keeps the usual exit, which waits for it."""
    import atexit
    import threading

    if any(not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
        return
    atexit._run_exitfuncs()  # the atexit module's private runner (CPython), what interpreter shutdown calls first
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`mdr run ... | head`), a closed stream
            pass
    os._exit(code)
