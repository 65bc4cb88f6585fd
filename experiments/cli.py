"""The `mdr ablate` verb (experiments/ablate.py):

    mdr ablate (--run OUT | --input WARCS... --recipe RECIPE [--workers N] [--tasks N]) --out DIR --tokens N
               [--arms a,b,c] [--seeds K] [--eval NAME=PATH ...] [--heldout-fraction F] [--preset P]
               [--batch-size B] [--seq-len L] [--lr LR] [--device D] [--parallel N]
               [--task NAME=FILE.jsonl ...] [--continuation Q]

    mdr scale --data SHARDS --out DIR --sizes LxD,... (--tokens T,... | --flops C,...) [--budget C ...]
              [--preset P] [--head-size H] [--batch-size B] [--seq-len L] [--tokenizer-vocab-size V] [--lr LR]
              [--seed S] [--heldout-fraction F] [--holdout-budgets K] [--bootstrap R] [--device D] [--parallel N]

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

    scale = verbs.add_parser("scale", help="train a grid of model sizes × tokens (or sizes at equal compute) on "
                                           "shards, fit scaling laws and predict the compute-optimal size")
    scale.add_argument("--data", nargs="+", required=True, metavar="SHARDS",
                       help="Parquet files, directories, globs, URLs or `mdr run` output directories")
    scale.add_argument("--out", required=True, metavar="DIR", help="the sweep's directory")
    scale.add_argument("--sizes", required=True, metavar="LxD,...",
                       help="model sizes: LxD is L layers of width D with D/--head-size heads, LxDxH sets the heads")
    scale.add_argument("--tokens", metavar="T,...", help="a grid: every size trained on each token count (300k, 1M)")
    scale.add_argument("--flops", metavar="C,...",
                       help="IsoFLOP: every size trained at each compute budget in FLOPs (1e12, 3e12), 3+ sizes")
    scale.add_argument("--budget", action="append", default=[], metavar="C",
                       help="a compute budget to predict the compute-optimal N, D and loss at; repeat for more")
    scale.add_argument("--preset", default="tiny", help="base shape: context, tokenizer size, learning rate")
    scale.add_argument("--head-size", type=int, metavar="H",
                       help="width per attention head for LxD sizes (default: the preset's)")
    scale.add_argument("--batch-size", type=int, default=12, help="sequences per step (default 12)")
    scale.add_argument("--seq-len", type=int, help="tokens per sequence (default: the preset's context)")
    scale.add_argument("--tokenizer-vocab-size", type=int, help="vocabulary of the shared tokenizer")
    scale.add_argument("--lr", type=float, help="peak learning rate of every run (default: the preset's)")
    scale.add_argument("--seed", type=int, default=0, help="model init and data order seed, and the bootstrap's")
    scale.add_argument("--heldout-fraction", type=float, default=0.05, metavar="F",
                       help="share of the documents held out for every run's final loss, by text hash (default 0.05)")
    scale.add_argument("--holdout-budgets", type=int, default=1, metavar="K",
                       help="largest compute budgets left out of a second fit and predicted (default 1; 0: none)")
    scale.add_argument("--bootstrap", type=int, default=200, metavar="R",
                       help="bootstrap resamples for approach 3's intervals (default 200)")
    scale.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    scale.add_argument("--parallel", type=int, default=1, metavar="N",
                       help="CPU trainings run at once, each in a process with its share of the cores (default 1)")
    scale.add_argument("--no-progress", action="store_true", help="no progress lines")
    scale.add_argument("--json", action="store_true", help="print scaling.json instead of the table")
    scale.set_defaults(handler=cmd_scale)


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


def cmd_scale(args) -> int:
    from mdr.train.cli import reported

    return reported(_scale)(args)


def _scale(args) -> int:
    from mdr.train.cli import check_device, require_train_extra

    require_train_extra("scale", "torch", "tensorboard")
    from mdr.experiments.scale import ScaleConfig, format_table, parse_counts, parse_sizes, scale
    from mdr.pipeline.terminal import safe
    from mdr.train.model import PRESETS

    if args.preset not in PRESETS:
        raise UsageError(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}")
    base = PRESETS[args.preset]
    head_size = args.head_size or base.n_embd // base.n_head
    if head_size < 1:
        raise UsageError(f"--head-size must be at least 1, got {head_size}")
    budgets = [value for text in args.budget for value in parse_counts(text, "--budget")]
    config = ScaleConfig(data=args.data, out=args.out, sizes=parse_sizes(args.sizes, head_size),
                         tokens=parse_counts(args.tokens, "--tokens") if args.tokens else None,
                         flops=parse_counts(args.flops, "--flops") if args.flops else None, budgets=budgets,
                         preset=args.preset, batch_size=args.batch_size, seq_len=args.seq_len,
                         tokenizer_vocab_size=args.tokenizer_vocab_size, lr=args.lr, seed=args.seed,
                         heldout_fraction=args.heldout_fraction, holdout_budgets=args.holdout_budgets,
                         bootstrap=args.bootstrap, device=check_device(args.device), parallel=args.parallel,
                         progress=not args.no_progress)
    scaling = scale(config)
    print(json.dumps(scaling, indent=2) if args.json else safe(format_table(scaling)))
    if not args.json:
        print(f"mdr: scale -> {args.out} (scaling.json, scaling.html)", file=sys.stderr)
    return 0
