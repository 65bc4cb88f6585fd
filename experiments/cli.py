"""The `mdr ablate` verb (experiments/ablate.py):

    mdr ablate (--run OUT | --input WARCS... --recipe RECIPE [--workers N] [--tasks N]) --out DIR --tokens N
               [--arms a,b,c] [--seeds K] [--eval NAME=PATH ...] [--heldout-fraction F] [--preset P]
               [--batch-size B] [--seq-len L] [--lr LR] [--device D] [--parallel N]
               [--task NAME=FILE.jsonl ...] [--continuation Q]

--run reads the taps of a finished `mdr run`; --input curates the WARCs with the recipe first, into DIR/run, tapped
at every arm (experiments/curate.py). Exactly one of the two: the one-line error otherwise is check_request's.

Registering it imports nothing heavy: torch loads when the verb runs (`mdr --help` stays fast).
"""

from __future__ import annotations

import json
import sys

from mdr.errors import UsageError


def register(verbs) -> None:
    ablate = verbs.add_parser("ablate", help="train the same small model on the documents each tapped stage "
                                             "forwards, at equal tokens, and compare them on held-out data")
    ablate.add_argument("--run", metavar="OUT", help="an `mdr run` output directory with taps (or --input)")
    ablate.add_argument("--input", "-i", nargs="+", metavar="PATH",
                        help="WARC/ARC/WET files or directories to curate into DIR/run, with a tap at every arm "
                             "(or --run)")
    ablate.add_argument("--recipe", help="with --input: built-in recipe (refinedweb, fineweb) or a recipe YAML")
    ablate.add_argument("--workers", type=int, help="with --input: curation tasks run at once (default: CPU count)")
    ablate.add_argument("--tasks", type=int, help="with --input: curation tasks (default: max(files, workers))")
    ablate.add_argument("--out", required=True, metavar="DIR", help="the ablation's directory")
    ablate.add_argument("--tokens", required=True, type=int, metavar="N", help="training tokens of every run")
    ablate.add_argument("--arms", metavar="A,B,...", help="tapped stages to compare (default: every tap, in "
                                                          "recipe order); the first is the baseline; with --input, "
                                                          "the stages to tap (default: the recipe's taps)")
    ablate.add_argument("--seeds", type=int, default=3, metavar="K", help="runs per arm (default 3)")
    ablate.add_argument("--eval", action="append", default=[], metavar="NAME=PATH",
                        help="another evaluation set: Parquet with a text column, JSONL with a \"text\" field, "
                             ".txt, or a directory of them; repeat for more")
    ablate.add_argument("--heldout-fraction", type=float, default=0.05, metavar="F",
                        help="share of the first arm's documents held out, by a hash of their WARC record id "
                             "(default 0.05)")
    ablate.add_argument("--preset", default="tiny", help="model shape (default tiny)")
    ablate.add_argument("--batch-size", type=int, default=12, help="sequences per step (default 12)")
    ablate.add_argument("--seq-len", type=int, help="tokens per sequence (default: the preset's context)")
    ablate.add_argument("--tokenizer-vocab-size", type=int, help="vocabulary of the shared tokenizer")
    ablate.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    ablate.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ablate.add_argument("--parallel", type=int, default=1, metavar="N",
                        help="CPU trainings run at once, each in a process with its share of the cores (default 1)")
    ablate.add_argument("--task", action="append", default=[], metavar="NAME=FILE.jsonl",
                        help="a multiple-choice task scored in every run, rows {\"context\", \"choices\", "
                             "\"label\"}; repeat for more")
    ablate.add_argument("--continuation", type=int, default=0, metavar="Q",
                        help="also score Q continuation questions built from the heldout-last documents, kept in "
                             "DIR/eval/continuation.jsonl (default 0: none)")
    ablate.add_argument("--no-progress", action="store_true", help="no progress lines")
    ablate.add_argument("--json", action="store_true", help="print ablation.json instead of the table")
    ablate.set_defaults(handler=cmd_ablate)


def cmd_ablate(args) -> int:
    from mdr.train.cli import reported

    return reported(_ablate)(args)


def _ablate(args) -> int:
    from mdr.train.cli import check_device, require_train_extra

    require_train_extra("ablate", "torch", "tensorboard")
    from mdr.experiments.ablate import AblateConfig, ablate, format_table, parse_eval, parse_task
    from mdr.pipeline.terminal import safe

    evals = dict(parse_eval(text) for text in args.eval)
    if len(evals) != len(args.eval):
        raise UsageError("--eval: each NAME once")
    task_files = dict(parse_task(text) for text in args.task)
    if len(task_files) != len(args.task):
        raise UsageError("--task: each NAME once")
    config = AblateConfig(run=args.run, input=args.input, recipe=args.recipe, workers=args.workers,
                          tasks=args.tasks, out=args.out, tokens=args.tokens,
                          arms=args.arms.split(",") if args.arms else None, seeds=args.seeds, evals=evals,
                          heldout_fraction=args.heldout_fraction, preset=args.preset, batch_size=args.batch_size,
                          seq_len=args.seq_len, tokenizer_vocab_size=args.tokenizer_vocab_size, lr=args.lr,
                          device=check_device(args.device), progress=not args.no_progress,
                          parallel=args.parallel, task_files=task_files, continuation=args.continuation)
    summary = ablate(config)
    print(json.dumps(summary, indent=2) if args.json else safe(format_table(summary)))
    if not args.json:
        print(f"mdr: ablation -> {args.out}", file=sys.stderr)
    return 0
